#!/usr/bin/env bash
# The README's first command: on a fresh Debian 12 machine, installs what is missing, builds, generates
# synthetic CT lesion phantoms (60 patients), trains the residual InceptionV3 with 5-fold patient-level
# cross-validation (configs/demo_cpu.yaml: from scratch, 75x75 input; on the GPU when one is present),
# and prints the metrics and the path of the HTML report.
#
#   scripts/demo.sh [--patients N] [--epochs N] [--output DIR] [setup.sh options]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
patients=60 epochs="" output="$here/runs/demo" setup_args=()
. "$here/scripts/lib/options.sh"
PASS_THROUGH=setup_args parse_options "patients epochs output" "" "$@"
"$here/scripts/setup.sh" --build-dir "$here/build" --targets "info make_phantoms train evaluate predict extract_lesions merge_datasets convert_weights" "${setup_args[@]}"
echo
"$here/build/tools/info" | sed -n '1,6p'
mkdir -p "$(dirname "$output")"
data="$(dirname "$output")/phantoms.h5"
"$here/build/tools/make_phantoms" --output "$data" --patients "$patients" --seed 1
extra=()
[[ -n $epochs ]] && extra+=(--epochs "$epochs")
start=$(date +%s)
"$here/build/tools/train" --config "$here/configs/demo_cpu.yaml" --data "$data" --output "$output" --force "${extra[@]}"
echo "demo finished in $(( $(date +%s) - start )) s; open $output/report.html in a browser"
