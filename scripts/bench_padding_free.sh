#!/usr/bin/env bash
# Padding-free learner passes on this machine's CPU (bench/padding_free_bench.cpp): one RL-update
# pass (log-probs with entropy under grad, then backward) over 16 sequences of 16..512 tokens in
# micro-batches of 8, padded against padding-free (batch.padding_free), on a random-init
# ~25M-parameter Llama-layout model, fp32, THREADS intra-op threads (default 2).
# Prints the CPU, the date and a markdown table: mode | seconds per pass | real tokens/s | speedup.
#
#   scripts/bench_padding_free.sh                          # bench defaults (--reps 3)
#   BENCH_ARGS="--reps 5 --rows 32" scripts/bench_padding_free.sh
#   KEEL_BUILD_LOCK=/tmp/keel-build.lock scripts/bench_padding_free.sh   # build under flock(1) on that file
# The bench's full output: $OUT_DIR/padding_free.txt (default a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KEEL_BUILD_DIR:-build}
THREADS=${THREADS:-2}
BENCH_ARGS=${BENCH_ARGS:-""}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/keel_bench_padding_free.XXXXXX)}
mkdir -p "$OUT_DIR"
# shellcheck source=scripts/bench_build.sh
. scripts/bench_build.sh
bench_build keel padding_free_bench

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "bench_padding_free: $THREADS threads; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); log $OUT_DIR/padding_free.txt"
# shellcheck disable=SC2086
"$build/bench/padding_free_bench" --threads "$THREADS" $BENCH_ARGS "$@" | tee "$OUT_DIR/padding_free.txt" | grep -v '^RESULT'

echo
echo "CPU: ${cpu:-unknown} ($(nproc) CPUs, $THREADS threads)"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "args: --threads $THREADS $BENCH_ARGS $*"
echo
awk '
  $1 == "RESULT" { r[$2] = $3 }
  END {
    printf "%d real tokens; padded micro-batches compute %d positions (%.2fx)\n\n", r["real_tokens"], r["padded_positions"], r["padded_positions"] / r["real_tokens"]
    print "| mode | s per pass | real tokens/s | speedup |"
    print "|---|---|---|---|"
    printf "| padded | %.3f | %.0f | 1.00x |\n", r["padded_s"], r["padded_tok_s"]
    printf "| padding-free | %.3f | %.0f | %.2fx |\n", r["padding_free_s"], r["padding_free_tok_s"], r["speedup"]
  }' "$OUT_DIR/padding_free.txt"
