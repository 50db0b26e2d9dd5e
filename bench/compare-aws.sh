#!/usr/bin/env bash
# The AWS KMS API against Keyward's native API, in one run, on loopback, with wrk.
#
#   bash bench/compare-aws.sh            # DURATION=10 RUNS=3 CONCURRENCY=16
#
# One `keyward serve --insecure-http` (audit on, SQLite, release build); one AES-256-GCM key.
# Native: POST /v1/keys/{id}/encrypt with a bearer token whose policy covers only that key.
# AWS: POST / with X-Amz-Target TrentService.Encrypt, signed with Signature Version 4 by an
# access key from `keyward credential create --aws` with the same policy (bench/sigv4.lua: each
# request carries its second's X-Amz-Date and the signature over it; the server rebuilds the
# canonical request and checks the HMAC on every request). Points are interleaved, RUNS passes;
# the table reports the median. Writes the table between the markers in BENCHMARKS.md and
# prints `encrypt c=16 aws/native X%` last.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-3}
CONCURRENCY=${CONCURRENCY:-16}
PORT=${PORT:-18461}
# A directory of its own (removed at the end of a run that passes; OpenBao's audit log alone
# grows by gigabytes), or OUT, which is kept.
OWN_OUT=0
if [ -z "${OUT:-}" ]; then OUT=$(mktemp -d /tmp/keyward-aws.XXXX); OWN_OUT=1; fi
mkdir -p "$OUT"
THREADS=${THREADS:-$(nproc)}
bash scripts/setup.sh
command -v wrk >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk jq curl >/dev/null; }
swift build -c release --product keyward > "$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
KW=$ROOT/.build/release/keyward

cat > "$OUT/native.lua" <<'LUA'
local f = assert(io.open(assert(os.getenv("BODY_FILE")), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f non2xx=%d sockerr=%d\n", summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

export KEYWARD_STORE=$OUT/keyward.db KEYWARD_KEY_FILE=$OUT/root.key
"$KW" init --with-key-file "$KEYWARD_KEY_FILE" --generate-key-file >/dev/null
AES=$("$KW" key create --spec AES-256-GCM --alias bench-aes256 --json | jq -r .metadata.id)
TOKEN=$("$KW" token create --principal bench --allow "encrypt:key=$AES" --json | jq -r .token)
CRED=$("$KW" credential create --aws --principal bench-aws --allow "encrypt:key=$AES" --json)
"$KW" serve --insecure-http --port "$PORT" --rate-limit 0 --log-level warning > "$OUT/keyward.log" 2>&1 &
PID=$!
trap 'status=$?; kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null; if [ "$OWN_OUT" = 1 ]; then if [ "$status" = 0 ]; then rm -rf "$OUT"; else echo "kept for inspection: $OUT" >&2; fi; fi' EXIT
for _ in $(seq 1 150); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/v1/health" && break; sleep 0.2; done
PT=$(head -c 32 /dev/urandom | base64 -w0)
printf '{"plaintext":"%s"}' "$PT" > "$OUT/native.json"
printf '{"KeyId":"%s","Plaintext":"%s"}' "$AES" "$PT" > "$OUT/aws.json"
export ACCESS_KEY SECRET_KEY
ACCESS_KEY=$(jq -r .accessKeyId <<< "$CRED")
SECRET_KEY=$(jq -r .secretAccessKey <<< "$CRED")

run() {  # run KIND C -> prints rps
  local kind=$1 c=$2 line
  if [ "$kind" = native ]; then
    line=$(BODY_FILE=$OUT/native.json TOKEN=$TOKEN wrk -t"$THREADS" -c"$c" -d"${DURATION}s" -s "$OUT/native.lua" "http://127.0.0.1:$PORT/v1/keys/$AES/encrypt" | grep RESULT)
  else
    line=$(BODY_FILE=$OUT/aws.json TARGET=TrentService.Encrypt REGION=us-east-1 HOSTPORT=127.0.0.1:$PORT \
      wrk -t"$THREADS" -c"$c" -d"${DURATION}s" -s "$ROOT/bench/sigv4.lua" "http://127.0.0.1:$PORT/" | grep RESULT)
  fi
  grep -q "non2xx=0 sockerr=0" <<< "$line" || { echo "$kind c=$c: errors: $line" >&2; exit 1; }
  echo "$line"
}
# Warm both paths (caches, the day's signing key).
DURATION=$WARMUP run native "$CONCURRENCY" >/dev/null
DURATION=$WARMUP run aws "$CONCURRENCY" >/dev/null
: > "$OUT/results.tsv"
for pass in $(seq 1 "$RUNS"); do
  for kind in native aws; do
    line=$(run "$kind" "$CONCURRENCY")
    printf '%s\t%s\t%s\n' "$kind" "$pass" "$line" | tee -a "$OUT/results.tsv"
  done
done
python3 - "$OUT/results.tsv" "$(nproc)" "$DURATION" "$RUNS" "$CONCURRENCY" <<'PY'
import re, statistics, sys
path, cores, duration, runs, c = sys.argv[1:]
rows = [line.split("\t") for line in open(path).read().splitlines()]
def median(kind, field):
    return statistics.median(float(re.search(field + r"=([0-9.]+)", r[2]).group(1)) for r in rows if r[0] == kind)
native, aws = median("native", "rps"), median("aws", "rps")
lines = ["", "Encrypt (32 bytes) at c=%s, audit on, one node on SQLite; release build; %s cores; %s s per point, median of %s interleaved passes." % (c, cores, duration, runs), "",
         "| API | requests/s | p50 ms | p99 ms |", "|---|---|---|---|",
         "| native (`POST /v1/keys/{id}/encrypt`, bearer token) | %.0f | %.2f | %.2f |" % (native, median("native", "p50"), median("native", "p99")),
         "| AWS KMS (`TrentService.Encrypt`, SigV4) | %.0f | %.2f | %.2f |" % (aws, median("aws", "p50"), median("aws", "p99")),
         "", "AWS / native: **%.0f%%** (target: at least 80%%)." % (100 * aws / native), ""]
text = open("BENCHMARKS.md").read()
start, end = "<!-- compare-aws:start -->", "<!-- compare-aws:end -->"
table = "\n".join(lines)
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), start + "\n" + table + "\n" + end, text, flags=re.S)
else:
    text += "\n## The AWS KMS API against the native API\n\n`bash bench/compare-aws.sh`\n\n" + start + "\n" + table + "\n" + end + "\n"
open("BENCHMARKS.md", "w").write(text)
print("encrypt c=%s aws/native %.0f%%" % (c, 100 * aws / native))
PY
