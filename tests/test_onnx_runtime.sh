#!/usr/bin/env bash
# ONNX export as a deployer meets it. For a trained run of each InceptionV3 flavour (keras with identity
# shortcuts; torchvision with projection shortcuts), tools/export writes the model with the HU window in the
# graph and without it; onnx.checker (Debian's python3-onnx) accepts both files; onnxruntime (PyPI, test-only
# oracle, deps/onnxruntime) gives tools/predict's probabilities and logits on phantom patches and random HU
# (max |dp| and max |dlogit| / max |logit| <= 1e-4), at batch 1 and batch N alike (dynamic batch);
# convert_weights --from onnx gives back the model file bit for bit, usage included. Then the keras run's
# fold ensemble: exported from the run directory, it gives what tools/predict gives with the ensemble file
# tools/export --format ensemble writes, and reads back to that file bit for bit.
set -euo pipefail
build="$1" py="$2" ort="$3"
"$py" -c 'import onnx, h5py, numpy' 2>/dev/null ||
  { echo "skipped: $py with onnx (python3-onnx), h5py and numpy is needed (scripts/setup.sh --test-deps)"; exit 77; }
"$ort" -c 'import onnxruntime' 2>/dev/null ||
  { echo "skipped: no onnxruntime at $ort (scripts/setup.sh --test-deps installs it from PyPI; it could not, or was not run)"; exit 77; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "test_onnx_runtime: $*"; exit 1; }
# Two model (or ensemble) files: the same datasets bit for bit and the same root attributes ($3, comma-separated).
cat > "$dir/compare.py" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
keys = sys.argv[3].split(",")
names = []
a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
bnames = []
b.visit(lambda n: bnames.append(n) if isinstance(b[n], h5py.Dataset) else None)
assert sorted(names) == sorted(bnames), set(names) ^ set(bnames)
for n in names:
    assert a[n].dtype == b[n].dtype and np.array_equal(a[n][()], b[n][()]), n
for k in keys:
    assert a.attrs[k] == b.attrs[k], k
print(f"test_onnx_runtime: read back {len(names)} tensors and the attributes {', '.join(keys)} bit for bit")
PY

# Patches at the model's input size (75), so predict resizes nothing, and random HU beside them.
"$build/tools/make_phantoms" -o "$dir/d.h5" --patients 8 --size 75 > /dev/null
"$py" - "$dir/d.h5" "$dir/p.npy" <<'PY'
import sys, h5py, numpy as np
x = np.asarray(h5py.File(sys.argv[1], "r")["images"], dtype=np.float32)
r = np.random.default_rng(0).uniform(-1000, 1500, (6,) + x.shape[1:]).astype(np.float32)
np.save(sys.argv[2], np.concatenate([x, r]))
PY

for variant in "keras identity" "torchvision projection"; do
  read -r flavour residual <<< "$variant"
  run="$dir/$flavour"
  printf 'data:\n  input_size: 75\nmodel:\n  flavour: %s\n  residual: %s\n  head_hidden: [8]\ntrain:\n  batch_size: 8\n  epochs: 1\ncv:\n  folds: 2\nruntime:\n  device: cpu\n' \
    "$flavour" "$residual" > "$run.yaml"
  "$build/tools/train" -c "$run.yaml" --data "$dir/d.h5" --runs-dir "$dir/runs" --name "$flavour" > "$run.train.log" 2>&1 ||
    { tail -5 "$run.train.log"; fail "train ($flavour) failed"; }
  model="$dir/runs/$flavour/fold_1/best.h5"
  "$build/tools/export" "$model" -o "$run.onnx" > "$run.export.log" 2>&1 || { cat "$run.export.log"; fail "export failed"; }
  "$build/tools/export" "$model" --input image -o "$run.image.onnx" > /dev/null 2>&1 || fail "export --input image failed"
  for what in "" "--logits"; do
    "$build/tools/predict" -w "$model" -i "$dir/p.npy" --preprocess --device cpu $what -o "$run.predict$what.csv" 2> "$run.predict.log" ||
      { cat "$run.predict.log"; fail "predict failed"; }
  done
  "$py" - "$run.onnx" "$run.image.onnx" <<'PY' || fail "onnx.checker refused the export ($flavour)"
import sys, onnx
for p in sys.argv[1:]:
    onnx.checker.check_model(onnx.load(p), full_check=True)
PY
  "$ort" - "$run" "$dir/p.npy" "$flavour" <<'PY' || fail "onnxruntime's outputs differ from tools/predict's ($flavour)"
import csv, json, sys
import numpy as np, onnxruntime as ort
run, npy, name = sys.argv[1:4]
hu = np.load(npy)[:, None]  # [N, 1, 75, 75] in HU
read = lambda p: np.array([[float(v) for v in row[1:]] for row in list(csv.reader(open(p)))[1:]])
want_p, want_l = read(run + ".predict.csv"), read(run + ".predict--logits.csv")
sess = ort.InferenceSession(run + ".onnx", providers=["CPUExecutionProvider"])
meta = sess.get_modelmeta().custom_metadata_map
assert json.loads(meta["livernet.model"])["flavour"] == name, meta["livernet.model"]
assert [i.name for i in sess.get_inputs()] == ["hu"] and sess.get_inputs()[0].shape[0] == "batch"
logits, probs = sess.run(["logits", "probabilities"], {"hu": hu})
one = np.concatenate([sess.run(["probabilities"], {"hu": hu[i:i + 1]})[0] for i in range(len(hu))])
# The image-input graph on the windowed values (data::apply_window's f32 arithmetic).
level, width = float(meta["window_level"]), float(meta["window_width"])
lo, inv = np.float32(level - width / 2), np.float32(2 / width)
image = np.clip((hu - lo) * inv - np.float32(1), -1, 1).astype(np.float32)
img = ort.InferenceSession(run + ".image.onnx", providers=["CPUExecutionProvider"])
img_logits = img.run(["logits"], {"image": image})[0]
dp = np.abs(probs - want_p).max()
dl = np.abs(logits - want_l).max() / np.abs(want_l).max()
db = np.abs(one - probs).max()
di = np.abs(img_logits - logits).max() / np.abs(logits).max()
print(f"test_onnx_runtime: {name}: {len(hu)} patches (phantoms and random HU), temperature {meta['temperature']}: "
      f"onnxruntime vs tools/predict max |dp| {dp:.2g}, max |dlogit| / max |logit| {dl:.2g}; batch 1 vs {len(hu)} {db:.2g}; "
      f"image input vs HU input {di:.2g}")
assert dp <= 1e-4 and dl <= 1e-4 and db <= 1e-5 and di <= 1e-5, "beyond tolerance"
PY
  # Read back: the same tensors and attributes as the model file, bit for bit.
  "$build/tools/convert_weights" --from onnx "$run.onnx" -o "$run.back.h5" > /dev/null 2> "$run.convert.log" ||
    { cat "$run.convert.log"; fail "convert_weights --from onnx failed"; }
  "$py" - "$model" "$run.back.h5" format,model,usage < "$dir/compare.py" || fail "the read-back model file differs ($flavour)"
done

# The keras run's fold ensemble, from the run directory.
run="$dir/keras"
"$build/tools/export" "$dir/runs/keras" -o "$run.ens.onnx" > /dev/null 2> "$run.ens.log" || { cat "$run.ens.log"; fail "export of the run directory failed"; }
"$build/tools/export" "$dir/runs/keras" --format ensemble -o "$run.ens.h5" > /dev/null 2> "$run.ens.log" ||
  { cat "$run.ens.log"; fail "export --format ensemble failed"; }
"$build/tools/predict" -w "$run.ens.h5" -i "$dir/p.npy" --preprocess --device cpu -o "$run.ens.csv" 2> "$run.predict.log" ||
  { cat "$run.predict.log"; fail "predict with the ensemble file failed"; }
"$ort" - "$run.ens.onnx" "$run.ens.csv" "$dir/p.npy" <<'PY' || fail "onnxruntime's ensemble outputs differ from tools/predict's"
import csv, sys
import numpy as np, onnxruntime as ort
model, want, npy = sys.argv[1:4]
want = np.array([[float(v) for v in row[1:]] for row in list(csv.reader(open(want)))[1:]])
sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
members = sess.get_modelmeta().custom_metadata_map["livernet.members"]
probs = sess.run(["probabilities"], {"hu": np.load(npy)[:, None]})[0]
dp = np.abs(probs - want).max()
print(f"test_onnx_runtime: the keras run's {members}-fold ensemble: onnxruntime vs tools/predict -w ensemble.h5 max |dp| {dp:.2g}")
assert members == "2" and dp <= 1e-4
PY
"$build/tools/convert_weights" --from onnx "$run.ens.onnx" -o "$run.ens.back.h5" > /dev/null 2> "$run.convert.log" ||
  { cat "$run.convert.log"; fail "convert_weights --from onnx of the ensemble failed"; }
"$py" - "$run.ens.h5" "$run.ens.back.h5" format,model,members,usage < "$dir/compare.py" || fail "the read-back ensemble differs"
