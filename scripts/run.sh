#!/usr/bin/env bash
# Sets up a fresh machine, builds Keyward and runs it.
# Until `keyward serve` exists this runs `keyward selftest`, which exercises every key spec.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product keyward
exec .build/release/keyward "${@:-selftest}"
