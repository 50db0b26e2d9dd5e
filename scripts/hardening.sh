#!/usr/bin/env bash
# The hardening group (docs/operations.md, "Hardening"): attacks and faults run against the
# built binary and the test suite. Called by scripts/test.sh after the unit tests; about 8
# minutes. Each part prints one line per result and fails the run on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
keyward=.build/debug/keyward
[ -x "$keyward" ] || swift build --product keyward

echo "--- hardening: tamper sweep (10,000 single-bit flips: stored records, ciphertexts, backup bundles) ---"
KEYWARD_TAMPER_FLIPS=10000 timeout 900 swift test --skip-build --filter TamperSweepTests 2>&1 | grep -E "✔|✘|passed|failed" | tail -6
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || { echo "hardening: tamper sweep failed"; exit 1; }

echo "--- hardening: kill -9 under concurrent writers (20 rounds) ---"
timeout 600 python3 scripts/hardening/crash_writers.py "$keyward" 20 | tail -3

echo "--- hardening: two nodes on PostgreSQL under load: kill -9 of one node, pg_ctl restart -m immediate, the database cut, SIGSTOP of the lease holder ---"
timeout 300 python3 scripts/hardening/cluster_faults.py "$keyward"

echo "--- hardening: secret scan ---"
timeout 300 python3 scripts/hardening/secret_scan.py "$keyward"

echo "--- hardening: schemathesis against the served openapi.yaml (at least 5,000 requests) ---"
timeout 900 python3 scripts/hardening/fuzz_api.py "$keyward" openapi.yaml 5000
