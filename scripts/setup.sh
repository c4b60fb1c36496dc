#!/usr/bin/env bash
# Installs, idempotently, what keel's build needs from Debian's archive (nothing from elsewhere).
# Usage: scripts/setup.sh            (uses sudo when not root)
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libopenblas0-pthread libopenblas-pthread-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libsentencepiece-dev sentencepiece
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libgloo-dev
  libprotobuf-dev protobuf-compiler
  python3-torch python3-matplotlib python3-numpy
  python3-jinja2
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#pkgs[@]} packages present"
fi

# OpenBLAS is not optional: the reference BLAS is ~35x slower. Make the pthread OpenBLAS the
# alternative that libblas.so.3 / liblapack.so.3 resolve to.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  cand="/usr/lib/${arch}/openblas-pthread/${lib}"
  if [ -e "$cand" ]; then
    "${sudo_cmd[@]}" update-alternatives --set "${lib}-${arch}" "$cand" >/dev/null 2>&1 || true
  fi
done
