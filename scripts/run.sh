#!/usr/bin/env bash
# Install NetLens and start it on its embedded default (SQLite under ~/.local/share/netlens).
# Until the web app lands, "starting NetLens" trains the XOR preset and shows the stored run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
run_id=$(.venv/bin/netlens train --preset xor | tail -n 1)
.venv/bin/netlens show "$run_id"
