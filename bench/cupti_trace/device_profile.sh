#!/usr/bin/env bash
# On a GPU machine, in one go: build the CUPTI kernel tracer, trace livernet's timed steps (tools/bench
# --kernel-trace under LD_PRELOAD), profile the same model under PyTorch (bench/torch_profile.py), and put the two
# side by side per category (bench/trace_compare.py).
#
#   bench/cupti_trace/device_profile.sh --build BUILD_DIR --out OUT_DIR [--batch 64] [--size 299] [--iters 3]
#       [--warmup 3] [--modes "train infer"] [--graph] [--compile] [--top 40] [--timeout 240]
#
# BUILD_DIR holds tools/bench (a CUDA build). Six files go to OUT_DIR: ours.txt / ours.jsonl (the tracer's reports,
# one per mode), torch.txt / torch.jsonl (PyTorch's), compare.md (trace_compare.py --names 15) and
# device_profile.log (every command and its output). --graph also traces livernet's CUDA-graph replay; --compile
# also profiles torch.compile (slow to compile). Every command runs under `timeout --timeout` seconds; a step that
# fails is logged and the others still run. The tracer is built in /tmp/livernet_cupti_trace.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build="" out="" batch=64 size=299 iters=3 warmup=3 modes="train infer" graph=0 compile=0 top=40 timeout=240
. "$here/../../scripts/lib/options.sh"
parse_options "build out batch size iters warmup modes top timeout" "graph compile" "$@"
[[ -n "$build" && -n "$out" ]] || { echo "device_profile.sh: --build and --out are required" >&2; exit 2; }
bench="$build/tools/bench"
[[ -x "$bench" ]] || { echo "device_profile.sh: no $bench" >&2; exit 2; }
mkdir -p "$out"
log="$out/device_profile.log"
: > "$log"
py=${PYTHON:-python3}
tracer=/tmp/livernet_cupti_trace
status=0

step() {  # step NAME CMD...: run with a deadline, output appended to the log
  local name=$1; shift
  echo "=== $name: $*" >> "$log"
  local t0=$SECONDS
  timeout --kill-after=10 "$timeout" "$@" >> "$log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc after $((SECONDS - t0)) s" >> "$log"
  echo "$name: exit $rc ($((SECONDS - t0)) s)"
  [[ $rc -eq 0 ]] || status=1
  return $rc
}

nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> "$log" 2>&1 || true
step build_tracer bash "$here/build.sh" "$tracer"
rm -f "$out/ours.txt" "$out/ours.jsonl"
if [[ -f "$tracer/libkernel_trace.so" ]]; then
  for mode in $modes; do
    flags=(--model paper --device cuda --dtype bf16 --batch "$batch" --size "$size" --iters "$iters"
           --warmup "$warmup" --no-per-block --kernel-trace)
    [[ $mode == train ]] && flags+=(--train)
    variants=(eager)
    ((graph)) && variants+=(graph)
    for v in "${variants[@]}"; do
      extra=()
      [[ $v == graph ]] && extra=(--graph)
      step "livernet_${mode}_$v" env LD_PRELOAD="$tracer/libkernel_trace.so" LIVERNET_TRACE_STEPS="$iters" \
        LIVERNET_TRACE_OUT="$out/ours.txt" LIVERNET_TRACE_JSON="$out/ours.jsonl" LIVERNET_TRACE_TOP="$top" \
        LIVERNET_TRACE_CATEGORIES="$here/categories.txt" "$bench" "${flags[@]}" "${extra[@]}"
    done
  done
else
  echo "no tracer built: livernet steps skipped (see $log)"
  status=1
fi

# shellcheck disable=SC2206  # --modes "train infer" splits into words on purpose
tp=(--batch "$batch" --size "$size" --steps "$iters" --warmup "$warmup" --modes $modes --top "$top"
    --json "$out/torch.jsonl" --out "$out/torch.txt")
((compile)) && tp+=(--compile)
step torch_profile "$py" "$root/bench/torch_profile.py" "${tp[@]}"

if [[ -s "$out/ours.jsonl" && -s "$out/torch.jsonl" ]]; then
  step compare "$py" "$root/bench/trace_compare.py" "$out/ours.jsonl" "$out/torch.jsonl" --names 15 --out "$out/compare.md"
else
  echo "compare skipped: ours.jsonl or torch.jsonl is missing or empty"
  status=1
fi
ls -la "$out" >> "$log" 2>&1
exit $status
