#!/usr/bin/env bash
# make bench: builds plsw and runs `plsw bench` (see docs/benchmarks.md). Not part of make test.
# BENCH_SCALES=1,10 (province-years); BENCH_DIR=bench keeps the generated data and the loaded
# warehouses between runs; results go to $BENCH_DIR/results/<date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --bin plsw
exec "${CARGO_TARGET_DIR:-target}/debug/plsw" bench --dir "${BENCH_DIR:-bench}" \
  --scales "${BENCH_SCALES:-1,10}" --api-seconds "${BENCH_API_SECONDS:-5}"
