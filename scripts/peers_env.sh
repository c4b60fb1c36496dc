#!/usr/bin/env bash
# The pinned Python environment of the peers (PyTorch 2.x, transformers, tokenizers, TRL, PEFT) for
# tests and benchmarks only: keel itself never runs Python. Installs scripts/peers/requirements.lock
# (every package pinned, hashes required) into a venv under ~/.cache/keel, keyed by the lock's hash,
# so a second run, or CI on the same machine, reuses it; a fresh machine builds it (~4 min, ~6 GB).
#   scripts/peers_env.sh            make sure the venv exists; prints its python's path last
#   scripts/peers_env.sh --python   print the python's path if the venv is complete, else exit 1
# KEEL_PEERS_VENV overrides the directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lock="$root/scripts/peers/requirements.lock"
py=${KEEL_PEERS_BASE_PYTHON:-python3}
key=$( (cat "$lock"; "$py" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-12)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keel
venv=${KEEL_PEERS_VENV:-$cache/peers-$key}

if [ "${1:-}" = "--python" ]; then
  [ -f "$venv/.complete" ] && { echo "$venv/bin/python"; exit 0; }
  echo "peers_env: no complete venv at $venv (run scripts/peers_env.sh)" >&2
  exit 1
fi

want=$(sed -n 's/^# Resolved for CPython \([0-9]*\.[0-9]*\).*/\1/p' "$lock")
have=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$want" != "$have" ]; then
  echo "peers_env: $lock was resolved for CPython $want, but $py is $have: run scripts/peers/lock.sh" >&2
  exit 1
fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  if ! "$py" -m venv "$venv" 2>/dev/null; then
    # Debian's python3 keeps venv in a separate package.
    sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends python3-venv
    rm -rf "$venv"; "$py" -m venv "$venv"
  fi
  start=$(date +%s)
  echo "peers_env: installing $(grep -c '^[^#]' "$lock") pinned packages into $venv" >&2
  "$venv/bin/pip" install -q --no-deps --require-hashes -r "$lock" >&2
  "$venv/bin/python" -c 'import torch, transformers, tokenizers, safetensors' >&2
  touch "$venv/.complete"
  echo "peers_env: venv ready in $(( $(date +%s) - start )) s" >&2
  # Venvs of older locks are 6 GB each: drop them.
  for old in "$(dirname "$venv")"/peers-*; do
    case "$old" in "$venv"|"$venv.lock") ;; *) rm -rf "$old" ;; esac
  done
fi
echo "$venv/bin/python"
