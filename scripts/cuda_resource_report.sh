#!/usr/bin/env bash
# Registers, shared memory, spills and stack per CUDA kernel (ptxas -v), for the architecture the build
# targets, by recompiling each .cu file with its own flags from compile_commands.json. Needs no GPU.
#   usage: scripts/cuda_resource_report.sh [build-dir] [output-file]
set -euo pipefail
build="${1:-build}" out="${2:-/dev/stdout}"
export PATH="/usr/local/cuda/bin:$PATH"
[[ -f $build/compile_commands.json ]] || { echo "$build/compile_commands.json: configure the build first" >&2; exit 1; }
python3 - "$build" "$out" <<'PY'
import json, re, shlex, subprocess, sys
build, out = sys.argv[1], sys.argv[2]
cmds = [c for c in json.load(open(f"{build}/compile_commands.json")) if c["file"].endswith(".cu")]
lines = [f"# CUDA kernel resources from ptxas -v ({build})", ""]
for c in sorted(cmds, key=lambda c: c["file"]):
    args = shlex.split(c["command"])
    i = args.index("-o")
    args[i + 1] = "/dev/null"
    args.insert(1, "-Xptxas=-v")
    r = subprocess.run(args, cwd=c["directory"], capture_output=True, text=True)
    lines.append(f"## {c['file'].split('/')[-1]}")
    fn = None
    for l in r.stderr.splitlines():
        m = re.search(r"Compiling entry function '([^']+)' for '(sm_\d+)'", l)
        if m:
            fn = m.group(1)
            demangled = subprocess.run(["c++filt", fn], capture_output=True, text=True).stdout.strip()
            fn = re.sub(r"\s+", " ", demangled)[:160]
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", l)
        if m and fn:
            spill = f"stack {m.group(1)} spill {m.group(2)}/{m.group(3)}"
            continue
        m = re.search(r"Used (\d+) registers.*?(\d+) bytes smem", l) or re.search(r"Used (\d+) registers", l)
        if m and fn:
            smem = re.search(r"(\d+) bytes smem", l)
            lines.append(f"REG {m.group(1):>3}  smem {smem.group(1) if smem else 0:>5}  {spill}  {fn}")
            fn = None
open(out, "w").write("\n".join(lines) + "\n")
PY
