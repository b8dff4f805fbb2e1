#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: everything livernet can only prove on a card, most valuable first, each
# step cut to its own deadline inside --budget, then a summary. Steps (--steps, comma-separated, in this
# order):
#   bench    the paper's model side by side with PyTorch (bench/compare_pytorch_gpu.py): livernet eager and
#            CUDA-graph, an older build (--prebuilt with a baseline), PyTorch eager; host syncs and launches
#   trace    where GPU time goes: every kernel of a training step by category, ours (CUPTI tracer,
#            bench/cupti_trace) beside PyTorch's (torch.profiler), bench/trace_compare.py
#   tests    every GPU test of every test program (gtest filter *Gpu*:*Cuda*:*Device*), model parity on the
#            GPU against torchvision (reference data made with the machine's PyTorch)
#   e2e      the product end to end on the card (scripts/gpu_e2e.sh): phantoms, tools/train with
#            configs/paper.yaml killed once and resumed, evaluate and predict on the GPU and the CPU
#   sanitize compute-sanitizer memcheck, racecheck and synccheck on training steps of the paper model
#   compile  torch.compile on the same model (minutes of compilation: last)
# tests, e2e and sanitize run at the same time (the GPU has room; none of them is timed); bench and trace
# run alone.
#
#   scripts/gpu_check.sh [--prebuilt FILE | --build DIR] [--out DIR] [--budget SECONDS] [--steps LIST]
#                        [--batches "64 128"] [--iters N]
#
# --prebuilt: a file from scripts/gpu_pack.sh (made where apt works; unpacked here in seconds); --build: an
# existing build; neither: configure and build here (needs the build packages installed: a GPU machine
# without apt has them only through --prebuilt).
# Writes to --out (default $OUT): summary.txt and logs.tgz (every log; at most 8 files come back from a
# lent machine, so they travel as one archive), refreshed after every step.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prebuilt="" build="" out="${OUT:-$here/gpu-check-out}" budget=330 steps="bench,trace,tests,e2e,sanitize"
batches="64 128" iters=10
. "$here/scripts/lib/options.sh"
parse_options "prebuilt build out budget steps batches iters" "" "$@"
mkdir -p "$out" && out=$(cd "$out" && pwd)
logs="$out/logs" && mkdir -p "$logs"
t0=$(date +%s)
deadline=$((t0 + budget))
summary="$out/summary.txt"
log() { echo "[gpu_check +$(( $(date +%s) - t0 ))s] $*" | tee -a "$summary"; }
left() { local s=$((deadline - $(date +%s) - ${1:-0})); echo $((s > 0 ? s : 0)); }
# timed WANT RESERVE CMD...: CMD limited to WANT seconds or what is left less RESERVE (kept for later steps).
timed() {
  local want=$1 reserve=$2; shift 2
  local lim; lim=$(left "$reserve"); ((lim > want)) && lim=$want
  ((lim < 5)) && { log "skipped (no time left): ${*:0:3}"; return 124; }
  timeout -k 5 "$lim" "$@"
}
pack() { tar -C "$out" -czf "$out/logs.tgz.tmp" logs 2>/dev/null && mv "$out/logs.tgz.tmp" "$out/logs.tgz"; }
want() { [[ ",$steps," == *",$1,"* ]]; }
# Command prefixes that keep the timed work and the background reference-data job on separate cores.
pin_timed=() pin_background=()
command -v taskset >/dev/null && (( $(nproc) >= 16 )) && pin_timed=(taskset -c 0-7) pin_background=(taskset -c 12-15)
export PATH="/usr/local/cuda/bin:$PATH" PYTHONUNBUFFERED=1
py=$(command -v python3 || true)

# ---- machine ---------------------------------------------------------------------------------------------
{
  echo "== $(date -u +%FT%TZ) on $(hostname); repository at $here"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,clocks.sm,power.limit --format=csv 2>&1
  echo "nvcc: $(command -v nvcc) $(nvcc --version 2>&1 | tail -2 | tr '\n' ' ')"
  echo "compute-sanitizer: $(command -v compute-sanitizer || echo none); cmake: $(cmake --version 2>/dev/null | head -1); gcc: $(gcc -dumpversion 2>/dev/null)"
  grep -h PRETTY_NAME /etc/os-release; ldd --version | head -1; nproc; free -g | head -2
  [[ -n $py ]] && "$py" -c 'import torch, torchvision; print("python", __import__("sys").version.split()[0], "torch", torch.__version__, "torchvision", torchvision.__version__, "cudnn", torch.backends.cudnn.version(), "cuda", torch.version.cuda)' 2>&1
} > "$logs/env.txt" 2>&1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
[[ -z $gpu ]] && { log "nvidia-smi found no GPU"; cat "$logs/env.txt"; pack; exit 1; }
log "GPU: $gpu; steps: $steps; budget ${budget}s"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')

# ---- libraries: CUDA's from PyTorch's wheels where the toolkit lacks them; Debian's only where missing ----
nv=$([[ -n $py ]] && "$py" -c 'import nvidia, sys; print(list(nvidia.__path__)[0])' 2>/dev/null)
if [[ -n $nv ]]; then
  for d in $(find -L "$nv" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u); do
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
  done
fi
# NCCL (the build links it; scripts/gpu_pack.sh leaves it out): PyTorch's wheel (above), else wherever it is.
if ! ldconfig -p | grep -q 'libnccl.so.2 ' && ! tr ':' '\n' <<< "${LD_LIBRARY_PATH:-}" | while read -r d; do [[ -e $d/libnccl.so.2 ]] && echo y; done | grep -q y; then
  nccl=$(find / -xdev -name 'libnccl.so.2' -not -path '/proc/*' 2>/dev/null | head -1)
  [[ -n $nccl ]] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$(dirname "$nccl")"
fi
linked=0
link_missing() {  # DIR: links to DIR's libraries that this system lacks, in a fallback folder on the path
  local fb=/tmp/livernet-fallback have
  mkdir -p "$fb"
  have=$(ldconfig -p | awk '{print $1}')
  for so in "$1"/lib*.so*; do
    [[ -e $so ]] || continue
    grep -qxF "$(basename "$so")" <<< "$have" || ln -sf "$so" "$fb/$(basename "$so")"
  done
  export LD_LIBRARY_PATH="$fb${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  linked=$(ls "$fb" | wc -l)
}

# The test programs hold absolute paths of the machine they were built on (their reference-data folder):
# when this checkout sits elsewhere, make that path lead here.
[[ $here != /work/main && ! -e /work/main ]] && mkdir -p /work && ln -s "$here" /work/main

# ---- the build -----------------------------------------------------------------------------------------
base=""
if [[ -n $prebuilt ]]; then
  tar -C "$here" -xJf "$prebuilt" || { log "cannot unpack $prebuilt"; pack; exit 1; }
  build="$here/build-gpu"
  [[ -x $here/build-base/tools/bench ]] && base="$here/build-base"
  link_missing "$here/deps/gpu/lib"
  log "unpacked $prebuilt ($linked libraries from it used where the system has none)${base:+; baseline $(cat "$base/REVISION" 2>/dev/null)}"
elif [[ -z $build ]]; then
  build="$here/build-gpu"
  log "building from source (no --prebuilt): needs scripts/setup.sh's packages on this machine"
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLIVERNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${arch:-90}" \
    > "$logs/build.log" 2>&1 && timed 300 60 cmake --build "$build" -j "$(nproc)" >> "$logs/build.log" 2>&1 \
    || { log "build failed: $(grep -m3 -E 'error' "$logs/build.log")"; pack; exit 1; }
fi
for exe in "$build"/tests/test_* "$build"/tools/bench ${base:+"$base/tools/bench"}; do
  missing=$(ldd "$exe" 2>/dev/null | grep "not found" || true)
  [[ -n $missing ]] && { log "$(basename "$exe") cannot load: $missing"; pack; exit 1; }
done
"$build/tools/info" >> "$logs/env.txt" 2>&1 || log "tools/info failed: $(tail -2 "$logs/env.txt" | tr '\n' ' ')"
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >> "$logs/env.txt"
pack

# Reference data for the parity tests, made by this machine's PyTorch on 4 cores while the GPU is timed.
refs_pid=""
if want tests && [[ -n $py ]]; then
  data="$build/tests/data"
  mkdir -p "$data" && rm -f "$data/.complete"
  ( export OMP_NUM_THREADS=4
    "${pin_background[@]}" "$py" "$here/tests/model_reference.py" "$data/model" &&
    "$py" "$here/tests/optim_reference.py" "$data/optim_reference.h5" &&
    "$py" "$here/tests/torch_reference.py" "$data/torch_reference.h5" && touch "$data/.complete" ) > "$logs/reference_data.log" 2>&1 &
  refs_pid=$!
fi

# ---- bench ---------------------------------------------------------------------------------------------
if want bench && [[ -n $py ]]; then
  log "bench: livernet eager / graph${base:+ / baseline} vs PyTorch eager, batches $batches"
  timed 150 170 "${pin_timed[@]}" "$py" "$here/bench/compare_pytorch_gpu.py" --build "$build" ${base:+--baseline-build "$base"} \
    --batches $batches --iters "$iters" --warmup 3 --no-compile --out "$logs/compare_pytorch_gpu.md" \
    --json "$logs/compare_pytorch_gpu.json" > "$logs/bench.log" 2>&1 || log "bench: exit $? ($(tail -1 "$logs/bench.log"))"
  grep -E '^batch' "$logs/bench.log" | tee -a "$summary"
  pack
fi

# ---- trace ---------------------------------------------------------------------------------------------
if want trace && [[ -n $py ]]; then
  log "trace: kernels of a training step (batch 64), ours (CUPTI) beside PyTorch's (torch.profiler)"
  timed 70 110 bash "$here/bench/cupti_trace/device_profile.sh" --build "$build" --out "$logs/trace" --batch 64 \
    --iters 3 --warmup 3 --graph --timeout 30 > "$logs/trace_driver.log" 2>&1 || log "trace: $(tail -3 "$logs/trace_driver.log" | tr '\n' ' ')"
  [[ -f $logs/trace/compare.md ]] && head -45 "$logs/trace/compare.md" >> "$summary"
  pack
fi

# ---- tests, e2e, sanitize (together) ---------------------------------------------------------------------
pids=()
if want tests; then
  (
    if [[ -n $refs_pid ]]; then
      while kill -0 "$refs_pid" 2>/dev/null; do sleep 1; done
      [[ -f $build/tests/data/.complete ]] || echo "reference data: failed (see reference_data.log)"
    fi
    for exe in "$build"/tests/test_*; do
      echo "== $(basename "$exe") --gtest_filter='*Gpu*:*Cuda*:*Device*'"
      LN_VERBOSE=1 timed 100 10 "$exe" --gtest_filter='*Gpu*:*Cuda*:*Device*' --gtest_brief=0 2>&1 | grep -vE '^\[ RUN|^\[       OK' || true
    done
  ) > "$logs/tests.log" 2>&1 &
  pids+=($!)
fi
if want e2e; then
  timed 160 10 bash "$here/scripts/gpu_e2e.sh" --build "$build" --out "$logs" --device cuda --budget "$(left 15)" \
    --work /tmp/livernet_e2e/cuda > "$logs/e2e_driver.log" 2>&1 &
  pids+=($!)
fi
if want sanitize && command -v compute-sanitizer >/dev/null; then
  (
    for tool in memcheck racecheck synccheck; do
      echo "== compute-sanitizer --tool $tool tools/bench --train --batch 2 --size 75 (paper model, bf16)"
      # racecheck checks every shared-memory access: one step took more than 60 s on an H200 (2026-11-29).
      limit=60
      [[ $tool == racecheck ]] && limit=170
      # cuDNN's heuristics instead of timing every algorithm: the search would take minutes under the tool.
      LIVERNET_CUDNN_SEARCH=heuristic timed $limit 10 compute-sanitizer --tool "$tool" --error-exitcode 9 --print-limit 20 "$build/tools/bench" --model paper \
        --device cuda --batch 2 --size 75 --train --iters 1 --warmup 1 --no-per-block --no-mfu 2>&1 | tail -25
      echo "exit: ${PIPESTATUS[0]}"
    done
  ) > "$logs/sanitizer.log" 2>&1 &
  pids+=($!)
fi
for p in "${pids[@]}"; do wait "$p"; done
if want tests; then
  pass=$(grep -ho '\[  PASSED  \] [0-9]* test' "$logs/tests.log" | awk '{s+=$4} END{print s+0}')
  fail=$(grep -E '^\[  FAILED  \] [A-Za-z]' "$logs/tests.log" | sed 's/ (.*//' | sort -u | wc -l)
  skip=$(grep -ho '\[  SKIPPED \] [0-9]* test' "$logs/tests.log" | awk '{s+=$4} END{print s+0}')
  log "GPU tests: $pass passed, $fail failed, $skip skipped"
  grep '^\[  FAILED  \] [A-Za-z]' "$logs/tests.log" | sort -u | head -20 | tee -a "$summary"
  grep -E 'host syncs, [0-9]+ launches per training step' "$logs/tests.log" | tee -a "$summary"
fi
if want e2e; then
  log "e2e: $(tail -3 "$logs/e2e_driver.log" | tr '\n' ' ')"
  [[ -f $logs/e2e_cuda.json ]] && "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print({k: j[k] for k in list(j)[:12]})' "$logs/e2e_cuda.json" >> "$summary" 2>&1
fi
if want sanitize && [[ -f $logs/sanitizer.log ]]; then
  log "compute-sanitizer: $(grep -E '^(== |exit|========= ERROR SUMMARY)' "$logs/sanitizer.log" | tr '\n' ' ')"
fi
pack

# ---- compile -------------------------------------------------------------------------------------------
if want compile && [[ -n $py ]]; then
  timed 400 10 "$py" "$here/bench/compare_pytorch_gpu.py" --only-torch-compile --batches ${batches%% *} --iters "$iters" \
    --warmup 3 > "$logs/compile.log" 2>&1 || log "torch.compile: exit $?"
  grep -E '^batch' "$logs/compile.log" | tee -a "$summary"
fi
[[ -f $logs/compare_pytorch_gpu.md ]] && cat "$logs/compare_pytorch_gpu.md" >> "$summary"
log "done in $(( $(date +%s) - t0 )) s"
pack
