#!/usr/bin/env bash
# Regenerates configs/reference.yaml from the config structs' defaults and docs.
# A test (CliConfig.ReferenceYamlIsFresh) fails when the committed file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
keel=${KEEL_BIN:-${KEEL_BUILD_DIR:-build}/keel}
"$keel" print-config --reference > configs/reference.yaml.tmp
mv configs/reference.yaml.tmp configs/reference.yaml
echo "wrote configs/reference.yaml"
