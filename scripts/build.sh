#!/usr/bin/env bash
# Configures and builds keel into ${KEEL_BUILD_DIR:-build}. Extra arguments go to cmake's configure.
# On a GPU machine: CMAKE_PREFIX_PATH="$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')" scripts/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${KEEL_BUILD_DIR:-build}
jobs=${KEEL_JOBS:-$(nproc)}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "${generator[@]}" ${CMAKE_PREFIX_PATH:+-DCMAKE_PREFIX_PATH="$CMAKE_PREFIX_PATH"} "$@"
elif [ $# -gt 0 ]; then
  cmake -S . -B "$build_dir" "$@"
fi
cmake --build "$build_dir" -j "$jobs"
