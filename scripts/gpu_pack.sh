#!/usr/bin/env bash
# Run HERE (Debian 12, CUDA toolkit, no GPU needed): builds livernet for one GPU architecture with shared
# libraries and packs what a GPU machine needs to run it into one compressed file, so that a lent GPU's
# scarce minutes go to running, not compiling. scripts/gpu_check.sh --prebuilt FILE unpacks it there.
#
#   scripts/gpu_pack.sh [--arch 90] [--build-dir build-gpu] [--baseline REV] [--out deps/gpu/livernet-gpu.tar.xz]
#
# Packed: the build's programs (tools, tests, benchmarks) and its two shared libraries, with relative
# run paths ($ORIGIN), so the tree works wherever it is unpacked at the same place relative to the
# repository; the shared libraries they load from Debian packages (HDF5, oneDNN, DCMTK, yaml-cpp, ...;
# used there only where the machine lacks a library of that name); cuDNN and cuBLAS headers are not
# needed (the GPU machine has those libraries as PyTorch wheels). With --baseline REV, also tools/bench of
# that commit (built in a temporary worktree, with this commit's CMake files) under build-base/, for an
# old-versus-new comparison in the same run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
arch=90 build_dir=build-gpu baseline="" out="$here/deps/gpu/livernet-gpu.tar.xz"
. "$here/scripts/lib/options.sh"
parse_options "arch build-dir baseline out" "" "$@"
export PATH="/usr/local/cuda/bin:$PATH"
"$here/scripts/setup.sh" --deps-only >/dev/null

configure_and_build() {  # SOURCE_DIR BUILD_DIR TARGETS...
  local src=$1 bdir=$2; shift 2
  cmake -S "$src" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVERNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DLIVERNET_SHARED_LIBS=ON -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON >/dev/null
  cmake --build "$bdir" -j "$(nproc)" ${1:+--target "$@"}
}

cd "$here"
configure_and_build "$here" "$here/$build_dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
files=()
for f in "$build_dir"/tools/* "$build_dir"/tests/test_* "$build_dir"/bench/bench_* "$build_dir"/*.so*; do
  [[ -f $f && ( -x $f || $f == *.so* ) ]] && files+=("$f")
done
if [[ -n $baseline ]]; then
  wt=$(mktemp -d /tmp/livernet-base.XXXX)
  git -C "$here" worktree add --detach "$wt" "$baseline" >/dev/null
  # The baseline with its own build files (a baseline older than LIVERNET_SHARED_LIBS builds static).
  configure_and_build "$wt" "$wt/build-base" bench
  mkdir -p "$stage/build-base/tools"
  cp "$wt/build-base/tools/bench" "$stage/build-base/tools/"
  cp "$wt"/build-base/*.so* "$wt"/build-base/tools/*.so* "$stage/build-base/" 2>/dev/null || true
  # Baselines from before the floor libraries: bench's $ORIGIN run path points at ../ for liblivernet.so
  # and at tools/ for liblivernet_tools.so; keep that shape.
  mv "$stage"/build-base/liblivernet_tools.so* "$stage/build-base/tools/" 2>/dev/null || true
  git -C "$here" rev-parse "$baseline" > "$stage/build-base/REVISION"
  git -C "$here" worktree remove --force "$wt"
fi
# Libraries from Debian packages that the programs load (not the C/C++ runtime, not CUDA's own).
mkdir -p "$stage/deps/gpu/lib"
ldd "${files[@]}" 2>/dev/null | awk '/=> \//{print $3}' | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
    libcudart.so*|libcublas*|libcudnn*|libnccl*|liblivernet*) ;;  # NCCL too: PyTorch's wheel has it (200 MB)
    *) cp -L "$lib" "$stage/deps/gpu/lib/" ;;
  esac
done
tar -C "$here" -cf "$stage/pack.tar" "${files[@]}"
tar -C "$stage" -rf "$stage/pack.tar" deps/gpu/lib $( [[ -n $baseline ]] && echo build-base )
mkdir -p "$(dirname "$out")"
xz -T0 -6 -c "$stage/pack.tar" > "$out.tmp"
mv "$out.tmp" "$out"
echo "gpu_pack.sh: $(du -h "$out" | cut -f1) in $out ($(tar -tf "$stage/pack.tar" | wc -l) files; $(ls "$stage/deps/gpu/lib" | wc -l) libraries)"
