#!/usr/bin/env bash
# Writes categories_builtin.inc (the tracer's built-in copy of categories.txt, a C++ raw string literal) to $1
# (default: beside this script). build.sh and run_selftest.sh call it; selftest checks the copy is identical.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/categories_builtin.inc}
if grep -q ')LNCAT"' "$here/categories.txt"; then
  echo "gen_builtin.sh: categories.txt contains the raw-string delimiter )LNCAT\"" >&2
  exit 1
fi
{
  printf '// Generated from categories.txt by gen_builtin.sh (selftest checks it is identical); do not edit by hand.\n'
  printf 'R"LNCAT('
  cat "$here/categories.txt"
  printf ')LNCAT"\n'
} > "$out.tmp"
mv "$out.tmp" "$out"
