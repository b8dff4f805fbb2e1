#!/usr/bin/env bash
# Installs the Debian packages livernet needs (only the missing ones), then configures and builds.
#
#   scripts/setup.sh [--deps-only] [--test-deps] [--fuzz-deps] [--build-dir DIR] [--build-type TYPE]
#                    [--cuda AUTO|ON|OFF] [--cuda-arch LIST] [--sanitize] [--jobs N]
#
#   --deps-only     install packages, do not build
#   --test-deps     also install the test-only tools: reference oracles (Debian's PyTorch, torchvision, h5py,
#                   numpy, onnx; onnxruntime from PyPI into deps/onnxruntime, a virtual environment),
#                   Chromium (renders the HTML report in a test) and Open MPI (the build then has MPI)
#   --fuzz-deps     also install clang and libFuzzer (scripts/fuzz.sh)
#   --build-dir     build directory (default: build, or build-asan with --sanitize)
#   --build-type    CMake build type (default: Release; RelWithDebInfo with --sanitize)
#   --cuda          build the CUDA backend: AUTO (when nvcc is found, default), ON or OFF
#   --cuda-arch     CUDA architectures, e.g. 90 or "80;90" or "75;80;86;89;90;100;120" (default: the local GPU's
#                   ("native") when one is present, else 90; CMake itself defaults to Turing..Blackwell)
#   --sanitize      AddressSanitizer + UndefinedBehaviorSanitizer build of the CPU code (implies --cuda OFF)
#   --jobs          parallel build jobs (default: number of cores)
#   --targets "a b" build only these targets (default: everything, tests and benchmarks included)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps_only=0 test_deps=0 fuzz_deps=0 build_dir="" build_type="" cuda="AUTO" cuda_arch="" sanitize=0 jobs="$(nproc)" targets=""
. "$here/scripts/lib/options.sh"
parse_options "build-dir build-type cuda cuda-arch jobs targets" "deps-only test-deps fuzz-deps sanitize" "$@"

# ocl-icd-opencl-dev: Debian builds oneDNN with its OpenCL runtime, and libdnnl-dev's CMake config calls
# find_package(OpenCL) whatever the user needs, but the package only recommends the OpenCL headers and
# loader (and we install with --no-install-recommends). Installing what the config needs (a small package)
# keeps us on oneDNN's own config rather than a find module of ours for it. scripts/check_fresh.sh (CI)
# checks the list on a bare Debian 12 root.
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libhdf5-dev libdnnl-dev ocl-icd-opencl-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libpng-dev zlib1g-dev libdcmtk-dev
)
# Open MPI: the tests run tools/train under mpirun (docs/distributed.md), so the test build is an MPI build.
test_packages=(python3 python3-torch python3-torchvision python3-h5py python3-numpy python3-onnx python3-venv chromium dcmtk
               libopenmpi-dev openmpi-bin)
((test_deps)) && packages+=("${test_packages[@]}")
((fuzz_deps)) && packages+=(clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup.sh: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# onnxruntime, the oracle of the ONNX export test, is not packaged by Debian: a virtual environment over the
# system's Python (its numpy) with the wheel from PyPI. Without network the test skips, saying so.
ort_venv="$here/deps/onnxruntime" ort_version="1.32.0"
if ((test_deps)) && ! "$ort_venv/bin/python" -c "import onnxruntime" 2>/dev/null; then
  echo "setup.sh: installing onnxruntime $ort_version from PyPI into deps/onnxruntime"
  rm -rf "$ort_venv"
  if ! { python3 -m venv --system-site-packages "$ort_venv" &&
         timeout 600 "$ort_venv/bin/pip" install -q --disable-pip-version-check "onnxruntime==$ort_version"; } >/dev/null 2>&1; then
    echo "setup.sh: could not install onnxruntime from PyPI (no network?); the ONNX runtime test will be skipped"
    rm -rf "$ort_venv"
  fi
fi
((deps_only)) && { echo "setup.sh: packages ready"; exit 0; }

if ((sanitize)); then
  cuda="OFF"
  build_dir="${build_dir:-build-asan}"
  build_type="${build_type:-RelWithDebInfo}"
fi
build_dir="${build_dir:-build}"
build_type="${build_type:-Release}"
[[ -d /usr/local/cuda/bin ]] && export PATH="/usr/local/cuda/bin:$PATH"

args=(-S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" -DLIVERNET_CUDA="$cuda"
      -DLIVERNET_SANITIZE=$([[ $sanitize == 1 ]] && echo ON || echo OFF))
if [[ -z "$cuda_arch" && ! -f "$build_dir/CMakeCache.txt" ]]; then
  # One architecture builds several times faster than the full list.
  if nvidia-smi -L > /dev/null 2>&1; then cuda_arch="native"; else cuda_arch="90"; fi
fi
[[ -n "$cuda_arch" ]] && args+=(-DCMAKE_CUDA_ARCHITECTURES="$cuda_arch")
cmake "${args[@]}" >/dev/null
if [[ -n $targets ]]; then
  # shellcheck disable=SC2086
  cmake --build "$build_dir" -j "$jobs" --target $targets
else
  cmake --build "$build_dir" -j "$jobs"
fi
echo "setup.sh: built in $build_dir"
