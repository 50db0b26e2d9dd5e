#!/usr/bin/env bash
# Sets up a fresh machine, builds Keyward (release) and runs the development server:
# an embedded SQLite store, a key file, a development CA and certificate, and a root token,
# all in ./.keyward-dev. Arguments go to `keyward serve` (e.g. --port 9443, --dev-root-token T).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product keyward
exec .build/release/keyward serve --dev "$@"
