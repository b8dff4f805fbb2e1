#!/usr/bin/env bash
# tools/pth_to_h5.py + convert_weights --from torchvision on a torchvision InceptionV3 saved exactly as
# torchvision ships it (.pth with AuxLogits and num_batches_tracked). Needs Debian's PyTorch (test-only).
set -euo pipefail
python="$1" tools="$2" src="$3"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$python" -c "import torch, torchvision, h5py" 2>/dev/null || { echo "PyTorch oracle unavailable: skipping"; exit 77; }
"$python" - "$dir/inception.pth" <<'PY'
import sys, torch, torchvision
m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
torch.save(m.state_dict(), sys.argv[1])
PY
"$python" "$src/tools/pth_to_h5.py" "$dir/inception.pth" "$dir/state.h5"
"$tools/convert_weights" --from torchvision "$dir/state.h5" -o "$dir/converted.h5" 2> "$dir/err"
grep -q "ignored 14 AuxLogits tensors" "$dir/err" || { cat "$dir/err"; echo "expected the AuxLogits warning"; exit 1; }
"$tools/info" > /dev/null
echo "pth -> h5 -> livernet OK"
