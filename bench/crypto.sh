#!/usr/bin/env bash
# KeywardCrypto micro-benchmarks beside `openssl speed` (the hardware ceiling) and raw
# swift-crypto, in one run. Writes bench/out/crypto-*.tsv and the table between the
# crypto markers in BENCHMARKS.md. QUICK=1 for a short run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p bench/out
swift build -c release --product KeywardBench >/dev/null

seconds=${SECONDS_PER_SIZE:-2}
: > bench/out/openssl.tsv
for bytes in 32 1024 16384 65536; do
  rate=$(openssl speed -evp aes-256-gcm -seconds "$seconds" -bytes "$bytes" -mr 2>/dev/null | awk -F: '/^\+F:/ {print $4}')
  printf 'openssl.aes-256-gcm\t%s\t%s\n' "$bytes" "$rate" >> bench/out/openssl.tsv
done

args=()
[ "${QUICK:-0}" = "1" ] && args+=(--quick)
taskset -c 0 .build/release/KeywardBench "${args[@]}" > bench/out/crypto.tsv 2>/dev/null || .build/release/KeywardBench "${args[@]}" > bench/out/crypto.tsv

python3 bench/crypto_report.py bench/out/openssl.tsv bench/out/crypto.tsv BENCHMARKS.md
