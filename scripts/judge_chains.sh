#!/usr/bin/env bash
# One command per judge chain: train the project's own tiny judge(s) (no judge weights can be
# downloaded), then run RL with them from the shipped config under configs/judges/.
#
#   scripts/judge_chains.sh                  every chain
#   scripts/judge_chains.sh rubric prm ...   the named chains (a chain = an RL config's name)
#
# Judges (trained once; a run directory with a checkpoint is reused):
#   runs/judge_yes_no  generative yes/no judge, SFT on judge_arithmetic  (configs/judges/yes_no_sft.yaml)
#   runs/judge_pairwise  pairwise judge, SFT on pairwise_arithmetic         (configs/judges/pairwise_sft.yaml)
#   runs/judge_prm     process reward model, SFT on prm_arithmetic        (configs/judges/prm_sft.yaml)
#   runs/steps_sft     a policy that writes steps, SFT on arithmetic_steps (configs/judges/steps_sft.yaml)
#   runs/judge_rm, runs/judge_rm_b  Bradley-Terry reward models on the arithmetic task's pairs (configs/judges/rm.yaml)
#   runs/judge_grm     the yes/no judge trained further with GRPO on agreement with the labels (configs/judges/grm.yaml)
# Each RL run ends with a line of its judge figures: judge tokens/s and the judges' share of step time.
# Extra arguments after `--` are passed to every keel train of an RL config (e.g. -- run.total_steps=100).
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
all=(rubric pow3r cmo directional generative_yes truthrl carr grm uncertainty_kl openrs spo_winrate arena_rank prm prm_dense gated dataprm ssl_steps ss_grpo info_gain uncertainty rm_shaping reward_model)
[ ${#chains[@]} -gt 0 ] || chains=("${all[@]}")

trained() { compgen -G "runs/$1/checkpoints/step-*" > /dev/null; }
judge() {  # judge <run name> <command> <config> [overrides...]
  local name=$1 cmd=$2 cfg=$3
  shift 3
  trained "$name" || "$keel" "$cmd" "$cfg" "$@"
}

for c in "${chains[@]}"; do
  [ -f "configs/judges/$c.yaml" ] || { echo "judge_chains: no chain '$c' (configs/judges/$c.yaml); known: ${all[*]}" >&2; exit 2; }
  case $c in
    rubric|pow3r|cmo|directional|generative_yes|truthrl|carr|grm)
      judge judge_yes_no train configs/judges/yes_no_sft.yaml ;;
    openrs|spo_winrate|arena_rank)
      judge judge_pairwise train configs/judges/pairwise_sft.yaml ;;
    uncertainty_kl)
      judge judge_yes_no train configs/judges/yes_no_sft.yaml
      judge judge_grm train configs/judges/grm.yaml ;;
    info_gain)
      judge steps_sft train configs/judges/steps_sft.yaml ;;
    prm|prm_dense|gated|dataprm|ssl_steps|ss_grpo)
      judge judge_prm train configs/judges/prm_sft.yaml
      judge steps_sft train configs/judges/steps_sft.yaml ;;
    uncertainty)
      judge judge_rm train-rm configs/judges/rm.yaml
      judge judge_rm_b train-rm configs/judges/rm.yaml run.name=judge_rm_b run.seed=2 ;;
    rm_shaping|reward_model)
      judge judge_rm train-rm configs/judges/rm.yaml ;;
  esac
  "$keel" train "configs/judges/$c.yaml" run.overwrite=true ${extra[@]+"${extra[@]}"}
  name=$(sed -n 's/^run: {name: \([a-z0-9_]*\).*/\1/p' "configs/judges/$c.yaml")
  /usr/bin/python3 - "runs/$name/metrics.jsonl" "$c" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if "time/step_s" in r]
step = sum(r["time/step_s"] for r in rows)
judge = sum(r.get("time/judge_s", 0.0) for r in rows)
tok = {k: [r[k] for r in rows if k in r] for k in rows[-1] if k.startswith("perf/judge/") and k.endswith("/tokens_per_s")}
figs = ", ".join("%s %.0f tok/s" % (k[len("perf/judge/"):-len("/tokens_per_s")], sum(v) / len(v)) for k, v in tok.items())
share = "judges %.1f%% of step time" % (100 * judge / step) if step > 0 and judge > 0 else "no judge stage"
print("%s: %d steps, %s%s" % (sys.argv[2], len(rows), share, (", " + figs) if figs else ""))
PY
done
