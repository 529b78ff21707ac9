#!/usr/bin/env bash
# make bench: builds plsw and runs `plsw bench` (see docs/benchmarks.md). Not part of make test.
# BENCH_SCALES=1,10 (province-years); BENCH_DIR=bench keeps the generated data and the loaded
# warehouses between runs; results go to $BENCH_DIR/results/<date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# Measured with the release profile (the first build takes about 33 minutes on 2 cores, see
# docs/building.md); BENCH_PROFILE=dev measures the binary of make demo instead.
if [ "${BENCH_PROFILE:-release}" = dev ]; then
  cargo build --bin plsw; dir=debug
else
  cargo build --release --bin plsw; dir=release
fi
exec "${CARGO_TARGET_DIR:-target}/$dir/plsw" bench --dir "${BENCH_DIR:-bench}" \
  --scales "${BENCH_SCALES:-1,10}" --api-seconds "${BENCH_API_SECONDS:-5}"
