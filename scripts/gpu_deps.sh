#!/usr/bin/env bash
# Run HERE (Debian 12, with internet): gathers what the lent GPU machine lacks into deps/gpu/ (git-ignored):
#  - the .deb files of our build dependencies and of their runtime libraries (unpacked there with
#    dpkg -x into a private prefix, never into /; a library is used only where the machine lacks it);
#  - cuDNN and cuBLAS headers from this toolkit (the machine has those libraries only as PyTorch wheels).
# Then pass `carry: ["deps/gpu"]` to the device run of scripts/gpu_check.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$here/deps/gpu"
rm -rf "$dest"
mkdir -p "$dest/debs" "$dest/include"
pkgs=(libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libhdf5-cpp-103-1 libsz2 libaec0 libaec-dev
      libdnnl-dev libdnnl2 ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian
      libyaml-cpp-dev libyaml-cpp0.7 nlohmann-json3-dev libcli11-dev libpng-dev libpng16-16 zlib1g-dev
      # DCMTK (its CMake targets name the -dev libraries' .so links) and its runtime libraries
      libdcmtk-dev libdcmtk17 libssl-dev libtiff-dev libtiff6 libtiffxx6 libwrap0 libwrap0-dev libxml2 libxml2-dev
      libjpeg62-turbo libjpeg62-turbo-dev libicu72 libjbig0 liblerc4 libdeflate0 libwebp7 liblzma5
      # runtime libraries of the above (HDF5 links libcurl and its dependencies)
      libcurl4 libcurl3-gnutls libbrotli1 libcom-err2 libffi8 libgmp10 libgnutls30 libgssapi-krb5-2 libhogweed6
      libidn2-0 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 libnettle8 libnghttp2-14
      libp11-kit0 libpsl5 librtmp1 libsasl2-2 libssh2-1 libssl3 libtasn1-6 libunistring2 libzstd1)
(cd "$dest/debs" && apt-get download "${pkgs[@]}" 2>&1 | grep -v '^W:' || true)
cp /usr/local/cuda/include/cudnn*.h /usr/local/cuda/include/cublas*.h "$dest/include/"
du -sh "$dest"
