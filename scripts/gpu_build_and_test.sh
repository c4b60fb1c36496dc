#!/usr/bin/env bash
# On a GPU machine that has a CUDA PyTorch (pip wheel) and CMake/ninja but no package registry:
# builds keel against the wheel's LibTorch and the bundled Debian libraries, then runs the tests
# (the gpu-labelled ones exercise CUDA; cpu ones must pass there too).
#   scripts/gpu_build_and_test.sh BUNDLE_DIR [ctest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=$(cd "${1:?usage: gpu_build_and_test.sh BUNDLE_DIR}" && pwd)
shift
root="$bundle/root/usr"
arch_lib="$root/lib/x86_64-linux-gnu"
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
export LD_LIBRARY_PATH="$arch_lib:$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))'):${LD_LIBRARY_PATH:-}"
export PKG_CONFIG_PATH=/nonexistent  # the bundle's .pc files name /usr: use the find_path fallback
build=${KEEL_BUILD_DIR:-build-gpu}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKEEL_USE_CCACHE=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$root;$arch_lib/cmake" \
  -DCMAKE_INCLUDE_PATH="$root/include" -DCMAKE_LIBRARY_PATH="$arch_lib"
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest --output-on-failure -j 8 "$@"
