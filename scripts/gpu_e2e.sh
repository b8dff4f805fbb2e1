#!/usr/bin/env bash
# End to end on one device (issue 16): synthetic phantoms -> tools/train with configs/paper.yaml (299x299
# residual InceptionV3 + head, from scratch, 2 folds), SIGKILLed once mid-training and resumed ->
# tools/evaluate and tools/predict (for cuda also on the CPU: the same weights on both devices) -> checks
# of the run directory and report.html. Every step has its own deadline inside --budget; nothing is left
# running. Two files go to OUT: e2e_NAME.json (results) and e2e_NAME.log (every tool's output, with step
# headers); the run (~700 MB of checkpoints), the phantoms and the predictions go to --work DIR (default
# OUT/e2e_work/NAME, but /tmp/livernet_e2e/NAME when OUT is inside the device machine's $OUT, where only 8
# files 2 folders down come back).
#
#   scripts/gpu_e2e.sh --build DIR --out DIR --device cuda|cpu [--budget SECONDS] [--epochs N] [--patients N]
#                      [--precision auto|f32|bf16] [--size PX] [--name NAME] [--work DIR]
#
# Defaults: 24 patients, 3 epochs, 299x299, NAME = the device; --budget 150 s for cuda, 1800 s for cpu.
# --size is for dry runs on a small CPU. Compare two results: bench/e2e_compare.py GPU.json CPU.json.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="" out="" device="" budget="" epochs=3 patients=24 precision=auto size=299 name="" work=""
. "$here/scripts/lib/options.sh"
parse_options "build out device budget epochs patients precision size name work" "" "$@"
[[ -n $build && -n $out && $device =~ ^(cpu|cuda(:[0-9]+)?)$ ]] ||
  { echo "gpu_e2e.sh: needs --build DIR --out DIR --device cuda|cpu (see --help)" >&2; exit 2; }
[[ $precision =~ ^(auto|f32|bf16|f16)$ ]] || { echo "gpu_e2e.sh: --precision must be auto, f32, bf16 or f16" >&2; exit 2; }
name=${name:-${device/:/}}
budget=${budget:-$([[ $device == cpu ]] && echo 1800 || echo 150)}
build=$(cd "$build" 2>/dev/null && pwd) || { echo "gpu_e2e.sh: --build: no such directory" >&2; exit 2; }
mkdir -p "$out" && out=$(cd "$out" && pwd)
if [[ -z $work ]]; then
  work="$out/e2e_work/$name"
  [[ -n ${OUT:-} && -d $OUT && $out/ == "$(cd "$OUT" && pwd)"/* ]] && work="/tmp/livernet_e2e/$name"
fi
[[ ! -d $work || -f $work/facts.tsv || -z $(ls -A "$work") ]] ||
  { echo "gpu_e2e.sh: --work $work: not empty and not an earlier e2e work folder" >&2; exit 2; }
rm -rf "$work" && mkdir -p "$work" && work=$(cd "$work" && pwd)
run="$work/run" log="$out/e2e_$name.log"
facts="$work/facts.tsv" data="$work/phantoms.h5"
: > "$log"; : > "$facts"
t0=$(date +%s)
deadline=$((t0 + budget))
export PYTHONUNBUFFERED=1
py=$(command -v python3 || true)
fact() { printf '%s\t%s\n' "$1" "$2" >> "$facts"; }
say() { echo "[gpu_e2e +$(($(date +%s) - t0))s] $*" | tee -a "$log" >&2; }
summary() { "$py" "$here/scripts/gpu_e2e_summary.py" --facts "$facts" --run "$run" --work "$work" \
              --device "$device" --json "$out/e2e_$name.json" 2>&1 | tee -a "$log" >&2; }
die() { fact error "$*"; [[ -n $py ]] && summary; say "FAILED: $* (details: $log)"; exit 1; }
lastline() { grep -v -e '^[[:space:]]*$' -e '^\[gpu_e2e' -e '^====' "${1:-$log}" | tail -1; }
left() { local s=$((deadline - $(date +%s) - ${1:-0})); echo $((s > 0 ? s : 0)); }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# step NAME WANT RESERVE CMD...: runs CMD with a limit of WANT seconds or what is left less RESERVE (the
# time kept for the steps after it); output to the log under a header; records rc and seconds.
step() {
  local nm=$1 want=$2 reserve=$3; shift 3
  local lim; lim=$(left "$reserve"); ((lim > want)) && lim=$want
  echo "==== $nm (limit ${lim}s): ${*/#$build\//}" >> "$log"
  if ((lim < 3)); then fact "$nm.rc" skipped; say "$nm skipped: no time left"; return 124; fi
  local s rc; s=$(now)
  exec 3>&2 2>/dev/null  # no "Killed" job notice from bash when timeout -k ends the process group
  timeout -k 5 "$lim" "$@" >> "$log" 2>&1; rc=$?
  exec 2>&3 3>&-
  fact "$nm.rc" "$rc"; fact "$nm.seconds" "$(since "$s")"
  say "$nm: exit $rc after $(since "$s") s"
  return "$rc"
}
[[ -n $py ]] || die "no python3 (needed for the summary)"
for t in make_phantoms train evaluate predict; do [[ -x $build/tools/$t ]] || die "$build/tools/$t: missing (build it)"; done

# ---- libraries: on a lent GPU machine the Debian packages come from gpu_check.sh's prefix, cuDNN/cuBLAS
# from PyTorch's wheels (see scripts/gpu_check.sh)
prefix=/tmp/livernet-deps
if [[ $device != cpu ]]; then
  nv=$("$py" -c 'import nvidia; print(list(nvidia.__path__)[0])' 2>/dev/null)
  [[ -n $nv ]] && for d in $(find -L "$nv" -name 'lib*.so*' -printf '%h\n' 2>/dev/null | sort -u); do
    LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"; done
fi
if ldd "$build/tools/train" 2>/dev/null | grep -q 'not found' && [[ ! -d $prefix/fallback ]] && ls "$here"/deps/gpu/debs/*.deb >/dev/null 2>&1; then
  mkdir -p "$prefix/fallback"
  for f in "$here"/deps/gpu/debs/*.deb; do dpkg -x "$f" "$prefix"; done
  have=$(ldconfig -p | awk '{print $1}')
  for so in "$prefix"/usr/lib/x86_64-linux-gnu/lib*.so.* "$prefix"/usr/lib/x86_64-linux-gnu/hdf5/serial/lib*.so.* \
            "$prefix"/lib/x86_64-linux-gnu/lib*.so.*; do
    [[ -e $so ]] && ! grep -qxF "$(basename "$so")" <<< "$have" && ln -sf "$so" "$prefix/fallback/"
  done
fi
[[ -d $prefix/fallback ]] && LD_LIBRARY_PATH="$prefix/fallback${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
missing=$(ldd "$build/tools/train" "$build/tools/evaluate" 2>&1 | grep 'not found' | sort -u | tr -s ' \t\n' ' ')
[[ -z $missing ]] || die "the tools cannot load:$missing"
if [[ $device != cpu ]]; then
  command -v nvidia-smi >/dev/null || die "--device $device but no GPU here (no nvidia-smi)"
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  [[ -n $gpu ]] || die "--device $device but no GPU here (nvidia-smi -L: $(nvidia-smi -L 2>&1 | head -1))"
  fact gpu "$gpu"
fi
fact name "$name"; fact budget "$budget"; fact epochs "$epochs"; fact patients "$patients"; fact size "$size"
fact precision "$precision"; fact host "$(hostname)"; fact cores "$(nproc)"
fact commit "$(git -C "$here" describe --always --dirty 2>/dev/null || echo unknown)"
fact date "$(date -u +%FT%TZ)"; fact work "$work"
say "device $device${gpu:+ ($gpu)}, budget ${budget}s, $patients patients, $epochs epochs, ${size}x$size, precision $precision"

# ---- a. phantoms
step phantoms 30 $((budget * 7 / 10)) "$build/tools/make_phantoms" -o "$data" --patients "$patients" || die "make_phantoms: $(lastline)"

# ---- b. train, SIGKILL once mid-training, resume
train_args=(-c "$here/configs/paper.yaml" --data "$data" --output "$run" --folds 2 --epochs "$epochs" --size "$size"
            --device "$device" --seed 42)
[[ $precision != auto ]] && train_args+=(--precision "$precision")
tpid=""
cleanup() { [[ -n $tpid ]] && kill -0 "$tpid" 2>/dev/null && { kill -9 -- "-$tpid" 2>/dev/null || kill -9 "$tpid"; }; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
echo "==== train (SIGKILLed once, then resumed): tools/train ${train_args[*]}" >> "$log"
lim=$(left $((budget * 55 / 100)))
s=$(now) killed=0 point=""
set -m  # the trainer in a process group of its own (not a session: the device machine ends it with us)
"$build/tools/train" "${train_args[@]}" >> "$log" 2>&1 &
tpid=$!
set +m
while kill -0 "$tpid" 2>/dev/null; do  # kill at the first checkpoint: end of fold 1's epoch 1 (or of fold 1)
  [[ -e $run/fold_1/checkpoint.h5 ]] && point="fold 1 epoch 2, just after epoch 1's checkpoint" && break
  [[ -e $run/fold_1/result.json ]] && point="fold 2 epoch 1, fold 1 finished" && break
  (($(date +%s) - ${s%.*} >= lim)) && point="before any checkpoint (step limit ${lim}s)" && break
  sleep 0.05
done
exec 3>&2 2>/dev/null  # no "Killed" job notice from bash
if kill -0 "$tpid" 2>/dev/null; then
  kill -9 -- "-$tpid" 2>/dev/null || kill -9 "$tpid"
  killed=1
  fact kill.after_s "$(since "$s")"
  fact kill.last_line "$(grep -v '^[[:space:]]*$' "$run/log.txt" 2>/dev/null | tail -1)"
  fact kill.files "$(cd "$run" 2>/dev/null && find . -type f | sort | tr '\n' ' ')"
  [[ -f $run/fold_1/history.csv ]] && cp "$run/fold_1/history.csv" "$work/history_at_kill.csv"
fi
wait "$tpid"; rc=$?
exec 2>&3 3>&-
tpid=""
fact kill.killed "$killed"; fact kill.point "${point:-not killed: train ended first (exit $rc)}"
fact train_until_kill.rc "$rc"; fact train_until_kill.seconds "$(since "$s")"
say "train: exit $rc after $(since "$s") s (${point:-ended by itself})"
((killed || rc == 0)) || die "train: exit $rc: $(lastline)"
# the resume keeps a quarter of the budget for evaluate and predict (on cuda the CPU ones are the slow part)
step resume "$budget" $((budget / 4)) "$build/tools/train" --resume "$run" --device "$device"
resume_rc=$?
sed -n '/^==== resume/,$p' "$log" > "$work/resume.log"
((resume_rc == 0)) || die "train --resume: exit $resume_rc: $(lastline "$work/resume.log")"

# ---- c. evaluate (the same weights on the GPU and on the CPU, most valuable first; --fold 1: fold_1/best.h5 alone,
# the model that made the run's fold-1 test predictions), d. predict (fold_1/best.h5) on the dataset file
# --uncalibrated: compared with the run's own (uncalibrated, out-of-fold) predictions
ev() { step "$1" "$2" "$3" "$build/tools/evaluate" --run "$run" --data "$data" --device "$4" -o "$run/$5" --uncalibrated "${@:6}"; }
pr() { step "$1" "$2" "$3" "$build/tools/predict" --weights "$run/fold_1/best.h5" --input "$data" --device "$4" -o "$work/$5" \
  --uncalibrated; }
if [[ $device == cpu ]]; then
  ev evaluate_cpu 900 $((budget / 10)) cpu eval_cpu
  ev evaluate_fold1_cpu 600 $((budget / 20)) cpu eval_fold1_cpu --fold 1
  pr predict_cpu 600 8 cpu predict_cpu.csv
else
  ev evaluate_cuda 60 $((budget / 4)) "$device" eval_cuda
  ev evaluate_cpu 120 $((budget / 6)) cpu eval_cpu
  ev evaluate_fold1_cuda 30 $((budget / 10)) "$device" eval_fold1_cuda --fold 1
  pr predict_cuda 30 $((budget / 20)) "$device" predict_cuda.csv
  pr predict_cpu 60 8 cpu predict_cpu.csv
fi

# ---- e, f. checks and the JSON
fact total.seconds $(($(date +%s) - t0))
summary
