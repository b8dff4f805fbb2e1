#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build for that GPU (or use --build DIR), run the GPU tests and the
# whole suite, the model benchmark side by side with PyTorch, the kernel benchmarks and
# compute-sanitizer, most valuable first, each step cut to the time left; print a summary table.
# At most 8 files go to $OUT (or --out DIR): summary.txt env.txt build.log ctest.log bench.txt
# compare_pytorch_gpu.md sanitizer.log results.json.
#
#   scripts/gpu_check.sh [--build DIR] [--out DIR] [--arch 90] [--budget SECONDS] [--compile] [--tests REGEX] [--no-bench]
#
# --budget: wall-clock seconds for everything (default 420); --compile: also time torch.compile;
# --tests: only the ctest tests matching REGEX in the whole-suite step; --no-bench: no benchmarks.
# Dependencies: the system's packages when present; otherwise deps/gpu/debs/*.deb (made by
# scripts/gpu_deps.sh where apt works) unpacked into a private prefix, with fallback links only for
# the libraries the system lacks. cuDNN and cuBLAS come from the toolkit or from PyTorch's wheels.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="" out="${OUT:-$here/gpu-check-out}" arch="" budget=420 compile=0 tests_regex="" bench=1
while (($#)); do
  case "$1" in
    --build) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --arch) arch="$2"; shift ;;
    --budget) budget="$2"; shift ;;
    --compile) compile=1 ;;
    --tests) tests_regex="$2"; shift ;;
    --no-bench) bench=0 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
t0=$(date +%s)
deadline=$((t0 + budget))
log() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*" | tee -a "$out/summary.txt"; }
# left RESERVE: seconds until the deadline, less RESERVE (never below 0).
left() { local s=$((deadline - $(date +%s) - ${1:-0})); echo $((s > 0 ? s : 0)); }
# timed WANT CMD...: runs CMD with a limit of WANT seconds or what is left (15 s kept for the summary).
timed() {
  local want=$1; shift
  local lim; lim=$(left 15); ((lim > want)) && lim=$want
  ((lim < 5)) && { log "skipped (no time left): $*"; return 124; }
  timeout -k 5 "$lim" "$@"
}
export PATH="/usr/local/cuda/bin:$PATH" PYTHONUNBUFFERED=1
py=$(command -v python3 || true)

{
  echo "== $(date -u +%FT%TZ) on $(hostname)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm --format=csv 2>&1
  echo "nvcc: $(command -v nvcc) $(nvcc --version 2>&1 | tail -2 | tr '\n' ' ')"
  echo "cmake: $(cmake --version | head -1); ninja: $(ninja --version 2>&1); gcc: $(gcc -dumpversion)"
  grep -h PRETTY_NAME /etc/os-release; ldd --version | head -1
  [[ -n $py ]] && "$py" -c 'import torch, torchvision; print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__, "cudnn", torch.backends.cudnn.version())' 2>&1
  ls /usr/local/cuda/lib64 2>&1 | grep -E 'cublas|cudnn|cudart' | head
} > "$out/env.txt" 2>&1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[[ -z $gpu ]] && { log "nvidia-smi found no GPU"; cat "$out/env.txt"; exit 1; }
log "GPU: $gpu"
[[ -z $arch ]] && arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
arch=${arch:-90}

# ---- dependencies and build ----------------------------------------------------------------------
cmake_extra=()
if [[ -z $build ]]; then
  build="$here/build-gpu"
  multiarch=usr/lib/x86_64-linux-gnu
  if ! ls /usr/include/oneapi/dnnl/dnnl.hpp /usr/include/hdf5/serial/hdf5.h >/dev/null 2>&1; then
    prefix=/tmp/livernet-deps
    ls "$here"/deps/gpu/debs/*.deb >/dev/null 2>&1 ||
      { log "no oneDNN/HDF5 here and no deps/gpu/debs: run scripts/gpu_deps.sh where apt works and carry deps/gpu"; exit 1; }
    mkdir -p "$prefix/fallback"
    for f in "$here"/deps/gpu/debs/*.deb; do dpkg -x "$f" "$prefix"; done
    # Only the libraries this system lacks are put on the loader path: its own libssl etc. stay in use.
    have=$(ldconfig -p | awk '{print $1}')
    for so in "$prefix/$multiarch"/lib*.so.* "$prefix/$multiarch"/hdf5/serial/lib*.so.* "$prefix"/lib/x86_64-linux-gnu/lib*.so.*; do
      [[ -e $so ]] || continue
      name=$(basename "$so")
      grep -qxF "$name" <<< "$have" || ln -sf "$so" "$prefix/fallback/$name"
    done
    export LD_LIBRARY_PATH="$prefix/fallback${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # DCMTK's CMake targets name absolute /usr/lib and /usr/include paths: point them into the prefix.
    for f in "$prefix/$multiarch"/cmake/dcmtk/*.cmake; do
      [[ -e $f ]] && sed -i "s#/usr/lib/x86_64-linux-gnu/#$prefix/$multiarch/#g; s#\"/usr/include#\"$prefix/usr/include#g" "$f"
    done
    cmake_extra+=(-DCMAKE_PREFIX_PATH="$prefix/usr;$prefix/$multiarch/cmake"
                  -DHDF5_ROOT="$prefix/$multiarch/hdf5/serial"
                  -DCMAKE_CXX_FLAGS="-isystem $prefix/usr/include"
                  -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$prefix/fallback")
    log "packages unpacked from deps/gpu/debs into $prefix ($(ls "$prefix/fallback" | wc -l) fallback libraries)"
  fi
  # cuDNN and cuBLAS: the toolkit's, else PyTorch's nvidia-* wheels.
  nv=$([[ -n $py ]] && "$py" -c 'import nvidia, sys; print(list(nvidia.__path__)[0])' 2>/dev/null)
  wheel_find() { [[ -n $nv ]] && find -L "$nv" -name "$1" 2>/dev/null | sort | head -1; }
  if [[ -n $nv ]]; then  # the wheels' libraries (cuDNN's sub-libraries, nvrtc) must be loadable
    for d in $(find -L "$nv" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u); do
      export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
    done
  fi
  if ! ls /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h >/dev/null 2>&1; then
    lib=$(wheel_find 'libcudnn.so.9') inc=$(wheel_find cudnn.h)
    inc=${inc:+$(dirname "$inc")}; inc=${inc:-$here/deps/gpu/include}
    [[ -n $lib ]] || { log "no cuDNN: neither the toolkit nor an nvidia.cudnn wheel has libcudnn.so.9"; exit 1; }
    cmake_extra+=(-DCUDNN_INCLUDE_DIR="$inc" -DCUDNN_LIBRARY="$lib")
    log "cuDNN: $lib (headers $inc)"
  fi
  if [[ ! -e /usr/local/cuda/lib64/libcublas.so ]]; then
    lib=$(wheel_find 'libcublas.so.1[0-9]') lt=$(wheel_find 'libcublasLt.so.1[0-9]') inc=$(wheel_find cublas_v2.h)
    inc=${inc:+$(dirname "$inc")}; inc=${inc:-$here/deps/gpu/include}
    [[ -n $lib && -n $lt ]] || { log "no cuBLAS: neither the toolkit nor an nvidia.cublas wheel has it"; exit 1; }
    cmake_extra+=(-DLIVERNET_CUBLAS_LIBRARY="$lib" -DLIVERNET_CUBLASLT_LIBRARY="$lt" -DLIVERNET_CUDA_EXTRA_INCLUDE="$inc")
    log "cuBLAS: $lib (headers $inc)"
  fi
  [[ -n $py ]] && cmake_extra+=(-DLIVERNET_ORACLE_PYTHON="$py")
  { echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    timed 120 cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVERNET_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$arch" "${cmake_extra[@]}"; } > "$out/build.log" 2>&1 \
    || { log "configure failed:"; tail -40 "$out/build.log"; exit 1; }
  timed 300 cmake --build "$build" -j "$(nproc)" >> "$out/build.log" 2>&1 \
    || { log "build failed:"; grep -E 'error|Error' "$out/build.log" | head -40; exit 1; }
  log "built $build for sm_$arch"
fi
for exe in "$build"/tests/test_* "$build"/tools/bench; do
  [[ -x $exe && ! -d $exe ]] || continue
  missing=$(ldd "$exe" 2>/dev/null | grep "not found" || true)
  [[ -n $missing ]] && { log "$(basename "$exe") cannot load: $missing"; exit 1; }
done
"$build/tools/info" >> "$out/env.txt" 2>&1

# ---- 1. GPU tests first (the parity tests that no CPU machine can run) ----------------------------
gpu_rc=0
: > "$out/ctest.log"
for exe in "$build"/tests/test_*; do t=$(basename "$exe")
  [[ -x $build/tests/$t ]] || continue
  echo "== $t --gtest_filter='*Gpu*:*Cuda*:*Device*'" >> "$out/ctest.log"
  timed 90 "$build/tests/$t" --gtest_filter='*Gpu*:*Cuda*:*Device*' --gtest_brief=1 >> "$out/ctest.log" 2>&1 || gpu_rc=1
done
gpu_pass=$(grep -ho '\[  PASSED  \] [0-9]* test' "$out/ctest.log" | awk '{s+=$4} END{print s+0}')
gpu_fail=$(grep -c '^\[  FAILED  \] [A-Za-z]' "$out/ctest.log")
gpu_skip=$(grep -ho '\[  SKIPPED \] [0-9]* test' "$out/ctest.log" | awk '{s+=$4} END{print s+0}')
log "GPU tests: $gpu_pass passed, $gpu_fail failed, $gpu_skip skipped"
grep '^\[  FAILED  \] [A-Za-z]' "$out/ctest.log" | sort -u | head -20 | tee -a "$out/summary.txt"

# ---- 2. the paper's model side by side with PyTorch -----------------------------------------------
: > "$out/bench.txt"
if ((bench)) && [[ -n $py ]] && "$py" -c "import torch, torchvision" 2>/dev/null; then
  cmp_args=(--build "$build" --batches 64 128 --iters 10 --warmup 3)
  ((compile)) || cmp_args+=(--no-compile)
  echo "== bench/compare_pytorch_gpu.py ${cmp_args[*]}" >> "$out/bench.txt"
  timed 170 "$py" "$here/bench/compare_pytorch_gpu.py" "${cmp_args[@]}" --out "$out/compare_pytorch_gpu.md" >> "$out/bench.txt" 2>&1 \
    || log "PyTorch comparison failed or was cut: $(tail -2 "$out/bench.txt" | tr '\n' ' ')"
fi
if ((bench)); then
  echo "== tools/bench --model paper --device cuda --batch 64 --train --iters 10 (per-block times)" >> "$out/bench.txt"
  timed 60 "$build/tools/bench" --model paper --device cuda --batch 64 --size 299 --train --iters 10 \
    --json "$out/bench_paper_train_b64.json" >> "$out/bench.txt" 2>&1 || log "tools/bench failed: $(tail -1 "$out/bench.txt")"
fi

# ---- 3. the whole suite ----------------------------------------------------------------------------
log "whole suite (ctest)"
# 8 tests at a time with 2 OpenMP threads each: 16 cores, no oversubscription.
(cd "$build" && export OMP_NUM_THREADS=2 LN_VERBOSE=1 && timed 240 ctest -j 8 --timeout 200 --output-on-failure ${tests_regex:+-R "$tests_regex"} >> "$out/ctest.log" 2>&1)
tests_rc=$?
log "ctest: exit $tests_rc; $(grep -E 'tests passed' "$out/ctest.log" | tail -1)"
grep -E '^\s*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run)' "$out/ctest.log" | tee -a "$out/summary.txt"
# The whole network on the GPU against torchvision, with its errors printed (the data is made by ctest).
echo "== LN_VERBOSE=1 test_model_parity --gtest_filter='*Gpu*'" >> "$out/ctest.log"
LN_VERBOSE=1 timed 60 "$build/tests/test_model_parity" --gtest_filter='*Gpu*' >> "$out/ctest.log" 2>&1
log "whole network on the GPU vs torchvision: exit $?; $(grep -hE '^(GPU|grad_)' "$out/ctest.log" | grep -c .) errors printed"

# ---- 4. kernel benchmarks --------------------------------------------------------------------------
for b in "$build"/bench/bench_*; do
  [[ -x $b ]] && ((bench)) || continue
  echo "== $(basename "$b") --benchmark_filter=gpu:1" >> "$out/bench.txt"
  timed 40 "$b" --benchmark_filter='gpu:1' --benchmark_min_time=0.05 --benchmark_format=console \
    --benchmark_out="$out/$(basename "$b").json" --benchmark_out_format=json >> "$out/bench.txt" 2>&1 \
    || log "$(basename "$b") failed or was cut"
done

# ---- 5. compute-sanitizer on the GPU op tests ------------------------------------------------------
san_rc=0
if command -v compute-sanitizer >/dev/null; then
  timed 100 compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/test_kernels" --gtest_filter='*Gpu*' --gtest_brief=1 \
    > "$out/sanitizer.log" 2>&1
  san_rc=$?
  log "compute-sanitizer memcheck on test_kernels '*Gpu*': exit $san_rc; $(grep -h 'ERROR SUMMARY' "$out/sanitizer.log" | tail -1)"
fi

# ---- summary ---------------------------------------------------------------------------------------
"$py" - "$out" <<'PY' 2>/dev/null
import json, glob, os, sys
out = sys.argv[1]
merged = {}
for f in sorted(glob.glob(out + "/bench_*.json")):
    try:
        merged[os.path.basename(f)[:-5]] = json.load(open(f))
    except Exception as e:
        merged[os.path.basename(f)[:-5]] = {"error": str(e)}
    os.remove(f)
json.dump(merged, open(out + "/results.json", "w"), indent=1)
PY
{
  echo
  echo "== summary: $gpu, sm_$arch =="
  echo "GPU tests: $gpu_pass passed, $gpu_fail failed, $gpu_skip skipped"
  echo "whole suite: exit $tests_rc; $(grep -E 'tests passed' "$out/ctest.log" | tail -1)"
  echo "compute-sanitizer memcheck: exit $san_rc"
  [[ -f $out/compare_pytorch_gpu.md ]] && cat "$out/compare_pytorch_gpu.md"
  grep -E '^(images/s|peak|train|forward)' "$out/bench.txt" | head -8
  echo "total time: $(( $(date +%s) - t0 )) s"
} | tee -a "$out/summary.txt"
exit $(( gpu_rc || tests_rc || san_rc ))
