#!/usr/bin/env bash
# scripts/gpu_e2e.sh, the GPU machine's end-to-end check, run on the CPU at 75x75 (a few seconds): phantoms,
# training SIGKILLed and resumed, evaluate and predict, the run directory and report checks, and the same
# weights through the run's own predictions, tools/evaluate and tools/predict agreeing to 1e-4. Keeps the
# script working between the rare runs on a card.
set -euo pipefail
build="$1" src="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bash "$src/scripts/gpu_e2e.sh" --build "$build" --out "$dir/out" --device cpu --size 75 --epochs 2 --patients 12 \
  --budget 300 --work "$dir/work" > "$dir/log" 2>&1 || { cat "$dir/log"; exit 1; }
python3 - "$dir/out/e2e_cpu.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
bad = [k for k, v in j["checks"].items() if k != "error" and v is not True]
dp = {k: v for k, v in j["headline"]["same_weights_max_abs_dp"].items() if v is not None}
print("checks:", j["checks"], "same-weights max |dp|:", dp)
if bad or j["checks"].get("error") or any(v > 1e-4 for v in dp.values()) or len(dp) < 2:
    sys.exit(f"e2e smoke failed: checks {bad}, same-weights differences {dp}")
PY
