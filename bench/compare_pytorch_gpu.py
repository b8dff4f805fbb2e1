#!/usr/bin/env python3
"""livernet vs PyTorch on the same GPU, side by side in one run (issue: GPU speed).

usage: bench/compare_pytorch_gpu.py [--build build-gpu] [--baseline-build DIR] [--no-graph] [--batches 64 128]
                                    [--size 299] [--iters 20] [--out FILE.md] [--json FILE]

For the paper's model (torchvision InceptionV3 + identity residual shortcuts + FC head, bench/torch_models.py)
it times a full training step (forward, cross-entropy, backward, SGD) and inference, for livernet
(tools/bench --device cuda --dtype bf16) and PyTorch eager (bf16 autocast, channels_last) and
torch.compile, and prints images/s, the ratio, MFU against the measured bf16 matmul rate, and peak
memory. Each PyTorch configuration runs in its own process. livernet runs eagerly and (unless --no-graph)
with the step captured as one CUDA graph (tools/bench --graph); with --baseline-build, also an older
build's tools/bench (old versus new in the same run). Host synchronisations and launches per step come
from tools/bench's counters.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def torch_child(model, batch, size, train, iters, warmup, compiled):
    import torch
    sys.path.insert(0, HERE)
    import torch_models
    torch.backends.cudnn.benchmark = True
    step = torch_models.benchmark_step(model, batch, size, train, compiled)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    print(json.dumps({"images_per_s": batch * iters / secs, "peak_memory_bytes": torch.cuda.max_memory_allocated(),
                      "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                      "cudnn": torch.backends.cudnn.version()}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build-gpu"))
    ap.add_argument("--batches", type=int, nargs="*", default=[64, 128])
    ap.add_argument("--size", type=int, default=299)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-graph", action="store_true", help="skip livernet's CUDA-graph runs")
    ap.add_argument("--baseline-build", default=None, help="an older build (its tools/bench) to time beside")
    ap.add_argument("--out", default=None)
    ap.add_argument("--json", default=None, help="also write every measurement as JSON")
    ap.add_argument("--only-torch-compile", action="store_true",
                    help="time torch.compile alone (it compiles for minutes: a step of its own in scripts/gpu_check.sh)")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        model, batch, size, train, compiled = a.child
        torch_child(model, int(batch), int(size), train == "1", a.iters, a.warmup, compiled == "1")
        return
    rows = []
    info = {}
    if a.only_torch_compile:
        for batch in a.batches:
            for train in (True, False):
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, __file__, "--iters", str(a.iters), "--warmup", str(a.warmup), "--child",
                                      "paper", str(batch), str(a.size), "1" if train else "0", "1"], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"batch {batch} {'train' if train else 'infer'}: torch.compile failed: {out.stderr[-800:]}", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"batch {batch:4d} {'train' if train else 'infer':5s}  torch.compile {r['images_per_s']:8.1f} img/s "
                      f"(peak {r['peak_memory_bytes'] / 2**30:.2f} GiB; process incl. compilation {time.perf_counter() - t0:.0f} s)",
                      flush=True)
        return

    def ours(build, batch, train, graph):
        with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
            cmd = [os.path.join(build, "tools", "bench"), "--model", "paper", "--device", "cuda", "--dtype", "bf16",
                   "--batch", str(batch), "--size", str(a.size), "--iters", str(a.iters), "--warmup", str(a.warmup),
                   "--no-per-block", "--json", tmp.name] + (["--train"] if train else []) + (["--graph"] if graph else [])
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                # an older build may not know --no-per-block: try once without it
                if "--no-per-block" in r.stderr:
                    cmd.remove("--no-per-block")
                    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if r.returncode != 0:
                    print(f"{' '.join(cmd)} failed: {r.stderr[-600:]}", file=sys.stderr)
                    return None
            return json.load(open(tmp.name))

    for batch in a.batches:
        for train in (True, False):
            mine = {"eager": ours(a.build, batch, train, False)}
            if not a.no_graph:
                mine["graph"] = ours(a.build, batch, train, True)
            if a.baseline_build:
                mine["baseline"] = ours(a.baseline_build, batch, train, False)
            theirs = {}
            for compiled in ([False] if a.no_compile else [False, True]):
                out = subprocess.run([sys.executable, __file__, "--iters", str(a.iters), "--warmup", str(a.warmup), "--child",
                                      "paper", str(batch), str(a.size), "1" if train else "0", "1" if compiled else "0"],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    theirs["compile" if compiled else "eager"] = None
                    print(out.stderr[-2000:], file=sys.stderr)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                info = r
                theirs["compile" if compiled else "eager"] = r
            rows.append((batch, "train" if train else "inference", mine, theirs))
            eager = theirs.get("eager")
            parts = []
            for k in ("baseline", "eager", "graph"):
                m = mine.get(k)
                if m:
                    parts.append(f"{k} {m['images_per_s']:8.1f}" + (f" ({m['images_per_s'] / eager['images_per_s']:.2f}x)" if eager else ""))
            print(f"batch {batch:4d} {'train' if train else 'infer':5s}  livernet " + ", ".join(parts)
                  + (f"  PyTorch eager {eager['images_per_s']:8.1f}" if eager else "")
                  + (f"  compile {theirs['compile']['images_per_s']:8.1f}" if theirs.get("compile") else ""), flush=True)

    def ips(m):
        return m["images_per_s"] if m else float("nan")

    def ratio(m, e):
        return m["images_per_s"] / e["images_per_s"] if m and e else float("nan")

    lines = [f"# livernet vs PyTorch on {info.get('device', 'the GPU')}", "",
             f"- PyTorch {info.get('torch')}, cuDNN {info.get('cudnn')}; bf16 autocast, channels_last, SGD; livernet bf16, "
             f"`tools/bench` (SGD); {a.iters} timed steps after {a.warmup} warm-up; {a.size}x{a.size}",
             f"- command: `bench/compare_pytorch_gpu.py {' '.join(sys.argv[1:])}`",
             "- ratios are against PyTorch eager in the same run; `graph` = the whole step replayed as one CUDA graph; "
             "syncs / launches = host synchronisations and device launches of one eager step (tools/bench counters)", "",
             "| batch | step | livernet eager img/s | ratio | livernet graph | ratio | baseline | ratio | PyTorch eager | "
             "torch.compile | ratio (graph/compile) | syncs/step | launches/step | MFU (eager) | peak GiB allocated ours (eager) / PyTorch |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for batch, step, mine, theirs in rows:
        e, c = theirs.get("eager"), theirs.get("compile")
        m, g, b = mine.get("eager"), mine.get("graph"), mine.get("baseline")
        best = g or m
        lines.append(f"| {batch} | {step} | {ips(m):.1f} | {ratio(m, e):.2f} | {ips(g):.1f} | {ratio(g, e):.2f} | "
                     f"{ips(b):.1f} | {ratio(b, e):.2f} | {ips(e):.1f} | {ips(c):.1f} | {ratio(best, c):.2f} | "
                     f"{m.get('eager_host_syncs_per_step', float('nan')) if m else float('nan')} | "
                     f"{m.get('eager_launches_per_step', float('nan')) if m else float('nan')} | "
                     f"{100 * m.get('mfu', 0) if m else float('nan'):.1f}% | "
                     f"{(m['peak_memory_bytes'] / 2**30) if m else float('nan'):.2f} / "
                     f"{e['peak_memory_bytes'] / 2**30 if e else float('nan'):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)
    if a.json:
        json.dump({"info": info, "rows": [{"batch": b, "step": st, "livernet": mine, "pytorch": theirs}
                                          for b, st, mine, theirs in rows]}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
