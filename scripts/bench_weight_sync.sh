#!/usr/bin/env bash
# Weight-sync throughput: bucketed broadcast of a ~110M-parameter Llama-shaped list between 2 ranks
# over Gloo (CPU) vs one raw broadcast of the same bytes, measured in the same run.
#   scripts/bench_weight_sync.sh [weight_sync_bench args: --reps 5 --buckets 4,16,64,256 --dtype float32]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KEEL_BUILD_DIR:-build}
[ -f "$build/build.ninja" ] || cmake -S . -B "$build" -G Ninja
ninja -C "$build" -j "${KEEL_JOBS:-2}" weight_sync_bench
exec "$build/bench/weight_sync_bench" "$@"
