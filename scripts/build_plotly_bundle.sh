#!/usr/bin/env bash
# Rebuild webapp/assets/netlens-plotly.min.js, NetLens's partial plotly.js bundle (only the
# trace types NetLens draws), and webapp/assets/netlens-plotly-gl3d.lazy.js (the 3-D traces, loaded
# only by a page that plots one); see webapp/plotly-bundle/build.mjs. Needs Node >= 20 and npm.
#
#     bash scripts/build_plotly_bundle.sh            # npm ci from the committed lockfile
#     bash scripts/build_plotly_bundle.sh --update   # after changing a version in
#                                                    # webapp/plotly-bundle/package.json
#
# The npm install happens in build/plotly-bundle (git-ignored), not under webapp/, so that
# node_modules never lands in the Docker image or the Python package. --update runs
# `npm install` instead of `npm ci` and copies the new package-lock.json back.
# After an upgrade of the `plotly` Python package: set "plotly.js" in package.json to the
# version in the header of plotly/package_data/plotly.min.js, then run with --update
# (tests/unit/test_assets.py fails until the bundle's version matches).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
src="webapp/plotly-bundle"
work="build/plotly-bundle"
mkdir -p "$work"
cp "$src/package.json" "$src/package-lock.json" "$src/build.mjs" "$src/lazy-loader.js" "$work/"
cd "$work"
if [ "${1:-}" = "--update" ]; then
    npm install --no-audit --no-fund
    cp package-lock.json "$repo/$src/package-lock.json"
else
    npm ci --no-audit --no-fund
fi
NETLENS_REPO="$repo" node build.mjs
