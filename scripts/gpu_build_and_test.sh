#!/usr/bin/env bash
# On a GPU machine that has a CUDA PyTorch (pip wheel) and CMake/ninja but no package registry:
# builds keel against the wheel's LibTorch and the bundled Debian libraries, then runs the tests
# (the gpu-labelled ones exercise CUDA; cpu ones must pass there too).
#   scripts/gpu_build_and_test.sh BUNDLE_DIR [ctest args...]
# KEEL_BUILD_DIR (default build-gpu), KEEL_BUILD_TYPE (default Release), KEEL_CXX_FLAGS (e.g. -O1
# with KEEL_BUILD_TYPE=None, for a quicker build), KEEL_GPU_TARGETS (default
# all) and KEEL_GPU_BUILD_ONLY=1 (stop after the build) adjust it; ninja keeps going past errors
# (-k 0) so that one run reports every one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu_env.sh "${1:?usage: gpu_build_and_test.sh BUNDLE_DIR}"
shift
build=${KEEL_BUILD_DIR:-build-gpu}
cmake -S . -B "$build" "${keel_cmake_args[@]}" -DCMAKE_BUILD_TYPE="${KEEL_BUILD_TYPE:-Release}" \
  ${KEEL_CXX_FLAGS:+"-DCMAKE_CXX_FLAGS=$KEEL_CXX_FLAGS"}
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc)" -- -k 0 ${KEEL_GPU_TARGETS:-}
[ "${KEEL_GPU_BUILD_ONLY:-0}" = 1 ] && exit 0
cd "$build"
ctest --output-on-failure -j 8 "$@"
