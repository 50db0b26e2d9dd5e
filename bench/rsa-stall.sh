#!/usr/bin/env bash
# Does RSA key generation stall other requests? Encrypt latency (wrk, c=16, plain HTTP on
# loopback) on its own, then while a client creates RSA-4096 keys back to back. Bounded: each
# phase runs DURATION seconds (default 10). Prints the figures BENCHMARKS.md quotes.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
PORT=${PORT:-18443}
OUT=$(mktemp -d)
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)"; exit 1; }
swift build -c release --product keyward >/dev/null
KW=$ROOT/.build/release/keyward
TOKEN=rsa-stall-bench-token-0123456789abcdefghij
"$KW" serve --dev --dev-dir "$OUT/dev" --insecure-http --port "$PORT" --dev-root-token "$TOKEN" > "$OUT/serve.log" 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/v1/health" && break; sleep 0.2; done
api() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$2" "http://127.0.0.1:$PORT$1"; }
api /v1/keys '{"spec":"AES-256-GCM","aliases":["stall"]}' >/dev/null
cat > "$OUT/load.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
function done(summary, latency, requests)
  io.write(string.format("rps=%.0f p50=%.2fms p99=%.2fms max=%.2fms\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA
run() { wrk -t2 -c16 -d"${DURATION}s" -s "$OUT/load.lua" "http://127.0.0.1:$PORT/v1/keys/stall/encrypt" | tail -1; }
echo "encrypt alone:                  $(run)"
( end=$((SECONDS + DURATION + 2)); n=0
  while [ $SECONDS -lt $end ]; do api /v1/keys '{"spec":"RSA-4096-PSS-SHA256"}' >/dev/null; n=$((n + 1)); done
  echo "$n" > "$OUT/rsa-count" ) &
GEN=$!
sleep 1
echo "encrypt during RSA-4096 keygen: $(run)"
wait $GEN
echo "RSA-4096 keys created meanwhile: $(cat "$OUT/rsa-count")"
