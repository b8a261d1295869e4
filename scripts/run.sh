#!/usr/bin/env bash
# Install NetLens and start it on its embedded default: the web app at http://127.0.0.1:8050/
# with one local worker, SQLite and a filesystem broker under ~/.local/share/netlens.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/netlens serve "$@"
