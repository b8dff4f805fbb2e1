#!/usr/bin/env bash
# Local checks of the kernel tracer and the PyTorch profile scripts, without a GPU:
#   selftest.cpp        classifier (real livernet kernel names, cuDNN / cuBLAS / PyTorch names), aggregation, reports
#   mock/e2e_test.cpp   kernel_trace.cpp driven end to end through a fake libcupti (mock/fake_cupti.cpp)
#   mock/layout_check   the mock's record layout equals the real CUPTI header's (when one is found)
#   build.sh            the real build and an LD_PRELOAD run without a GPU (when CUPTI is found): one line, no crash
#   bench/torch_profile.py --self-test, its text renderer against the C++ one, --device cpu (when torch imports)
#   bench/trace_compare.py on the synthetic outputs
# usage: bench/cupti_trace/run_selftest.sh [WORK_DIR]     (ends with "N passed, M failed")
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ -n ${1:-} ]]; then
  work=$1
  mkdir -p "$work"
else  # a folder of its own, removed at the end unless a check failed (its logs are then worth a look)
  work=$(mktemp -d /tmp/cupti_trace_selftest.XXXXXX)
  trap '[[ $fail -eq 0 ]] && rm -rf "$work"' EXIT
fi
cxx=${CXX:-g++}
py=${PYTHON:-python3}
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
run() {  # run NAME CMD...: output to $work/NAME.log
  local name=$1; shift
  if "$@" > "$work/$name.log" 2>&1; then ok "$name"; else bad "$name (see $work/$name.log)"; tail -5 "$work/$name.log"; fi
}

cd "$here" || exit 1
real_inc=""
for d in "${CUPTI_INC:-}" "${CUDA_HOME:-/usr/local/cuda}/extras/CUPTI/include" "${CUDA_HOME:-/usr/local/cuda}/include"; do
  [[ -n "$d" && -f "$d/cupti_activity.h" ]] && ! grep -qs LIVERNET_MOCK_CUPTI "$d/cupti.h" && { real_inc=$d; break; }
done

run selftest.build "$cxx" -std=c++17 -O1 -Wall -Wextra -Werror selftest.cpp -o "$work/selftest"
run selftest "$work/selftest" "$here" --json-out "$work/ours_synth.jsonl"
run mock.syntax "$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -Imock kernel_trace.cpp
run e2e.build "$cxx" -std=c++17 -O1 -Wall -Wextra -Imock -I. mock/e2e_test.cpp kernel_trace.cpp mock/fake_cupti.cpp \
  -rdynamic -ldl -o "$work/e2e_test"
run e2e "$work/e2e_test" "$work"
printf 'fprop\tmine_conv\nbnapply\tmine_bn\n' > "$work/custom_rules.txt"
mkdir -p "$work/custom"
run e2e.custom_rules env LIVERNET_TRACE_CATEGORIES="$work/custom_rules.txt" "$work/e2e_test" "$work/custom" custom
run layout.mock "$cxx" -std=c++17 -Imock mock/layout_check.cpp -o "$work/layout_mock"

if [[ -n "$real_inc" ]]; then
  run fake_cupti.vs_real_header "$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -I"$real_inc" mock/fake_cupti.cpp
  run kernel_trace.vs_real_header "$cxx" -std=c++17 -fsyntax-only -Wall -Wextra -Werror -I"$real_inc" kernel_trace.cpp
  run layout.real "$cxx" -std=c++17 -I"$real_inc" mock/layout_check.cpp -o "$work/layout_real"
  if "$work/layout_mock" > "$work/layout_mock.txt" && "$work/layout_real" > "$work/layout_real.txt" &&
     diff <(cat "$work/layout_mock.txt") <(head -n "$(wc -l < "$work/layout_mock.txt")" "$work/layout_real.txt") > /dev/null; then
    ok "layout.mock_equals_real"
  else
    bad "layout.mock_equals_real (diff $work/layout_mock.txt $work/layout_real.txt)"
  fi
  if bash "$here/build.sh" "$work/build" > "$work/build.log" 2>&1; then
    ok "build.sh"
    printf '#include <dlfcn.h>\n#include <stdio.h>\nint main(void){void(*b)(const char*)=(void(*)(const char*))dlsym(RTLD_DEFAULT,"livernet_trace_begin");void(*e)(void)=(void(*)(void))dlsym(RTLD_DEFAULT,"livernet_trace_end");if(!b||!e){puts("hooks missing");return 1;}b("x");e();b("y");e();puts("survived");return 0;}\n' > "$work/host.c"
    gcc "$work/host.c" -o "$work/host" -ldl 2>/dev/null || cc "$work/host.c" -o "$work/host" -ldl
    out=$(LD_PRELOAD="$work/build/libkernel_trace.so" "$work/host" 2>&1)
    if [[ $? -eq 0 && "$out" == *survived* ]]; then ok "preload.no_gpu ($(echo "$out" | grep -m1 kernel_trace || echo 'no message'))"; else bad "preload.no_gpu: $out"; fi
  else
    bad "build.sh (see $work/build.log)"
  fi
else
  echo "skip real-header checks: no CUPTI headers found"
fi

cd "$root" || exit 1
run py.self_test "$py" bench/torch_profile.py --self-test
"$work/selftest" "$here" | head -n -1 > "$work/cpp_text.txt"
"$py" bench/torch_profile.py --render "$work/ours_synth.jsonl" --top 3 > "$work/py_text.txt" 2>&1
if diff "$work/cpp_text.txt" "$work/py_text.txt" > /dev/null; then ok "text.cpp_equals_python"; else bad "text.cpp_equals_python (diff $work/cpp_text.txt $work/py_text.txt)"; fi
"$py" bench/torch_profile.py --render "$work/e2e_trace.jsonl" --top 40 > "$work/py_e2e.txt" 2>&1
if diff "$work/e2e_trace.txt" "$work/py_e2e.txt" > /dev/null; then ok "text.e2e_cpp_equals_python"; else bad "text.e2e_cpp_equals_python"; fi
"$py" - "$work/torch_trace.json" <<'PYEOF'
import json, sys
ev = []
names = ["sm90_xmma_fprop_implicit_gemm_bf16_kernel__5x_cudnn",
         "void at::native::batch_norm_transform_input_channels_last_kernel<c10::BFloat16, float, float, 4>(int)"]
for step in range(2):
    t = step * 1000
    ev.append({"ph": "X", "cat": "user_annotation", "name": "livernet_step_%d" % step, "ts": t, "dur": 900})
    for k, n in enumerate(names):
        ev.append({"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": t + k, "dur": 1})
        ev.append({"ph": "X", "cat": "kernel", "name": n, "ts": t + 10 + 100 * k, "dur": 50})
json.dump({"traceEvents": ev}, open(sys.argv[1], "w"))
PYEOF
run py.from_trace "$py" bench/torch_profile.py --from-trace "$work/torch_trace.json" --label train --steps 2 \
  --json "$work/torch_synth.jsonl"
run compare "$py" bench/trace_compare.py "$work/ours_synth.jsonl" "$work/torch_synth.jsonl" --names 3 --out "$work/compare.md"
if grep -q "| conv_fwd |" "$work/compare.md" 2>/dev/null; then ok "compare.table"; else bad "compare.table"; fi
if "$py" -c "import torch, torchvision" 2>/dev/null; then
  run py.device_cpu "$py" bench/torch_profile.py --device cpu --size 75 --batch 2 --steps 1 --warmup 1 \
    --json "$work/torch_cpu.jsonl"
else
  echo "skip torch_profile.py --device cpu: torch / torchvision do not import in $py"
fi

echo "$pass passed, $fail failed$([[ $fail -gt 0 ]] && echo "; logs in $work")"
[[ $fail -eq 0 ]]
