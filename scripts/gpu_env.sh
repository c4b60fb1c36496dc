# Sourced by the GPU scripts: the environment that builds and runs keel on a GPU machine with a CUDA
# PyTorch (pip wheel, whose LibTorch keel links) and the Debian bundle of scripts/bundle_gpu_deps.sh.
#   source scripts/gpu_env.sh BUNDLE_DIR
keel_bundle=$(cd "${1:?usage: source scripts/gpu_env.sh BUNDLE_DIR}" && pwd)
if [ ! -d "$keel_bundle/root/usr" ]; then  # only the .debs travelled: unpack them here
  for d in "$keel_bundle"/debs/*.deb; do dpkg -x "$d" "$keel_bundle/root"; done
fi
keel_root="$keel_bundle/root/usr"
keel_arch_lib="$keel_root/lib/x86_64-linux-gnu"
keel_torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
keel_torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$keel_arch_lib:$keel_torch_lib:${LD_LIBRARY_PATH:-}"
export PKG_CONFIG_PATH=/nonexistent  # the bundle's .pc files name /usr: use the find_path fallback
[ -d /usr/local/cuda/bin ] && export PATH="/usr/local/cuda/bin:$PATH"
# nccl.h (for ProcessGroupNCCL.hpp) comes with the wheel's nvidia-nccl package, not with torch.
keel_site=$(python3 -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')
keel_nccl_h=$(find "$keel_site/nvidia" -name nccl.h 2>/dev/null | head -n 1)
[ -n "$keel_nccl_h" ] && export CPLUS_INCLUDE_PATH="$(dirname "$keel_nccl_h"):${CPLUS_INCLUDE_PATH:-}"
[ -d /usr/local/cuda/include ] && export CPLUS_INCLUDE_PATH="${CPLUS_INCLUDE_PATH:-}:/usr/local/cuda/include"
# The architecture of the card in hand (skips Caffe2's detection build); sm_90 = H100 / H200.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$(python3 -c 'import torch; c = torch.cuda.get_device_capability() if torch.cuda.is_available() else (9, 0); print(f"{c[0]}.{c[1]}")')}
keel_cmake_args=(-G Ninja -DKEEL_USE_CCACHE=OFF
  "-DCMAKE_PREFIX_PATH=$keel_torch_prefix;$keel_root;$keel_arch_lib/cmake"
  "-DCMAKE_INCLUDE_PATH=$keel_root/include" "-DCMAKE_LIBRARY_PATH=$keel_arch_lib")
