#!/usr/bin/env bash
# One command on a fresh Debian/Ubuntu machine: installs dependencies, builds, and runs the main
# job on the embedded default — a tiny from-scratch model on the built-in arithmetic task, on CPU:
#   stage 1  keel train configs/quickstart_sft.yaml   (SentencePiece tokenizer + SFT warm-up)
#   stage 2  keel train configs/quickstart.yaml       (GRPO on harder problems, from the SFT checkpoint)
# and ends by printing where the checkpoint, metrics and plot are.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
keel=${KEEL_BUILD_DIR:-build}/keel
"$keel" version
# run.overwrite: the quickstart may be run again over its own earlier runs.
"$keel" train configs/quickstart_sft.yaml run.overwrite=true "$@"
sft_ckpt=$(ls -d runs/quickstart_sft/checkpoints/step-* | sort | tail -n 1)
"$keel" train configs/quickstart.yaml model.path="$sft_ckpt/policy" run.overwrite=true "$@"
plot=$(scripts/plot_metrics runs/quickstart/metrics.jsonl)
echo
# Held-out accuracy of the SFT checkpoint (its last eval) and of the GRPO policy (its last eval),
# on the same held-out problems.
/usr/bin/python3 - runs/quickstart_sft/metrics.jsonl runs/quickstart/metrics.jsonl <<'PY'
import json, sys
def last_eval(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return [r for r in rows if "eval/pass@1" in r][-1]
sft, rl = last_eval(sys.argv[1]), last_eval(sys.argv[2])
print("held-out accuracy           SFT (step %d)   GRPO (step %d)   gain" % (sft["step"], rl["step"]))
for key, label in [("eval/pass@1", "greedy pass@1"), ("eval/mean@k", "sampled pass@1 (T=1)"), ("eval/pass@4", "pass@4 (T=1)")]:
    if key in sft and key in rl:
        print("  %-24s %8.1f%%        %8.1f%%     %+5.1f points" % (label, 100 * sft[key], 100 * rl[key], 100 * (rl[key] - sft[key])))
PY
echo
echo "quickstart done:"
echo "  checkpoint  $(ls -d runs/quickstart/checkpoints/step-* | sort | tail -n 1)/policy  (HF format)"
echo "  metrics     runs/quickstart/metrics.jsonl"
echo "  plot        $plot"
