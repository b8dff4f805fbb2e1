#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build for that GPU (or use --build DIR), run every test (the GPU
# parity tests included), compute-sanitizer on the GPU op tests, and the kernel benchmarks; print a
# summary table. Logs and JSON go to $OUT (or --out DIR). Budget: well under 8 minutes on an H100.
#
#   scripts/gpu_check.sh [--build DIR] [--out DIR] [--arch 90] [--quick] [--compile]
#
# --quick skips compute-sanitizer; --compile also times torch.compile in the PyTorch comparison.
#
# Dependencies: uses the system's packages when present; otherwise unpacks deps/gpu/*.deb (made here by
# scripts/gpu_deps.sh) into a private prefix. cuDNN comes from the toolkit or from PyTorch's wheels.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="" out="${OUT:-$here/gpu-check-out}" arch="" quick=0 compile=0
while (($#)); do
  case "$1" in
    --build) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --arch) arch="$2"; shift ;;
    --quick) quick=1 ;;
    --compile) compile=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out"
log() { echo "[gpu_check $(date +%T)] $*" | tee -a "$out/summary.txt"; }
t0=$(date +%s)
export PATH="/usr/local/cuda/bin:$PATH"

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader > "$out/gpu.txt" 2>&1 \
  || { log "nvidia-smi failed: no GPU here?"; cat "$out/gpu.txt"; }
log "GPU: $(cat "$out/gpu.txt")"
[[ -z $arch ]] && arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
arch=${arch:-90}

cmake_extra=()
if [[ -z $build ]]; then
  build="$here/build-gpu"
  # Packages: the system's, else the carried .debs.
  if ! ls /usr/include/oneapi/dnnl/dnnl.hpp >/dev/null 2>&1; then
    prefix=/tmp/livernet-deps
    if ls "$here"/deps/gpu/*.deb >/dev/null 2>&1; then
      mkdir -p "$prefix"
      for f in "$here"/deps/gpu/*.deb; do dpkg -x "$f" "$prefix"; done
      export CMAKE_PREFIX_PATH="$prefix/usr:$prefix/usr/lib/x86_64-linux-gnu/cmake${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
      export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:$prefix/usr/lib/x86_64-linux-gnu/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      cmake_extra+=(-DHDF5_ROOT="$prefix/usr/lib/x86_64-linux-gnu/hdf5/serial" -DHDF5_INCLUDE_DIRS="$prefix/usr/include/hdf5/serial"
                    -DGTEST_ROOT="$prefix/usr")
      log "dependencies unpacked from deps/gpu into $prefix"
    else
      log "no oneDNN/HDF5 on this machine and no deps/gpu/*.deb: run scripts/gpu_deps.sh where apt works and carry deps/gpu"
      exit 1
    fi
  fi
  # cuDNN: the toolkit's, else PyTorch's wheel.
  if ! ls /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h >/dev/null 2>&1; then
    wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
    [[ -z $wheel ]] && wheel=$(dirname "$(dirname "$(find / -name 'libcudnn.so.9*' 2>/dev/null | head -1)")")
    lib=$(ls "$wheel"/lib/libcudnn.so.9* 2>/dev/null | head -1)
    if [[ -f $wheel/include/cudnn.h && -n $lib ]]; then
      cmake_extra+=(-DCUDNN_INCLUDE_DIR="$wheel/include" -DCUDNN_LIBRARY="$lib")
      export LD_LIBRARY_PATH="$wheel/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      log "cuDNN from $wheel ($(basename "$lib"))"
    else
      log "cuDNN not found (no cudnn.h in the toolkit and no nvidia.cudnn wheel)"; exit 1
    fi
  fi
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVERNET_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$arch" "${cmake_extra[@]}" > "$out/configure.log" 2>&1 \
    || { log "configure failed"; tail -30 "$out/configure.log"; exit 1; }
  cmake --build "$build" -j "$(nproc)" > "$out/build.log" 2>&1 || { log "build failed"; grep -E 'error' "$out/build.log" | head -30; exit 1; }
  log "built $build for sm_$arch in $(( $(date +%s) - t0 )) s"
fi
for lib in "$build"/tests/test_*; do
  missing=$(ldd "$lib" 2>/dev/null | grep "not found" || true)
  [[ -n $missing ]] && { log "$(basename "$lib") cannot load: $missing"; exit 1; }
done

"$build/tools/info" 2>&1 | tee "$out/info.txt"

log "running the test suite"
(cd "$build" && ctest -j 4 --timeout 600 --output-on-failure > "$out/ctest.log" 2>&1)
tests_rc=$?
tail -5 "$out/ctest.log" | tee -a "$out/summary.txt"
skipped=$(grep -c "Skipped" "$out/ctest.log" || true)
log "tests exit code $tests_rc, $skipped skipped"

san_rc=0
if ((!quick)) && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool "$tool" --error-exitcode 9 "$build/tests/test_kernels" --gtest_filter='*Gpu*' \
      > "$out/sanitizer-$tool.log" 2>&1
    rc=$?
    log "compute-sanitizer $tool on the GPU op tests: exit $rc ($(grep -c 'ERROR SUMMARY: 0 errors' "$out/sanitizer-$tool.log") clean summaries)"
    ((rc)) && san_rc=$rc
  done
fi

log "kernel benchmarks"
for b in "$build"/bench/bench_*; do
  name=$(basename "$b")
  "$b" --benchmark_filter='gpu:1' --benchmark_min_time=0.2 --benchmark_format=console \
       --benchmark_out="$out/$name.json" --benchmark_out_format=json > "$out/$name.txt" 2>&1
done

log "model throughput (tools/bench, paper model, bf16)"
for b in 64 128; do
  "$build/tools/bench" --model paper --device cuda --batch "$b" --size 299 --train --iters 10 --json "$out/bench_paper_train_b$b.json" \
    > "$out/bench_paper_train_b$b.txt" 2>&1 || log "tools/bench batch $b failed: $(tail -1 "$out/bench_paper_train_b$b.txt")"
done
if python3 -c "import torch, torchvision" 2>/dev/null; then
  log "side by side with PyTorch (bench/compare_pytorch_gpu.py)"
  cmp_args=(--build "$build" --batches 64 128 --iters 10)
  ((compile)) || cmp_args+=(--no-compile)
  python3 "$here/bench/compare_pytorch_gpu.py" "${cmp_args[@]}" --out "$out/compare_pytorch_gpu.md" > "$out/compare_pytorch_gpu.log" 2>&1 \
    || log "PyTorch comparison failed: $(tail -3 "$out/compare_pytorch_gpu.log")"
fi

{
  echo
  echo "== summary ($(cat "$out/gpu.txt")) =="
  printf '%-58s %12s\n' "benchmark (GPU)" "GB/s"
  python3 - "$out" <<'PY'
import json, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/bench_*.json")):
    for b in json.load(open(f)).get("benchmarks", []):
        if "bytes_per_second" in b:
            print(f"{b['name']:<58} {b['bytes_per_second'] / 1e9:12.1f}")
PY
  [[ -f $out/compare_pytorch_gpu.md ]] && cat "$out/compare_pytorch_gpu.md"
  echo "tests: exit $tests_rc ($(grep -E 'tests passed' "$out/ctest.log"))"
  echo "compute-sanitizer: exit $san_rc"
  echo "total time: $(( $(date +%s) - t0 )) s"
} | tee -a "$out/summary.txt"
exit $(( tests_rc || san_rc ))
