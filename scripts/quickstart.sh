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
"$keel" train configs/quickstart_sft.yaml "$@"
sft_ckpt=$(ls -d runs/quickstart_sft/checkpoints/step-* | sort | tail -n 1)
"$keel" train configs/quickstart.yaml model.path="$sft_ckpt/policy" "$@"
plot=$(scripts/plot_metrics runs/quickstart/metrics.jsonl)
echo
echo "quickstart done:"
echo "  checkpoint  $(ls -d runs/quickstart/checkpoints/step-* | sort | tail -n 1)/policy  (HF format)"
echo "  metrics     runs/quickstart/metrics.jsonl"
echo "  plot        $plot"
