#!/usr/bin/env bash
# docs/reproduce.md, exercised: every ```sh block of it that is not marked "not run by the test" runs here,
# in order and verbatim, in a sandbox that stands for the user's machine -- HOME is a scratch folder, the
# working folder has configs/ and build/tools/ -- with synthetic CT volumes where the downloads would unpack
# them (3D-IRCADb's layout, TCIA's DICOM-SEG layout under a retriever download folder) and a Keras-layout
# ImageNet file where wget would put it (tests/model_reference.py's, the full InceptionV3). The one
# change: build/tools/train is a wrapper that appends --epochs 1 --folds 2 --size 75 --batch 8, so the
# paper's setting runs in seconds. Then the run's per-source metrics and predictions are checked.
#   tests/test_reproduce_doc.sh BUILD_DIR SOURCE_DIR KERAS_LAYOUT_H5
set -euo pipefail
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) keras=$3
[[ -f $keras ]] || { echo "SKIP: $keras is missing (the model_reference_data fixture needs python3-torch)"; exit 77; }
sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
home=$sandbox/home work=$sandbox/work
mkdir -p "$home/Downloads" "$work/build/tools"
ln -s "$src/configs" "$work/configs"
for t in extract_lesions merge_datasets evaluate predict convert_weights make_phantoms; do
  ln -s "$build/tools/$t" "$work/build/tools/$t"
done
printf '#!/usr/bin/env bash\nexec %q "$@" --epochs 1 --folds 2 --size 75 --batch 8\n' "$build/tools/train" > "$work/build/tools/train"
chmod +x "$work/build/tools/train"

# What the downloads leave behind.
cp "$keras" "$home/Downloads/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
"$build/tools/make_phantoms" --volumes "$home/data/ircadb" --layout ircadb --patients 8 --volume-size 96x96x24 --seed 3 >/dev/null
"$build/tools/make_phantoms" --volumes "$home/data/tcia/manifest-1669817128730/Colorectal-Liver-Metastases" --layout dicom-seg \
  --patients 8 --volume-size 96x96x24 --seed 4 >/dev/null

# The blocks: a ```sh block runs unless the line before it is a "not run by the test" comment.
python3 - "$src/docs/reproduce.md" > "$sandbox/blocks.sh" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
out, prev, i, n = [], "", 0, 0
while i < len(lines):
    if lines[i].strip() == "```sh":
        j = i + 1
        while lines[j].strip() != "```":
            j += 1
        if "not run by the test" not in prev:
            n += 1
            out.append(f"echo '== docs/reproduce.md block {n} (line {i + 1})'")
            out += lines[i + 1:j]
        i, prev = j, "```"
    elif lines[i].strip():
        prev = lines[i]
    i += 1
if n < 5:
    sys.exit(f"only {n} runnable blocks found in {sys.argv[1]}")
print("\n".join(out))
PY
echo "test_reproduce_doc: running $(grep -c '^echo .== docs' "$sandbox/blocks.sh") blocks of docs/reproduce.md in $work"
(cd "$work" && HOME=$home bash -euo pipefail "$sandbox/blocks.sh") > "$sandbox/log" 2>&1 || { cat "$sandbox/log"; exit 1; }
cat "$sandbox/log"

python3 - "$work/runs" <<'PY'
import csv, json, math, sys
runs = sys.argv[1]
m = json.load(open(f"{runs}/paper/metrics.json"))
per = m.get("per_source", {})
assert set(per) == {"ircadb", "tcia_crlm"}, f"per_source: {sorted(per)}"
assert sum(v["n"] for v in per.values()) == m["pooled"]["n"], "per-source counts do not add up to the pooled count"
rows = list(csv.DictReader(open(f"{runs}/paper/predictions.csv")))
assert {r["source"] for r in rows} == {"ircadb", "tcia_crlm"}, "predictions.csv sources"
assert all(r["patient_id"].split("/")[0] == r["source"] for r in rows), "--prefix-ids: ids start with the source"
report = open(f"{runs}/paper/report.html").read()
assert "source tcia_crlm" in report, "report.html has no per-source rows"
e = json.load(open(f"{runs}/paper_ircadb/evaluation_crlm/metrics.json"))
assert e["pooled"]["n"] == sum(1 for r in rows if r["source"] == "tcia_crlm"), "evaluate saw another number of lesions"
print("test_reproduce_doc: per-source metrics", {k: round(v["accuracy"], 3) for k, v in per.items()},
      "pooled", round(m["pooled"]["accuracy"], 3), "; external TCIA set:", e["pooled"]["n"], "lesions")
PY
