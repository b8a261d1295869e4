#!/usr/bin/env bash
# Install NetLens with its test extras, make sure PostgreSQL, Redis and Chromium are there,
# run every test.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
bash scripts/services.sh
bash scripts/browser.sh
exec .venv/bin/python -m pytest "$@"
