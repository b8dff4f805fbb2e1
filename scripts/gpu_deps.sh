#!/usr/bin/env bash
# Run HERE (Debian 12, with internet): downloads the .deb files that the GPU machine lacks into
# deps/gpu/ (git-ignored). Pass `carry: ["deps/gpu"]` to the device run; scripts/gpu_check.sh unpacks
# them there with dpkg -x into a private prefix (never into /).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$here/deps/gpu"
mkdir -p "$dest"
# Build-time libraries and their runtime pieces that a CUDA/PyTorch image does not ship.
pkgs=(libhdf5-dev libhdf5-103-1 libhdf5-cpp-103-1 libhdf5-hl-100 libsz2 libaec0 libaec-dev
      libdnnl-dev libdnnl2 libgtest-dev googletest libgmock-dev libbenchmark-dev libbenchmark1debian
      libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libcli11-dev libpng-dev libpng16-16 zlib1g-dev)
cd "$dest"
apt-get download "${pkgs[@]}"
du -sh "$dest"
