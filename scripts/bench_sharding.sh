#!/usr/bin/env bash
# Sharded data parallelism (dist.sharding) on this machine's CPU: keel train (GRPO, a random-init
# Llama-layout model of 24 layers, 3 steps, activation checkpointing on at every level) on 1, 2 and
# 4 colocated Gloo ranks with dist.sharding none, optimizer (ZeRO-1), gradients (ZeRO-2) and full
# (ZeRO-3 / FSDP). Per rank (rank 0): the peak of weights + gradients + AdamW moments held at once
# in the last step (perf/model_state_peak_mib: measured by the sharded model for gradients / full,
# with the gathered layers, the prefetched one and the whole gradients of a layer before its
# reduce-scatter; for none / optimizer the whole weights and gradients plus the moments), against
# none at the same rank count, and the last step's time (time/step_s) against none.
# On 1 rank there is nothing to shard over: every level is none.
#
#   scripts/bench_sharding.sh            # ranks 1 2 4
#   RANKS="2 4" LEVELS="none full" scripts/bench_sharding.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KEEL_BUILD_DIR:-build}
RANKS=${RANKS:-"1 2 4"}
LEVELS=${LEVELS:-"none optimizer gradients full"}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/keel_bench_sharding.XXXXXX)}
mkdir -p "$OUT_DIR"
# shellcheck source=scripts/bench_build.sh
. scripts/bench_build.sh
bench_build keel
keel=$(realpath "$build/keel")
cat > "$OUT_DIR/c.yaml" <<'YAML'
run: {name: shard, total_steps: 3, device: cpu, seed: 1, threads: 1}
model:
  init: {hidden_size: 256, num_layers: 24, num_heads: 4, num_kv_heads: 2, intermediate_size: 704, max_position_embeddings: 64}
  activation_checkpointing: true
data: {task: arithmetic, eval_size: 8}
rollout: {samples_per_prompt: 4, max_new_tokens: 6}
batch: {prompts_per_step: 8, mini_batch_size: 32, micro_batch_size: 8}
learner: {algorithm: grpo}
optim: {lr: 1.0e-4}
eval: {every: 0}
checkpoint: {every: 0}
YAML
cd "$OUT_DIR"
for w in $RANKS; do
  for level in $LEVELS; do
    [ "$w" = 1 ] && [ "$level" != none ] && continue
    out="r${w}_${level}"
    if [ "$w" = 1 ]; then
      "$keel" train c.yaml run.output_dir="$out" dist.sharding="$level" > "$out.log" 2>&1
    else
      port=$((29500 + RANDOM % 2000))
      "$keel" launch --nproc-per-node "$w" --master-port "$port" --log-dir "logs_$out" -- "$keel" train c.yaml \
        run.output_dir="$out" dist.sharding="$level" > "$out.log" 2>&1
    fi
  done
done
cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "CPU: ${cpu:-unknown} ($(nproc) CPUs); date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); runs in $OUT_DIR"
echo
LEVELS="$LEVELS" /usr/bin/python3 - $RANKS <<'PY'
import json, os, sys
def last(path):
    return [json.loads(l) for l in open(path) if l.strip()][-1]
levels = os.environ["LEVELS"].split()
print("| ranks | sharding | trained params (M) | peak weights + grads + moments MiB | vs none | AdamW moments MiB | step s | vs none |")
print("|---|---|---|---|---|---|---|---|")
for w in sys.argv[1:]:
    base = None
    for level in levels:
        if w == "1" and level != "none": continue
        m = last(f"r{w}_{level}/shard/metrics.jsonl")
        p, peak, s, t = m["perf/trained_param_mib"], m["perf/model_state_peak_mib"], m["perf/optimizer_state_mib"], m["time/step_s"]
        if base is None: base = (peak, t)
        print(f"| {w} | {level} | {p * (1 << 20) / 4 / 1e6:.2f} | {peak:.1f} | {peak / base[0]:.2f}x | {s:.1f} | {t:.2f} | {t / base[1]:.2f}x |")
PY
