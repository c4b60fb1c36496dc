#!/usr/bin/env bash
# Everything a short GPU-machine lease checks, as one command (see README, "GPU machines"):
#   scripts/gpu_session.sh BUNDLE_DIR OUT_DIR
# 1. builds keel, models_tests and trainer_tests against the machine's CUDA LibTorch (-k 0: every
#    compile error is reported; build.log in OUT_DIR);
# 2. the CUDA tests (*Gpu*: generation on CUDA vs CPU and the log-prob contract there, bf16
#    autocast, activation checkpointing under autocast, NCCL with world size 1);
# 3. scripts/hf_parity.py: logits against transformers for llama / qwen2 / mistral, both ways;
# 4. the quickstart (SFT then GRPO) with run.device=cuda, metrics copied to OUT_DIR;
# 5. learner MFU in bf16 on a Qwen2.5-0.5B-shaped model: full, LoRA rank 16, checkpointed;
# 6. the CPU tests of the two binaries on this LibTorch (2.x), time-boxed.
# Each step is time-boxed so that one lease (at most 10 minutes a command) covers them all.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=${1:?usage: gpu_session.sh BUNDLE_DIR OUT_DIR}
out=${2:?usage: gpu_session.sh BUNDLE_DIR OUT_DIR}
mkdir -p "$out"
t0=$(date +%s)
step() { echo; echo "=== +$(($(date +%s) - t0))s $*"; }

step machine
nvidia-smi -L; nproc; g++ --version | head -1; cmake --version | head -1
python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'

step "build (log: build.log)"
# -O1: about a third less compile time than Release's -O3 (the checks below are GPU-bound or tiny).
KEEL_GPU_BUILD_ONLY=1 KEEL_GPU_TARGETS="keel models_tests trainer_tests learner_mfu_bench" KEEL_BUILD_TYPE=${KEEL_BUILD_TYPE:-None} \
  KEEL_CXX_FLAGS=${KEEL_CXX_FLAGS--O1} timeout "${KEEL_GPU_BUILD_S:-300}" scripts/gpu_build_and_test.sh "$bundle" >"$out/build.log" 2>&1
echo "build rc=$?"
grep -E "error:|CMake Error|FAILED:|undefined reference" "$out/build.log" | head -80
grep -E "^-- keel:|Warning" "$out/build.log" | head -20
source scripts/gpu_env.sh "$bundle"
b=${KEEL_BUILD_DIR:-build-gpu}
[ -x "$b/keel" ] && "$b/keel" version

step "CUDA tests"
[ -x "$b/tests/models_tests" ] && timeout 60 "$b/tests/models_tests" --gtest_filter='*Gpu*' 2>&1 | tail -40
[ -x "$b/tests/trainer_tests" ] && timeout 30 "$b/tests/trainer_tests" --gtest_filter='*Gpu*' 2>&1 | tail -30

step "HF parity"
[ -x "$b/tests/models_tests" ] && PYTHONUNBUFFERED=1 timeout 90 python3 scripts/hf_parity.py \
  --test-bin "$b/tests/models_tests" --work /tmp/keel_hf_parity --json "$out/hf_parity.json" 2>&1 | tail -45

step "quickstart on CUDA"
if [ -x "$b/keel" ]; then
  runs=/tmp/keel_runs
  timeout 60 "$b/keel" train configs/quickstart_sft.yaml run.device=cuda run.output_dir=$runs run.overwrite=true 2>&1 | tail -8
  sft=$(ls -d $runs/quickstart_sft/checkpoints/step-* 2>/dev/null | sort | tail -n 1)
  [ -n "$sft" ] && timeout 80 "$b/keel" train configs/quickstart.yaml run.device=cuda run.output_dir=$runs run.overwrite=true \
    model.path="$sft/policy" 2>&1 | tail -12
  cp $runs/quickstart_sft/metrics.jsonl "$out/cuda_sft_metrics.jsonl" 2>/dev/null
  cp $runs/quickstart/metrics.jsonl "$out/cuda_grpo_metrics.jsonl" 2>/dev/null
fi

step "learner MFU (bench/learner_mfu_bench: Qwen2.5-0.5B shape, bf16 autocast, batch 8 x 1024; log: mfu.txt)"
if [ -x "$b/bench/learner_mfu_bench" ]; then
  for extra in "" "--lora-rank 16" "--checkpointing 1"; do
    echo "--- $extra" >>"$out/mfu.txt"
    # shellcheck disable=SC2086
    timeout 90 "$b/bench/learner_mfu_bench" --device cuda $extra >>"$out/mfu.txt" 2>&1
  done
  grep -E "^---|^device|RESULT (step_s|tflops|mfu)" "$out/mfu.txt"
fi

step "CPU tests on this LibTorch (ctest -L cpu of the binaries built; log: ctest_cpu.log)"
[ -d "$b" ] && (cd "$b" && timeout "${KEEL_GPU_CTEST_S:-100}" ctest -j 16 -L cpu --timeout 100 --output-on-failure >"$out/ctest_cpu.log" 2>&1)
grep -E "tests passed|\*\*\*Failed|Not Run|Failure|error:|Expected|Which is|what\(\)" "$out/ctest_cpu.log" | head -60
step done
