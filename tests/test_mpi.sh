#!/usr/bin/env bash
# Parallel folds over MPI (docs/distributed.md), two processes of one thread each over loopback:
#  - mpirun -np 2 tools/train writes predictions.csv and metrics.json byte for byte as tools/train alone;
#  - a process SIGKILLed mid-fold ends the job (no hang), and --resume under mpirun finishes it to the same
#    bytes;
#  - more processes than folds, and a process whose data file differs from process 0's, are refused with one
#    line on every process and a non-zero exit;
#  - --parallel data trains every fold on both processes and writes the run from process 0; a process killed
#    mid-run ends the job and --resume gives the uninterrupted data-parallel run's bytes; a batch that does not
#    split over the processes is refused;
#  - --repeats 2 shares out every (repeat, fold) pair and gives each repeat the bytes of one process with its seed.
set -euo pipefail
build="$1"
command -v mpirun > /dev/null || { echo "skipped: no mpirun (Debian: apt-get install openmpi-bin libopenmpi-dev)"; exit 77; }
info=$("$build/tools/info" 2> /dev/null || true)
[[ $info == *"MPI: not built"* ]] && { echo "skipped: livernet was built without MPI ($(grep 'MPI:' <<< "$info"))"; exit 77; }
dir=$(mktemp -d)
# The processes whose command line holds $1 (from /proc: a bare Debian root has no procps).
pids_of() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(tr '\0' ' ' < "$p/cmdline" 2> /dev/null) == *"$1"* ]] && echo "${p#/proc/}"
  done
  return 0
}
trap 'kill -KILL $(pids_of "-o $dir/") 2> /dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "test_mpi: $*"; exit 1; }
# killed_run RUN CHECKPOINT ARGS...: mpirun -np 2 tools/train ARGS -o RUN, rank 1 SIGKILLed once RUN/CHECKPOINT
# exists; fails unless the job then ends within 120 s with a non-zero exit code (in $killed_rc).
killed_run() {
  local run=$1 ckpt=$2 job victim="" pid waited rc
  shift 2
  "${mpi[@]}" "${train[@]}" "$@" -o "$run" > "$run.log" 2>&1 &
  job=$!
  for _ in $(seq 600); do
    [[ -f $run/$ckpt ]] && break
    sleep 0.1
  done
  [[ -f $run/$ckpt ]] || fail "$run/$ckpt was never written: $(tail -5 "$run.log")"
  for pid in $(pids_of "-o $run"); do
    # (grep reads all its input: with -q the writer could die of SIGPIPE and pipefail hide the match)
    if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -x 'OMPI_COMM_WORLD_RANK=1' > /dev/null; then victim=$pid; fi
  done
  [[ -n $victim ]] || fail "$run: no process of rank 1 found"
  kill -KILL "$victim"
  set +e
  timeout 120 tail --pid="$job" -f /dev/null
  waited=$?
  wait "$job"
  rc=$?
  set -e
  [[ $waited -eq 0 ]] || fail "$run: the job did not end within 120 s after a process was killed"
  [[ $rc -ne 0 ]] || fail "$run: the job ended with exit code 0 after a process was killed"
  killed_rc=$rc
}
export OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
opts=(--bind-to none -x OMP_NUM_THREADS)
[[ $(id -u) -eq 0 ]] && opts+=(--allow-run-as-root)
mpi=(mpirun -np 2 "${opts[@]}")

"$build/tools/make_phantoms" -o "$dir/d.h5" --patients 12 --size 32 > /dev/null
printf 'data:\n  input_size: 75\nmodel:\n  head_hidden: [8]\ntrain:\n  batch_size: 4\n  epochs: 3\n  early_stopping_patience: 0\ncv:\n  folds: 3\nruntime:\n  device: cpu\n' > "$dir/t.yaml"
train=("$build/tools/train" -c "$dir/t.yaml" --data "$dir/d.h5")

# One process, then two: the same bytes.
"${train[@]}" -o "$dir/one" > "$dir/one.log" 2>&1 || { tail -5 "$dir/one.log"; fail "tools/train alone failed"; }
SECONDS=0
"${mpi[@]}" "${train[@]}" -o "$dir/two" > "$dir/two.log" 2>&1 || { tail -20 "$dir/two.log"; fail "mpirun -np 2 tools/train failed"; }
took=$SECONDS
for f in predictions.csv metrics.json splits.json; do
  cmp -s "$dir/one/$f" "$dir/two/$f" || fail "$f differs between one process and two"
done
grep -q "fold 2/3: best epoch" "$dir/two/log.process1.txt" || fail "process 1 did not train fold 2: $(cat "$dir/two/log.process1.txt")"
grep -q "fold 2/3: trained by process 1" "$dir/two/log.txt" || fail "process 0 did not gather fold 2"
echo "test_mpi: mpirun -np 2: predictions.csv, metrics.json and splits.json identical to one process (${took} s)"

# Process 1 killed after its fold's first checkpoint: the job ends, --resume finishes it to the same bytes.
killed_run "$dir/killed" fold_2/checkpoint.h5
rc=$killed_rc
"${mpi[@]}" "$build/tools/train" --resume "$dir/killed" > "$dir/resumed.log" 2>&1 || { tail -20 "$dir/resumed.log"; fail "--resume under mpirun failed"; }
for f in predictions.csv metrics.json; do
  cmp -s "$dir/one/$f" "$dir/killed/$f" || fail "$f differs after a killed process and --resume"
done
grep -q "resuming at epoch" "$dir/killed/log.process1.txt" || fail "process 1 did not resume fold 2 from its checkpoint"
echo "test_mpi: a process killed mid-fold ended the job (exit $rc); --resume under mpirun gave the same bytes"

# Refusals, on every process, before anything is written.
set +e
mpirun -np 4 "${opts[@]}" "${train[@]}" -o "$dir/four" > "$dir/four.out" 2> "$dir/four.err"
rc=$?
set -e
n=$(grep -c "4 processes for 3 folds" "$dir/four.err" || true)
[[ $rc -ne 0 && $n -eq 4 && ! -e $dir/four ]] || fail "-np 4 for 3 folds: exit $rc, $n of 4 processes said why: $(cat "$dir/four.err")"
mkdir -p "$dir/a" "$dir/b"
"$build/tools/make_phantoms" -o "$dir/a/d.h5" --patients 12 --size 32 --seed 1 > /dev/null
"$build/tools/make_phantoms" -o "$dir/b/d.h5" --patients 12 --size 32 --seed 2 > /dev/null
set +e
mpirun -np 1 "${opts[@]}" --wdir "$dir/a" "$build/tools/train" -c "$dir/t.yaml" --data d.h5 -o "$dir/diff" : \
  -np 1 --wdir "$dir/b" "$build/tools/train" -c "$dir/t.yaml" --data d.h5 -o "$dir/diff" > "$dir/diff.out" 2> "$dir/diff.err"
rc=$?
set -e
n=$(grep -c "process 1 has another data file than process 0" "$dir/diff.err" || true)
[[ $rc -ne 0 && $n -eq 2 && ! -e $dir/diff ]] || fail "a process with another data file: exit $rc, $n of 2 processes said why: $(cat "$dir/diff.err")"
echo "test_mpi: more processes than folds, and another data file on one process, refused on every process"

# Data-parallel (--parallel data): both processes train every fold, each on its half of every batch; process 0
# alone writes the run (the arithmetic's equivalence to one process is test_data_parallel's).
"${mpi[@]}" "${train[@]}" -o "$dir/dp" --parallel data --epochs 2 > "$dir/dp.log" 2>&1 || { tail -20 "$dir/dp.log"; fail "mpirun -np 2 tools/train --parallel data failed"; }
for f in predictions.csv metrics.json splits.json fold_1/best.h5 fold_3/history.csv; do
  [[ -f $dir/dp/$f ]] || fail "--parallel data wrote no $f"
done
[[ $(wc -l < "$dir/dp/predictions.csv") -eq $(wc -l < "$dir/one/predictions.csv") ]] || fail "--parallel data: predictions.csv has another row count"
grep -q "data-parallel over 2 processes" "$dir/dp/log.txt" || fail "--parallel data: process 0 did not say how it trained"
grep -q "fold 3/3: data-parallel over 2 processes" "$dir/dp/log.process1.txt" || fail "--parallel data: process 1 did not train fold 3"
# Process 1 killed after the first epoch's checkpoint of a data-parallel fold: the job ends, and --resume (the run
# is data-parallel: its config.yaml says so) gives the uninterrupted data-parallel run's bytes.
killed_run "$dir/dpk" fold_1/checkpoint.h5 --parallel data --epochs 2
"${mpi[@]}" "$build/tools/train" --resume "$dir/dpk" > "$dir/dpk_resumed.log" 2>&1 || { tail -20 "$dir/dpk_resumed.log"; fail "--parallel data: --resume failed"; }
for f in predictions.csv metrics.json; do
  cmp -s "$dir/dp/$f" "$dir/dpk/$f" || fail "--parallel data: $f differs after a killed process and --resume"
done
grep -q "resuming at epoch" "$dir/dpk/log.process1.txt" || fail "--parallel data: process 1 did not resume from the checkpoint"
set +e
"${mpi[@]}" "${train[@]}" -o "$dir/odd" --parallel data --batch 3 > "$dir/odd.out" 2> "$dir/odd.err"
rc=$?
set -e
n=$(grep -c "train.batch_size 3 does not split evenly over 2 processes" "$dir/odd.err" || true)
[[ $rc -ne 0 && $n -eq 2 && ! -e $dir/odd ]] || fail "--parallel data --batch 3: exit $rc, $n of 2 processes said why: $(cat "$dir/odd.err")"
echo "test_mpi: --parallel data trained every fold on both processes; killed and resumed it gave the same bytes; a batch that does not split is refused"

# Repeats (--repeats 2): the job shares out every (repeat, fold) pair; repeat 1 is the one-process run above
# (seed 42) and repeat 2 a one-process run with seed 43, byte for byte.
"${train[@]}" --seed 43 -o "$dir/seed43" > "$dir/seed43.log" 2>&1 || { tail -5 "$dir/seed43.log"; fail "tools/train --seed 43 failed"; }
"${mpi[@]}" "${train[@]}" --repeats 2 -o "$dir/rep" > "$dir/rep.log" 2>&1 || { tail -20 "$dir/rep.log"; fail "mpirun -np 2 tools/train --repeats 2 failed"; }
for f in predictions.csv metrics.json; do
  cmp -s "$dir/one/$f" "$dir/rep/repeat_1/$f" || fail "--repeats 2: repeat 1's $f differs from one process's run with seed 42"
  cmp -s "$dir/seed43/$f" "$dir/rep/repeat_2/$f" || fail "--repeats 2: repeat 2's $f differs from one process's run with seed 43"
done
[[ -f $dir/rep/repeats.json ]] || fail "--repeats 2 wrote no repeats.json"
grep -q "repeat 2/2 (seed 43)" "$dir/rep/log.process1.txt" || fail "process 1 did not train folds of repeat 2"
echo "test_mpi: --repeats 2 over 2 processes: each repeat identical to one process's run with its seed"
