#!/usr/bin/env bash
# One command per environment chain: SFT on the environment's expert episodes, then RL on its
# multi-turn episodes, from the shipped configs under configs/envs/; then one summary line:
# held-out success (eval mean@k: k samples at temperature 1) at the end of SFT = the start of RL,
# and at each RL evaluation; training success over the first and last 10 RL steps; wall time.
#
#   scripts/env_chains.sh                        every chain
#   scripts/env_chains.sh calculator guessing    the named chains (a chain = configs/envs/<name>.yaml)
# Extra arguments after `--` go to the RL stage's keel train (e.g. -- run.total_steps=20).
set -euo pipefail
cd "$(dirname "$0")/.."
keel=${KEEL_BUILD_DIR:-build}/keel
[ -x "$keel" ] || { scripts/setup.sh && scripts/build.sh; }

chains=()
extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  chains+=("$1")
  shift
done
all=(calculator guessing guessing_igpo gridworld gridworld_oni retry docsearch count_env)
[ ${#chains[@]} -gt 0 ] || chains=("${all[@]}")

for c in "${chains[@]}"; do
  [ -f "configs/envs/$c.yaml" ] || { echo "env_chains: no chain '$c' (configs/envs/$c.yaml); known: ${all[*]}" >&2; exit 2; }
  start=$(date +%s)
  # The chain's own SFT stage (configs/envs/<chain>_sft.yaml), rerun; or, for a variant such as
  # guessing_igpo, the base chain's, reused when it has a checkpoint.
  sft=${c}_sft
  if [ -f "configs/envs/$sft.yaml" ]; then
    rm -rf "runs/$sft"
  else
    sft=${c%_*}_sft
  fi
  rm -rf "runs/$c"
  if ! compgen -G "runs/$sft/checkpoints/step-*" > /dev/null; then
    "$keel" train "configs/envs/$sft.yaml" > "runs/$sft.log" 2>&1 || { tail -5 "runs/$sft.log"; exit 1; }
  fi
  "$keel" train "configs/envs/$c.yaml" ${extra[@]+"${extra[@]}"} > "runs/$c.log" 2>&1 || { tail -5 "runs/$c.log"; exit 1; }
  python3 - "$c" "$sft" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
name, sft_name, secs = sys.argv[1], sys.argv[2], sys.argv[3]
load = lambda run: [json.loads(l) for l in open(f"runs/{run}/metrics.jsonl")]
sft, rl = load(sft_name), load(name)
ev = lambda rows: [(r["step"], r.get("eval/mean@k", r.get("eval/pass@1"))) for r in rows if "eval/pass@1" in r]
tr = [r for r in rl if "env/last/success" in r]  # the environment's verdict, whatever the reward
avg = lambda rows, k: sum(r.get(k, 0.0) for r in rows) / max(1, len(rows))
line = f"{name}: held-out success {ev(sft)[-1][1]:.3f} after SFT -> " + " ".join(f"{s}:{v:.3f}" for s, v in ev(rl))
line += f" | train success first10 {avg(tr[:10], 'env/last/success'):.3f} last10 {avg(tr[-10:], 'env/last/success'):.3f}"
extra = sorted(k for k in tr[0] if k.startswith("env/per_episode/") and k not in ("env/per_episode/env_failed", "env/per_episode/success"))
line += "".join(f" | {k[16:]}/episode {avg(tr[:10], k):.2f}->{avg(tr[-10:], k):.2f}" for k in extra)
line += f" | {avg(tr, 'perf/episode_tokens_per_s'):.0f} policy tok/s in episodes | {secs} s (SFT + RL)"
print(line)
PY
done
