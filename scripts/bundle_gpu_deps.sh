#!/usr/bin/env bash
# Bundles the Debian packages keel builds against (everything but LibTorch, which the GPU machine
# has inside its pip torch) into one folder that can be copied to a GPU machine with no package
# registry:
#   scripts/bundle_gpu_deps.sh [OUT_DIR]          (default: bundle/; git-ignored)
# On the GPU machine, from the repository root (see README "GPU machines"):
#   scripts/gpu_build_and_test.sh bundle
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bundle}
pkgs=(
  libyaml-cpp-dev libyaml-cpp0.7
  libspdlog-dev libspdlog1.10
  libfmt-dev libfmt9
  libsentencepiece-dev libsentencepiece0 libprotobuf-lite32
  libprotobuf-dev libprotobuf32 protobuf-compiler libprotoc32
  nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev googletest
)
rm -rf "$out"
mkdir -p "$out/debs" "$out/root"
(cd "$out/debs" && apt-get download "${pkgs[@]}")
for d in "$out"/debs/*.deb; do dpkg -x "$d" "$out/root"; done
# Debian's GTest CMake files point at static libs in /usr/lib/<arch>; they are in the bundle root.
du -sh "$out"
echo "bundle ready in $out/ (copy it with the repository; see README, GPU machines)"
