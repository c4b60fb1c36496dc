#!/usr/bin/env bash
# Rollout engine benchmark on this machine's CPU (bench/rollout_bench.cpp): today's static engine
# (models::generate, chunks of --batch rows, dense KV cache) against the paged engine
# (models::generate_paged: paged KV, shared prefixes, continuous batching), in lockstep in one run,
# on a random-init ~25M-parameter Llama-layout model:
#  - grpo: 16 prompts x 8 samples, prompts of 64-192 tokens sharing a 48-token header, response
#    lengths log-normal (median 32, max 256) forced by per-row limits (EOS off), so both engines do
#    the same work. Targets: paged >= 2x static tokens/s, and <= 0.5x its peak KV memory;
#  - uniform: 64 rows x 128-token prompts x 128 new tokens. Target: paged >= 0.95x static tokens/s.
# Prints the CPU, the date and a markdown table: workload | engine | tokens/s | ratio | peak KV MiB |
# KV ratio | prefill tokens (ratios are paged / static; tokens/s ratio = median of per-rep ratios).
# Both engines get THREADS intra-op threads: OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = THREADS and --threads.
#
#   scripts/bench_rollout.sh                                  # THREADS=2, bench defaults (--reps 3)
#   BENCH_ARGS="--quick" scripts/bench_rollout.sh             # smoke run: small workloads, 1 rep
#   BENCH_ARGS="--reps 5 --workload grpo --block 32" scripts/bench_rollout.sh
#   KEEL_BUILD_LOCK=/tmp/keel-build.lock scripts/bench_rollout.sh   # build under flock(1) on that file
# Extra arguments are passed to rollout_bench too (scripts/bench_rollout.sh --quick).
# The bench's full output: $OUT_DIR/rollout.txt (default a temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KEEL_BUILD_DIR:-build}
THREADS=${THREADS:-2}
BENCH_ARGS=${BENCH_ARGS:-""}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/keel_bench_rollout.XXXXXX)}
mkdir -p "$OUT_DIR"
# shellcheck source=scripts/bench_build.sh
. scripts/bench_build.sh
bench_build keel rollout_bench

export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# What keel's executables set for themselves on this machine (rollout_bench sets it too, by re-exec
# at startup; exporting it here makes it visible in the log). A value already in the environment is kept.
library_env=$(env -u OPENBLAS_CORETYPE -u OMP_WAIT_POLICY "$build/keel" version --library-env | sed 's/^export //' | tr '\n' ' ' | sed 's/ *$//')
for kv in $library_env; do name=${kv%%=*}; [ -n "${!name:-}" ] || export "${kv?}"; done
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "bench_rollout: $THREADS threads, library settings: ${library_env:-none}; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); log $OUT_DIR/rollout.txt"
# shellcheck disable=SC2086
"$build/bench/rollout_bench" --threads "$THREADS" $BENCH_ARGS "$@" | tee "$OUT_DIR/rollout.txt" | grep -v '^RESULT'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "CPU: ${cpu:-unknown} ($(nproc) CPUs, $THREADS threads)"
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "args: --threads $THREADS $BENCH_ARGS $*"
echo
awk '
  $1 == "RESULT" { r[$2] = $3 }
  function mib(b) { return sprintf("%.2f", b / 1048576) }
  function verdict(ok, quick) { return (ok ? "PASS" : "FAIL") (quick ? " (quick run, not the target workload)" : "") }
  END {
    print "| workload | engine | tokens/s | ratio | peak KV MiB | KV ratio | prefill tokens |"
    print "|---|---|---|---|---|---|---|"
    n = split("grpo uniform", ws, " ")
    for (i = 1; i <= n; i++) {
      w = ws[i]; k = "rollout/" w "/"
      if (!((k "static/tok_s") in r)) continue
      printf "| %s | static | %.1f | 1.00x | %s | 1.00x | %d |\n", w, r[k "static/tok_s"], mib(r[k "static/kv_bytes"]), r[k "static/prefill_tokens"]
      printf "| %s | paged | %.1f | %.2fx | %s | %.2fx | %d (+%d reused) |\n", w, r[k "paged/tok_s"], r[k "ratio"], mib(r[k "paged/kv_bytes"]), r[k "kv_ratio"], r[k "paged/prefill_tokens"], r[k "paged/reused_tokens"]
    }
    print ""
    quick = r["rollout/quick"] == 1
    if (quick) print "(--quick: small workloads; the targets below are for the full ones)"
    if (("rollout/grpo/ratio") in r) {
      k = "rollout/grpo/"
      printf "- grpo tokens/s ratio %.2fx (target >= 2x): %s\n", r[k "ratio"], verdict(r[k "ratio"] >= 2, quick)
      printf "- grpo peak KV ratio %.2fx (target <= 0.5x): %s\n", r[k "kv_ratio"], verdict(r[k "kv_ratio"] <= 0.5, quick)
    }
    if (("rollout/uniform/ratio") in r) {
      k = "rollout/uniform/"
      printf "- uniform tokens/s ratio %.2fx (target >= 0.95x): %s\n", r[k "ratio"], verdict(r[k "ratio"] >= 0.95, quick)
    }
    for (i = 1; i <= n; i++) {
      k = "rollout/" ws[i] "/"
      if ((k "same_lengths") in r)
        printf "- %s sanity: same lengths %s rows, identical tokens %s rows, %d preemptions, pool %d blocks (%s MiB reserved)\n", ws[i], r[k "same_lengths"], r[k "identical_rows"], r[k "paged/preemptions"], r[k "paged/pool_blocks"], mib(r[k "paged/pool_bytes"])
    }
  }' "$OUT_DIR/rollout.txt"
