#!/usr/bin/env bash
# The README's first command. Until tools/train lands, the demo builds livernet and runs its smoke
# check: build information, a self-check on every device, and the smoke-labelled tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh" --build-dir "$here/build" "$@"
echo
"$here/build/tools/info"
echo
ctest --test-dir "$here/build" -L smoke --output-on-failure
