#!/usr/bin/env bash
# Builds the CUPTI kernel tracer, OUT_DIR/libkernel_trace.so (for LD_PRELOAD), and its CUPTI-free self-test.
#
# usage: bench/cupti_trace/build.sh [OUT_DIR]        (default OUT_DIR: build/cupti_trace under the repo root)
#
# CUPTI is looked for, header and library from the same install where possible, in this order:
#   $CUPTI_INC + $CUPTI_LIB (set both: an include folder, and a library folder or file)
#   $CUDA_HOME/extras/CUPTI/{include,lib64}                     (CUDA_HOME defaults to /usr/local/cuda)
#   $CUDA_HOME/include/cupti.h + $CUDA_HOME/{lib64,lib,targets/*/lib}
#   the nvidia-* Python wheels next to PyTorch (nvidia/cu13/..., nvidia/cuda_cupti/...; $PYTHON, default python3)
#   /usr/include + /usr/lib/x86_64-linux-gnu (Debian's packages)
# It prints where it found them and the LD_LIBRARY_PATH to use (the .so also carries an rpath to the library),
# writes OUT_DIR/env.sh with that export, and exits 1 with one line when no CUPTI is found or the build fails.
# The record structs read are the newest CUpti_ActivityKernelN / MemcpyN / MemsetN the header declares.
# bench/cupti_trace/mock/ (a local test stand-in) is never used.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/build/cupti_trace}
cuda=${CUDA_HOME:-/usr/local/cuda}
py=${PYTHON:-python3}
cxx=${CXX:-g++}

die() { echo "build.sh: $*" >&2; exit 1; }

is_mock() { [[ "$(cd "$1" 2>/dev/null && pwd)" == "$here/mock" ]] || grep -qs LIVERNET_MOCK_CUPTI "$1/cupti.h"; }

# An include folder is usable when it has cupti_activity.h and cupti_result.h and is not the mock.
good_inc() { [[ -f "$1/cupti_activity.h" && -f "$1/cupti_result.h" ]] && ! is_mock "$1"; }

# The library file in a folder: libcupti.so, else the highest libcupti.so.N*.
lib_in() {
  local d=$1
  [[ -d "$d" ]] || return 1
  if [[ -e "$d/libcupti.so" ]]; then echo "$d/libcupti.so"; return 0; fi
  local f
  f=$(ls -1 "$d"/libcupti.so.* 2>/dev/null | sort -V | tail -1)
  [[ -n "$f" ]] && { echo "$f"; return 0; }
  return 1
}

inc="" lib=""
try_pair() {  # try_pair INCDIR LIBDIR_OR_FILE...
  local i=$1; shift
  good_inc "$i" || return 1
  local l f
  for l in "$@"; do
    if [[ -f "$l" ]]; then f=$l; else f=$(lib_in "$l") || continue; fi
    inc=$i lib=$f
    return 0
  done
  return 1
}

found() { [[ -n "$inc" && -n "$lib" ]]; }

if [[ -n "${CUPTI_INC:-}" || -n "${CUPTI_LIB:-}" ]]; then
  [[ -n "${CUPTI_INC:-}" && -n "${CUPTI_LIB:-}" ]] || die "set both CUPTI_INC and CUPTI_LIB, or neither"
  is_mock "$CUPTI_INC" && die "CUPTI_INC=$CUPTI_INC is the local test mock, not CUPTI"
  try_pair "$CUPTI_INC" "$CUPTI_LIB" || die "no cupti_activity.h in CUPTI_INC=$CUPTI_INC or no libcupti.so* at CUPTI_LIB=$CUPTI_LIB"
fi
found || try_pair "$cuda/extras/CUPTI/include" "$cuda/extras/CUPTI/lib64" "$cuda/extras/CUPTI/lib"
found || try_pair "$cuda/include" "$cuda/lib64" "$cuda/lib" "$cuda"/targets/*/lib "$cuda/extras/CUPTI/lib64"
found || try_pair "$cuda"/targets/*/include "$cuda"/targets/*/lib "$cuda/lib64"

# PyTorch's nvidia-* wheels: cupti.h and libcupti.so.* under the same nvidia/<pkg>/ folder where possible.
if ! found; then
  nv_dirs=$("$py" -c 'import nvidia, os; print("\n".join(os.path.realpath(p) for p in nvidia.__path__))' 2>/dev/null || true)
  while IFS= read -r d; do
    [[ -n "$d" && -d "$d" ]] || continue
    while IFS= read -r h; do
      i=$(dirname "$h")
      pkg=$(dirname "$i")
      libs=$(find -L "$pkg" -maxdepth 3 -name 'libcupti.so*' -printf '%h\n' 2>/dev/null | sort -u)
      [[ -n "$libs" ]] || libs=$(find -L "$d" -name 'libcupti.so*' -printf '%h\n' 2>/dev/null | sort -u)
      # shellcheck disable=SC2086
      try_pair "$i" $libs && break 2
    done < <(find -L "$d" -name cupti.h 2>/dev/null | sort)
  done <<< "$nv_dirs"
fi

found || try_pair /usr/include /usr/lib/x86_64-linux-gnu /usr/lib64

# Last resort: a header from anywhere above with the library the dynamic loader knows.
if ! found; then
  sys_lib=$(ldconfig -p 2>/dev/null | awk '/libcupti\.so/ {print $NF; exit}')
  for i in "$cuda/extras/CUPTI/include" "$cuda/include" /usr/include; do
    [[ -n "$sys_lib" ]] && try_pair "$i" "$sys_lib" && break
  done
fi

found || die "no CUPTI found (need cupti_activity.h + libcupti.so*): looked in $cuda/extras/CUPTI, $cuda/include + lib64/lib, the nvidia Python wheels ($py), /usr/include; set CUPTI_INC and CUPTI_LIB"

libdir=$(dirname "$lib")

# The newest record structs the header declares ("} CUpti_ActivityKernel10;" and so on).
newest() {
  grep -hoE "\}[[:space:]]*$1[0-9]*[[:space:]]*;" "$inc"/cupti_activity*.h 2>/dev/null |
    grep -oE "$1[0-9]*" | sed "s/^$1//" | sort -n | tail -1
}
defs=()
for pair in KERNEL:CUpti_ActivityKernel MEMCPY:CUpti_ActivityMemcpy MEMSET:CUpti_ActivityMemset; do
  what=${pair%%:*} base=${pair#*:}
  n=$(newest "$base")
  if [[ -n "$n" ]]; then
    defs+=("-DLIVERNET_CUPTI_${what}_RECORD=${base}${n}")
  elif grep -qsE "\}[[:space:]]*${base}[[:space:]]*;" "$inc"/cupti_activity*.h; then
    defs+=("-DLIVERNET_CUPTI_${what}_RECORD=${base}")
  fi
done

mkdir -p "$out" || die "cannot create $out"
"$here/gen_builtin.sh" || die "cannot write $here/categories_builtin.inc"

incs=(-I"$inc")
[[ -f "$cuda/include/cuda.h" && "$cuda/include" != "$inc" ]] && incs+=(-I"$cuda/include")
if [[ "$(basename "$lib")" == libcupti.so ]]; then link=(-L"$libdir" -lcupti); else link=("$lib"); fi

echo "CUPTI include: $inc"
echo "CUPTI library: $lib"
echo "record structs: ${defs[*]:-(defaults in kernel_trace.cpp)}"
# shellcheck disable=SC2054  # the comma is -Wl,-rpath,DIR
cmd=("$cxx" -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -fvisibility-inlines-hidden "${defs[@]}" "${incs[@]}"
     "$here/kernel_trace.cpp" "${link[@]}" -Wl,-rpath,"$libdir" -ldl -o "$out/libkernel_trace.so")
echo "${cmd[*]}"
"${cmd[@]}" || die "compiling kernel_trace.cpp failed (command above)"

for sym in livernet_trace_begin livernet_trace_end; do
  nm -D --defined-only "$out/libkernel_trace.so" 2>/dev/null | grep -qw "$sym" || die "$sym is not exported by $out/libkernel_trace.so"
done

printf 'export LD_LIBRARY_PATH=%q${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' "$libdir" > "$out/env.sh"
echo "built $out/libkernel_trace.so"
echo "LD_LIBRARY_PATH needed: $libdir   (source $out/env.sh)"

# The CUPTI-free self-test (classifier, aggregation, reports); a failure is reported, the tracer stays built.
if "$cxx" -std=c++17 -O1 "$here/selftest.cpp" -o "$out/selftest" 2>"$out/selftest.build.log"; then
  if "$out/selftest" "$here" > "$out/selftest.log" 2>&1; then
    tail -1 "$out/selftest.log"
  else
    echo "build.sh: warning: selftest failed, see $out/selftest.log" >&2
    tail -5 "$out/selftest.log" >&2
  fi
else
  echo "build.sh: warning: selftest did not build, see $out/selftest.build.log" >&2
fi
exit 0
