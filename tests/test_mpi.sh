#!/usr/bin/env bash
# Parallel folds over MPI (docs/distributed.md), two processes of one thread each over loopback:
#  - mpirun -np 2 tools/train writes predictions.csv and metrics.json byte for byte as tools/train alone;
#  - a process SIGKILLed mid-fold ends the job (no hang), and --resume under mpirun finishes it to the same
#    bytes;
#  - more processes than folds, and a process whose data file differs from process 0's, are refused with one
#    line on every process and a non-zero exit.
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
"${mpi[@]}" "${train[@]}" -o "$dir/killed" > "$dir/killed.log" 2>&1 &
job=$!
for _ in $(seq 600); do
  [[ -f $dir/killed/fold_2/checkpoint.h5 ]] && break
  sleep 0.1
done
[[ -f $dir/killed/fold_2/checkpoint.h5 ]] || fail "fold 2 wrote no checkpoint: $(tail -5 "$dir/killed.log")"
victim=""
for pid in $(pids_of "-o $dir/killed"); do
  # (grep reads all its input: with -q the writer could die of SIGPIPE and pipefail hide the match)
  if tr '\0' '\n' < "/proc/$pid/environ" 2> /dev/null | grep -x 'OMPI_COMM_WORLD_RANK=1' > /dev/null; then victim=$pid; fi
done
[[ -n $victim ]] || fail "no process of rank 1 found"
kill -KILL "$victim"
set +e
timeout 120 tail --pid="$job" -f /dev/null
waited=$?
wait "$job"
rc=$?
set -e
[[ $waited -eq 0 ]] || fail "the job did not end within 120 s after a process was killed"
[[ $rc -ne 0 ]] || fail "the job ended with exit code 0 after a process was killed"
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
