#!/usr/bin/env bash
# make e2e: the dashboard in a real browser. Installs what it needs (Debian's Chromium and CJK
# fonts, playwright-core from e2e/package-lock.json), builds plsw, makes a small world on the real
# divisions (three cities), loads, pulls, transforms and publishes it, serves the API on a free
# port of 127.0.0.1 and drives the dashboard (e2e/dashboard.mjs). Screenshots: e2e/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
PLSW=${CARGO_TARGET_DIR:-target}/debug/plsw

if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "== installing Debian's chromium and fonts-noto-cjk =="
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi
(cd e2e && npm ci --no-audit --no-fund --loglevel=error)
cargo build --bin plsw

WORK=$(mktemp -d)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
export PLSW_WAREHOUSE=$WORK/wh PLSW_LOG=${PLSW_LOG:-warn}

echo "== a world of three cities: 郑州, 三门峡, 济源 =="
"$PLSW" generate --out "$WORK/data" --cities 410100,411200,419000 --seed 7 >/dev/null
"$PLSW" seeds load "$WORK/data/divisions" >/dev/null
"$PLSW" ingest hotline "$WORK/data/hotline" >/dev/null
"$PLSW" ingest cases "$WORK/data/cases" >/dev/null
for f in "$WORK"/data/platforms/*.csv; do "$PLSW" ingest platforms --as-of "$(basename "$f" .csv)" "$f" >/dev/null; done
for f in "$WORK"/data/staff/*.csv; do "$PLSW" ingest staff --as-of "$(basename "$f" .csv)" "$f" >/dev/null; done
"$PLSW" ingest funding "$WORK/data/funding" >/dev/null
"$PLSW" ingest population "$WORK/data/population" >/dev/null
"$PLSW" upstream --dir "$WORK/data/work_orders" --addr 127.0.0.1:0 --addr-file "$WORK/upstream.addr" >/dev/null & up=$!
for _ in $(seq 300); do [ -s "$WORK/upstream.addr" ] && break; sleep 0.1; done
"$PLSW" pull work-orders --url "http://$(cat "$WORK/upstream.addr")" >/dev/null
kill $up
"$PLSW" transform >/dev/null
"$PLSW" assess --quarter 2025Q4 --publish --format json >/dev/null

token=$("$PLSW" tokens create --unit sfj --role viewer)
city_token=$("$PLSW" tokens create --unit sfj --role viewer --scope 411200)
"$PLSW" serve --addr 127.0.0.1:0 > "$WORK/serve.out" & server=$!
for _ in $(seq 300); do grep -q "http://" "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o "http://[0-9.:]*" "$WORK/serve.out" | head -1)
echo "== the dashboard at $url in Chromium =="
PLSW_URL=$url PLSW_TOKEN=$token PLSW_CITY_TOKEN=$city_token PLSW_CITY=411200 \
  SCREENSHOTS=e2e/screenshots node e2e/dashboard.mjs
