#!/usr/bin/env bash
# Runs a Python script under the peers venv's python (scripts/peers_env.sh): ctest's entry for the
# parity tests against transformers. Exits 77 (ctest: skipped) when there is no venv, unless
# KEEL_REQUIRE_PEERS=1 (scripts/test.sh sets it), where that is a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${KEEL_PEERS_PYTHON:-}
if [ -z "$py" ]; then py=$("$here/../peers_env.sh" --python 2>/dev/null) || py=""; fi
if [ -z "$py" ] || [ ! -x "$py" ]; then
  msg="peers/run.sh: no peers venv (run scripts/peers_env.sh)"
  if [ "${KEEL_REQUIRE_PEERS:-0}" = 1 ]; then echo "$msg, and KEEL_REQUIRE_PEERS=1" >&2; exit 1; fi
  echo "$msg: skipped" >&2
  exit 77
fi
PYTHONUNBUFFERED=1 exec "$py" "$@"
