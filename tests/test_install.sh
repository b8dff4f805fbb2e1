#!/usr/bin/env bash
# The C API as an integrator meets it: `cmake --install` into a fresh prefix, examples/ configured and built
# against that prefix alone (find_package(livernet), not the build tree), then its probabilities for the
# patches of a trained run equal tools/predict's on the same patches; liblivernet exports only the C API;
# a bad model path gives one line naming the file and exit code 1; the installed tools (bin/livernet TOOL)
# run from the prefix and give the build's output.
set -euo pipefail
build="$1" src="$2" py="${3:-python3}"
"$py" -c 'import h5py, numpy' 2>/dev/null || { echo "skipped: $py with h5py and numpy is needed to write the patches"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "test_install: $*"; exit 1; }

cmake --install "$build" --prefix "$dir/prefix" > "$dir/install.log" 2>&1 || { cat "$dir/install.log"; fail "cmake --install failed"; }
libs=("$dir"/prefix/lib*/liblivernet.so)
lib=${libs[0]}
[[ -e $lib ]] || lib=
[[ -n $lib && -f $dir/prefix/include/livernet.h && -f $(dirname "$lib")/cmake/livernet/livernetConfig.cmake ]] ||
  fail "the install lacks liblivernet.so, include/livernet.h or the CMake package: $(cd "$dir/prefix" && find . | head -20)"
# (no grep -q or head in a pipeline: with pipefail, the writer's SIGPIPE would fail the step)
symbols=$(nm -D --defined-only "$lib")
others=$(awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /^livernet_/ {print $3}' <<< "$symbols")
[[ -z $others ]] || fail "liblivernet exports more than the C API: $others"

cmake -S "$src/examples" -B "$dir/ex" -DCMAKE_PREFIX_PATH="$dir/prefix" -DCMAKE_BUILD_TYPE=Release > "$dir/ex.log" 2>&1 &&
  cmake --build "$dir/ex" >> "$dir/ex.log" 2>&1 || { cat "$dir/ex.log"; fail "the example did not build against the installed package"; }
grep -q -- "$dir/prefix" "$dir/ex/CMakeCache.txt" || fail "the example did not find the installed package"
if grep -q -- "$build" "$dir/ex/CMakeCache.txt"; then fail "the example's build refers to the build tree"; fi
ex="$dir/ex/classify_patches"
libs=$(ldd "$ex")
[[ $libs == *"liblivernet.so.1 => $dir/prefix/"* ]] || fail "the example does not load the installed liblivernet: $libs"

# A trained run (one epoch) and patches in HU.
"$build/tools/make_phantoms" -o "$dir/d.h5" --patients 8 --size 40 > /dev/null
printf 'data:\n  input_size: 75\nmodel:\n  head_hidden: [8]\ntrain:\n  batch_size: 8\n  epochs: 1\ncv:\n  folds: 2\nruntime:\n  device: cpu\n' > "$dir/t.yaml"
"$build/tools/train" -c "$dir/t.yaml" --data "$dir/d.h5" --runs-dir "$dir/runs" --name r > "$dir/train.log" 2>&1 ||
  { tail -5 "$dir/train.log"; fail "train failed"; }
model="$dir/runs/r/fold_1/best.h5"
"$py" - "$dir/d.h5" "$dir/p.npy" <<'PY'
import sys, h5py, numpy as np
np.save(sys.argv[2], np.asarray(h5py.File(sys.argv[1], "r")["images"], dtype=np.float32))
PY
"$build/tools/predict" -w "$model" -i "$dir/p.npy" --preprocess --device cpu -o "$dir/predict.csv" 2> "$dir/predict.log" ||
  { cat "$dir/predict.log"; fail "predict failed"; }
"$ex" "$model" "$dir/p.npy" cpu > "$dir/example.csv" 2> "$dir/example.log" || { cat "$dir/example.log"; fail "the example failed"; }
"$py" - "$dir/predict.csv" "$dir/example.csv" <<'PY'
import csv, sys
a, b = (list(csv.reader(open(p))) for p in sys.argv[1:3])
assert a[0] == b[0], f"headers differ: {a[0]} vs {b[0]}"
assert len(a) == len(b) and len(a) > 2, f"{len(a)} vs {len(b)} rows"
worst = max(abs(float(x) - float(y)) for ra, rb in zip(a[1:], b[1:]) for x, y in zip(ra[1:], rb[1:]))
print(f"test_install: {len(a) - 1} patches, the installed C API vs tools/predict: max |dp| {worst:.2g}")
assert worst <= 1e-5, f"probabilities differ by {worst}"
PY

# Errors: one line naming the file, exit code 1, nothing on stdout.
set +e
"$ex" "$dir/missing.h5" "$dir/p.npy" cpu > "$dir/err.out" 2> "$dir/err.log"
rc=$?
set -e
[[ $rc -eq 1 && ! -s $dir/err.out && $(wc -l < "$dir/err.log") -eq 1 ]] && grep -q "missing.h5" "$dir/err.log" ||
  fail "a missing model: exit $rc, stderr: $(cat "$dir/err.log")"

# The tools, installed in libexec/livernet and run through bin/livernet, from the prefix alone.
cli="$dir/prefix/bin/livernet"
[[ -x $cli ]] || fail "the install lacks bin/livernet"
usage=$("$cli" --help)
[[ $usage == *predict* && $usage == *export* && $usage == *train* ]] || fail "livernet --help lists no tools: $usage"
"$cli" predict -w "$model" -i "$dir/p.npy" --preprocess --device cpu -o "$dir/installed.csv" 2> /dev/null ||
  fail "the installed predict failed"
cmp -s "$dir/predict.csv" "$dir/installed.csv" || fail "the installed predict's CSV differs from the build's"
set +e
"$cli" nosuch > "$dir/err.out" 2> "$dir/err.log"
rc=$?
set -e
[[ $rc -eq 2 && $(wc -l < "$dir/err.log") -eq 1 ]] && grep -q "no tool 'nosuch'" "$dir/err.log" ||
  fail "livernet nosuch: exit $rc, stderr: $(cat "$dir/err.log")"
echo "test_install: installed, built against the package, same probabilities as tools/predict, one-line errors; the installed tools run"
