#!/usr/bin/env bash
# The whole suite, on SQLite and then on a throwaway PostgreSQL cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
VPY=.venv/bin/python

bash scripts/ensure_chromium.sh

export TOUCHSTONE_STATE_DIR="${TOUCHSTONE_STATE_DIR:-$PWD/.state/test}"
mkdir -p "$TOUCHSTONE_STATE_DIR"

echo "=== layer contracts (import-linter)"
.venv/bin/lint-imports

echo "=== suite on SQLite"
env -u DATABASE_URL "$VPY" -m pytest "$@"

echo "=== suite on PostgreSQL"
bash scripts/with_postgres.sh "$VPY" -m pytest "$@"
