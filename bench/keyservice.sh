#!/usr/bin/env bash
# KeyService figures (issue 3): key creation rate, audited 32-byte encrypts on one core, opening a
# store of 1,000,000 keys and memory with a full key cache. Writes the table between the
# keyservice markers in BENCHMARKS.md.
#   CREATE_KEYS   keys to create for the creation figure (default 100000)
#   SECONDS_EACH  seconds per encrypt point (default 5)
#   MILLION=1     also build (once, cached in bench/out/store-1m.db, ~15 min) and open a 1M-key store
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bench/out
swift build -c release --product KeyServiceBench >/dev/null
bin=.build/release/KeyServiceBench
create=${CREATE_KEYS:-100000}
seconds=${SECONDS_EACH:-5}

rm -f bench/out/store-create.db*
$bin create bench/out/store-create.db "$create" 64 | tee bench/out/keyservice.tsv
# Five runs per point: this VM's speed drifts by a fifth between runs; the table gives the median.
for c in 64 256; do
  for run in 1 2 3 4 5; do
    taskset -c 0 $bin encrypt bench/out/store-create.db "$seconds" "$c" | tee -a bench/out/keyservice.tsv
  done
done
$bin open bench/out/store-create.db | tee -a bench/out/keyservice.tsv
if [ "${MILLION:-0}" = "1" ]; then
  if [ ! -f bench/out/store-1m.db ]; then
    cp bench/out/store-create.db bench/out/store-1m.db && cp bench/out/store-create.db.key bench/out/store-1m.db.key
    $bin create bench/out/store-1m.db $((1000000 - create)) 64 >/dev/null
  fi
  $bin open bench/out/store-1m.db | tee -a bench/out/keyservice.tsv
fi
python3 bench/keyservice_report.py bench/out/keyservice.tsv BENCHMARKS.md
