#!/usr/bin/env bash
# Builds keel against LibTorch 2.x on a CPU machine: the LibTorch inside PyPI's torch wheel of the
# peers venv (scripts/peers_env.sh; a CUDA build, the same major version as the GPU machines), with
# keel's CUDA code paths compiled (nvcc and the CUDA toolkit are here; nothing runs them without a
# GPU). The Debian libraries (yaml-cpp, spdlog, ...) are those of scripts/setup.sh.
#   scripts/build_libtorch2.sh [ninja targets...]     into ${KEEL_LT2_BUILD_DIR:-build-lt2}
# Then run its tests with the same ctest (cd build-lt2 && ctest -L cpu ...). The wheel carries no
# gloo headers: c10d's Gloo backend would be compiled against Debian's gloo, whose layout differs,
# so this configuration builds without it (-DKEEL_GLOO=OFF): its dist tests are not meaningful.
# State (2026-12-07, torch 2.15.0+cu132): every library compiles, CUDA paths included. The
# executables first failed to link: the wheel's torch/include carries fmt 12 headers, which shadowed
# Debian's fmt 9 that keel links (undefined fmt::v12::vformat). cmake/KeelDeps.cmake now puts the
# linked fmt first; a full rebuild and relink with that has not been run yet.
set -euo pipefail
cd "$(dirname "$0")/.."
py=$(scripts/peers_env.sh | tail -1)
torch_root=$("$py" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
prefix=$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')
site=$(dirname "$torch_root")
# nccl.h (for ProcessGroupNCCL.hpp) comes with the wheel's nvidia-nccl package, not with torch.
nccl_h=$(find "$site/nvidia" -name nccl.h 2>/dev/null | head -n 1)
[ -n "$nccl_h" ] && export CPLUS_INCLUDE_PATH="$(dirname "$nccl_h"):${CPLUS_INCLUDE_PATH:-}"
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
# libtorch_cuda.so needs the wheel's own NCCL, cuDNN, ... (nvidia/*/lib), newer than the toolkit's:
# the linker checks it against them (-rpath-link below), and the executables load them from here.
nvidia_libs=$(find "$site/nvidia" -maxdepth 3 -type d -name lib 2>/dev/null | tr '\n' ':')
export LD_LIBRARY_PATH="$torch_root/lib:$nvidia_libs${LD_LIBRARY_PATH:-}"
# One architecture (H100 / H200), which also skips Caffe2's detection run (no GPU here).
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
build=${KEEL_LT2_BUILD_DIR:-build-lt2}
# $torch_root first: Debian's libtorch.so in /usr/lib must not be the one TorchConfig finds.
# -rpath-link: the toolkit's older libnccl (/usr/local/cuda/lib, on the executables' rpath) must not
# be the one the linker checks libtorch_cuda.so against.
mkdir -p "$build"
generator=(); [ -f "$build/build.ninja" ] || generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DKEEL_GLOO=OFF \
  "-DCMAKE_PREFIX_PATH=$torch_root;$prefix" "-DCMAKE_LIBRARY_PATH=$torch_root/lib" \
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,${nvidia_libs%:}" > "$build/configure.log" 2>&1 || {
  tail -30 "$build/configure.log"; exit 1; }
start=$(date +%s)
ninja -C "$build" -k 0 -j "${KEEL_JOBS:-$(nproc)}" "$@"  # -k 0: every error in one pass
echo "build_libtorch2: LibTorch $("$py" -c 'import torch; print(torch.__version__)') build in $build took $(( $(date +%s) - start )) s"
