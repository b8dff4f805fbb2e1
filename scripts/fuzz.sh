#!/usr/bin/env bash
# Fuzzes livernet's file parsers with libFuzzer (clang from Debian) + AddressSanitizer + UBSan.
#
#   scripts/fuzz.sh [--time SECONDS] [--seed N] [--jobs N] [--build-only] [--no-build] [--replay] [--keep-going] [TARGET...]
#
# Targets (fuzz/fuzz_<target>.cpp; default: all): nifti dicom dicom_seg npy png manifest dataset_h5 weights onnx
# train_config class_map.
#   --time S      fuzz each target for S seconds (default 600), one target at a time
#   --seed N      libFuzzer's random seed (default: taken from the commit, so a run on a clean clone of one
#                 commit -- CI's -- mutates the same inputs in the same order as a rerun here; 0: from the clock)
#   --jobs N      build parallelism (default 2)
#   --build-only  configure and build the targets, do not fuzz
#   --no-build    use the targets as built
#   --replay      instead of fuzzing, run every file of fuzz/corpus/<t>/ and fuzz/regressions/<t>/ through
#                 the sanitizer build once (after fixing a parser)
#   --keep-going  fuzz on after a crash, timeout or out-of-memory (libFuzzer's -fork=1 -ignore_*): for
#                 targets whose libraries crash in ways we cannot fix; the inputs stay in <build>/fuzz-work/<t>/artifacts/ for triage instead of being copied
#
# The build folder is $LIVERNET_FUZZ_BUILD (default build-fuzz): clang, -DLIVERNET_FUZZ=ON, CUDA off, tests
# and benchmarks off. Each target's working corpus is <build>/fuzz-work/<t>/corpus (kept between runs and
# seeded from the read-only fuzz/corpus/<t>/, which stays small); crashes, leaks, timeouts and
# out-of-memory inputs go to <build>/fuzz-work/<t>/ and are copied to fuzz/regressions/<t>/ (commit them:
# ctest -L fuzz replays them with the normal build). A line per target reports executions and exec/s.
# HDF5 files are first read by a child process (io/hdf5.cpp): a crash inside libhdf5 is a clean error in
# the target, and the HDF5 targets get no -malloc_limit_mb (libFuzzer's malloc hook would fire in the child).
#
# Limits per input: -timeout=10 s, -rss_limit_mb=2048, -malloc_limit_mb=1024 (one allocation of more
# than 1 GiB is a bug: parsers must check sizes against the file before allocating).
#
# Working with a crash (with the ASAN_OPTIONS / LSAN_OPTIONS this script exports, see below):
#   build-fuzz/fuzz/fuzz_<t> fuzz/regressions/<t>/crash-...                   # reproduce, with the stack
#   build-fuzz/fuzz/fuzz_<t> -minimize_crash=1 -runs=20000 \
#       -exact_artifact_path=/tmp/min fuzz/regressions/<t>/crash-...           # a smaller input, same crash
#   build-fuzz/fuzz/fuzz_<t> -merge=1 NEW_DIR build-fuzz/fuzz-work/<t>/corpus  # a minimal corpus (seeds)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ALL=(nifti dicom dicom_seg npy png manifest dataset_h5 weights onnx train_config class_map)
TIME=600
JOBS=2
BUILD=1
FUZZ=1
REPLAY=0
KEEP_GOING=0
SEED=
TARGETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) TIME=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --build-only) FUZZ=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --replay) REPLAY=1; shift ;;
    --keep-going) KEEP_GOING=1; shift ;;
    --seed) SEED=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (targets: ${ALL[*]})" >&2; exit 2; }
done

if [[ -z $SEED ]]; then
  head=$(git rev-parse HEAD 2>/dev/null || true)
  SEED=0
  if [[ $head =~ ^[0-9a-f]{8} ]]; then SEED=$(( (16#${head:0:8} % 2147483646) + 1 )); fi
fi
[[ $SEED =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seed takes a number, not '$SEED'" >&2; exit 2; }

B=${LIVERNET_FUZZ_BUILD:-build-fuzz}
if [[ $BUILD == 1 ]]; then
  command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (apt-get install clang)" >&2; exit 1; }
  if [[ ! -f $B/CMakeCache.txt ]]; then
    GEN=()
    command -v ninja >/dev/null && GEN=(-G Ninja)
    cmake -S . -B "$B" "${GEN[@]}" -DLIVERNET_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
      -DLIVERNET_CUDA=OFF -DLIVERNET_BUILD_TESTS=OFF -DLIVERNET_BUILD_BENCH=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g"
  fi
  cmake --build "$B" -j "$JOBS" --target "${TARGETS[@]/#/fuzz_}"
fi
[[ $FUZZ == 1 ]] || exit 0

# malloc() may return NULL (C libraries such as libhdf5 check it; C++ new still reports), so that a
# libhdf5 request for 2^63 bytes on a damaged file is the library's handled failure, not a crash.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0}
SUMMARY=()
DETAILS=()
status=0
for t in "${TARGETS[@]}"; do
  exe=$B/fuzz/fuzz_$t
  [[ -x $exe ]] || { echo "fuzz.sh: $exe is not built" >&2; exit 1; }
  seeds=fuzz/corpus/$t
  regress=fuzz/regressions/$t
  malloc_limit=(-malloc_limit_mb=1024)
  asan_options=$ASAN_OPTIONS
  if [[ $t == dataset_h5 || $t == weights ]]; then
    # The child that reads the file first has no address-space limit under ASan: ASan's own cap instead.
    malloc_limit=(-malloc_limit_mb=1000000)
    asan_options+=:max_allocation_size_mb=1024
  fi
  dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  if [[ $REPLAY == 1 ]]; then
    files=()
    for d in "$seeds" "$regress"; do [[ -d $d ]] && while IFS= read -r f; do files+=("$f"); done < <(find "$d" -type f | sort); done
    echo "== $t: replaying ${#files[@]} inputs"
    if ASAN_OPTIONS=$asan_options "$exe" -rss_limit_mb=2048 "${malloc_limit[@]}" -timeout=10 "${files[@]}" >"$B/fuzz-replay-$t.log" 2>&1; then
      SUMMARY+=("$t: ${#files[@]} inputs replayed, all clean")
    else
      SUMMARY+=("$t: FAILED, see $B/fuzz-replay-$t.log"); status=1
    fi
    continue
  fi
  work=$B/fuzz-work/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  log=$work/fuzz-$(date +%Y%m%d-%H%M%S).log
  echo "== $t: fuzzing for ${TIME}s, seed $SEED (log $log)"
  before=$(ls "$work/artifacts" | wc -l)
  mode=()
  [[ $KEEP_GOING == 1 ]] && mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  set +e
  ASAN_OPTIONS=$asan_options "$exe" "${mode[@]}" -max_total_time="$TIME" -timeout=10 -rss_limit_mb=2048 "${malloc_limit[@]}" -print_final_stats=1 -seed="$SEED" \
    -artifact_prefix="$work/artifacts/" "${dict[@]}" "$work/corpus" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  if [[ $KEEP_GOING == 1 ]]; then  # fork mode: "#N: cov: C ft: F corp: K exec/s: E oom/timeout/crash: a/b/c time: Ts ..."
    last=$(grep -aE '^#[0-9]+: cov' "$log" | tail -1)
    execs=$(sed -n 's/^#\([0-9]*\):.*/\1/p' <<<"$last")
    rate=$(sed -n 's/.*exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    faults=$(sed -n 's/.*oom\/timeout\/crash: \([0-9/]*\).*/\1/p' <<<"$last")
  else
    execs=$(grep -a 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}')
    rate=$(grep -a 'stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -aE '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  fi
  line="$t: ${execs:-?} executions, ${rate:-?} exec/s, coverage ${cov:-?} edges, corpus $(ls "$work/corpus" | wc -l) inputs"
  new=$(ls -t "$work/artifacts" | head -n $(( $(ls "$work/artifacts" | wc -l) - before )))
  if [[ $KEEP_GOING == 1 ]]; then
    line+=", oom/timeout/crash ${faults:-?}"
    [[ -n $new ]] && { line+=" -- inputs to triage in $work/artifacts/: $(echo $new | tr '\n' ' ')"; status=1; }
  elif [[ $rc != 0 ]]; then
    mkdir -p "$regress"
    for f in $new; do cp "$work/artifacts/$f" "$regress/"; done
    line+=" -- FOUND A BUG (exit $rc): $(grep -aE 'ERROR: |==== livernet fuzz|runtime error|uncaught exception' "$log" | head -1)"
    line+="; input copied to $regress/ ($(echo $new | tr '\n' ' '))"
    status=1
    # What a reader of the log alone (CI's) needs to reproduce it here: the report and the input itself.
    DETAILS+=("== $t: the sanitizer's report (seed $SEED; full log $log)")
    DETAILS+=("$(awk '/ERROR: |==== livernet fuzz|runtime error|uncaught exception/{on=1} on{print; if (++n >= 60) exit} /^SUMMARY: /{if (on) exit}' "$log")")
    for f in $new; do
      if (( $(stat -c %s "$work/artifacts/$f") <= 65536 )); then
        DETAILS+=("== $t: $f, base64 (save it: base64 -d > fuzz/regressions/$t/$f)" "$(base64 -w 100 "$work/artifacts/$f")" "== end of $f")
      fi
    done
  fi
  echo "$line"
  SUMMARY+=("$line")
done
echo
echo "== fuzz.sh summary"
printf '%s\n' "${SUMMARY[@]}"
((${#DETAILS[@]} == 0)) || printf '%s\n' "" "${DETAILS[@]}"
exit $status
