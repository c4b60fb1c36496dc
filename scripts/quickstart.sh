#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: installs dependencies, builds, and runs the main
# job on the embedded default (configs/quickstart.yaml: a tiny model on the built-in arithmetic task, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
keel=${KEEL_BUILD_DIR:-build}/keel
"$keel" version --matmul
"$keel" validate configs/quickstart.yaml
if "$keel" --help | grep -qE '^  train '; then
  exec "$keel" train configs/quickstart.yaml "$@"
fi
echo
echo "quickstart: the training loop has not landed yet (issue 6); the config above validates."
echo "quickstart: resolved config:"
"$keel" print-config configs/quickstart.yaml --comments
