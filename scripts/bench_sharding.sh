#!/usr/bin/env bash
# Optimizer-state sharding (dist.sharding) on this machine's CPU: keel train (GRPO, a random-init
# Llama-layout model of 5.9M parameters, 3 steps) on 1, 2 and 4 colocated Gloo ranks with
# dist.sharding none and optimizer. Per rank: the trained parameters, their gradients (as large)
# and the AdamW moments (perf/trained_param_mib, perf/optimizer_state_mib of rank 0), their sum
# against none at the same rank count, and the last step's time (time/step_s) against none.
# Gradient and parameter sharding (ZeRO-2 / 3, "full") are not built: no rows for them.
#
#   scripts/bench_sharding.sh            # ranks 1 2 4
#   RANKS="2 4" scripts/bench_sharding.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KEEL_BUILD_DIR:-build}
RANKS=${RANKS:-"1 2 4"}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/keel_bench_sharding.XXXXXX)}
mkdir -p "$OUT_DIR"
# shellcheck source=scripts/bench_build.sh
. scripts/bench_build.sh
bench_build keel
keel=$(realpath "$build/keel")
cat > "$OUT_DIR/c.yaml" <<'YAML'
run: {name: shard, total_steps: 3, device: cpu, seed: 1, threads: 1}
model:
  init: {hidden_size: 256, num_layers: 8, num_heads: 4, num_kv_heads: 2, intermediate_size: 704, max_position_embeddings: 64}
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
  for level in none optimizer; do
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
/usr/bin/python3 - $RANKS <<'PY'
import json, sys
def last(path):
    return [json.loads(l) for l in open(path) if l.strip()][-1]
print("| ranks | sharding | params MiB | grads MiB | AdamW moments MiB | total per rank | vs none | step s | vs none |")
print("|---|---|---|---|---|---|---|---|---|")
for w in sys.argv[1:]:
    base = None
    for level in ("none", "optimizer"):
        m = last(f"r{w}_{level}/shard/metrics.jsonl")
        p, s, t = m["perf/trained_param_mib"], m["perf/optimizer_state_mib"], m["time/step_s"]
        total = 2 * p + s
        if base is None: base = (total, t)
        print(f"| {w} | {level} | {p:.1f} | {p:.1f} | {s:.1f} | {total:.1f} | {total / base[0]:.2f}x | {t:.2f} | {t / base[1]:.2f}x |")
PY
