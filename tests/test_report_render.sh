#!/usr/bin/env bash
# The shortened demo (few patients and epochs) end to end, then report.html rendered in headless
# Chromium: every chart must have drawn and every image loaded.
set -euo pipefail
tools="$1" src="$2"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$tools/make_phantoms" -o "$dir/phantoms.h5" --patients 14 --max-lesions 4 --size 40 --seed 3 > /dev/null
"$tools/train" -c "$src/configs/demo_cpu.yaml" --data "$dir/phantoms.h5" --output "$dir/run" --epochs 2 --folds 2 \
  --device cpu 2> "$dir/train.log" || { cat "$dir/train.log"; exit 1; }
test -s "$dir/run/report.html" || { echo "no report.html"; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[[ -z $browser ]] && { echo "no Chromium installed: the report was written but not rendered (skipping)"; exit 77; }
dom=$("$browser" --headless --no-sandbox --disable-gpu --virtual-time-budget=10000 --dump-dom "file://$dir/run/report.html" 2>/dev/null)
check=$(grep -o '<div id="render-check"[^>]*>' <<< "$dom" || true)
echo "$check"
charts=$(sed -n 's/.*data-charts="\([0-9]*\)".*/\1/p' <<< "$check")
charts_ok=$(sed -n 's/.*data-charts-ok="\([0-9]*\)".*/\1/p' <<< "$check")
images=$(sed -n 's/.*data-images="\([0-9]*\)".*/\1/p' <<< "$check")
images_ok=$(sed -n 's/.*data-images-ok="\([0-9]*\)".*/\1/p' <<< "$check")
[[ -n $charts && $charts -ge 3 && $charts == "$charts_ok" && $images == "$images_ok" ]] ||
  { echo "report did not render: charts $charts_ok/$charts, images $images_ok/$images"; exit 1; }
echo "report rendered: $charts charts, $images images"
