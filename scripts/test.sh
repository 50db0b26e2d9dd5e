#!/usr/bin/env bash
# Sets up a fresh machine and runs every test: unit tests, Wycheproof vectors, the Python
# oracle checks, and the CLI's selftest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build --build-tests
swift test --skip-build 2>&1 | tee .build/test-output.txt
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "test.sh: swift test failed (exit $status)"
  exit "$status"
fi
echo "--- Wycheproof counts per file ---"
grep -E '^Wycheproof ' .build/test-output.txt | sort || true
echo "--- keyward selftest ---"
swift build --product keyward
.build/debug/keyward selftest
