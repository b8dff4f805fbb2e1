#!/usr/bin/env bash
# Builds livernet and runs the test suite (GPU tests skip, with the reason, when there is no GPU).
#
#   scripts/test.sh [setup.sh options] [--fuzz SECONDS] [-- ctest options]
#
# Installs the test-only reference oracles (Debian's PyTorch etc.) on first use. With --sanitize the
# CPU code is built with ASan + UBSan in build-asan/ and the suite runs there. With --fuzz S, after the
# suite passes, every file parser is fuzzed for S seconds (scripts/fuzz.sh: clang, libFuzzer, build-fuzz/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup_args=() ctest_args=() build_dir="build" sanitize=0 fuzz_seconds=0
while (($#)); do
  case "$1" in
    --) shift; ctest_args=("$@"); break ;;
    --build-dir) build_dir="$2"; setup_args+=("$1" "$2"); shift ;;
    --sanitize) sanitize=1; setup_args+=("$1") ;;
    --fuzz) fuzz_seconds="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) setup_args+=("$1") ;;
  esac
  shift
done
((sanitize)) && [[ $build_dir == build ]] && build_dir="build-asan"
"$here/scripts/setup.sh" --test-deps --build-dir "$build_dir" "${setup_args[@]}"
((fuzz_seconds > 0)) && "$here/scripts/setup.sh" --fuzz-deps --deps-only
# Under ASan the HDF5 check's child process gets no address-space budget (io/hdf5.cpp): single allocations
# are capped at 1 GiB instead, failing as malloc does (the crafted-file tests rely on it).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:max_allocation_size_mb=1024}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build_dir"
reason=$(./tools/info 2>/dev/null | sed -n 's/^  CUDA devices: none (\(.*\))$/\1/p')
[[ -n $reason ]] && echo "test.sh: GPU tests will be skipped: $reason"
ctest --output-on-failure -j "$(nproc)" --timeout 900 "${ctest_args[@]}"
if ((fuzz_seconds > 0)); then
  cd "$here"
  echo "test.sh: fuzzing each file parser for ${fuzz_seconds} s"
  unset ASAN_OPTIONS UBSAN_OPTIONS  # fuzz.sh sets its own
  scripts/fuzz.sh --jobs "$(nproc)" --time "$fuzz_seconds"
fi
