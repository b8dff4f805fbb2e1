#!/usr/bin/env python3
"""livernet vs PyTorch on the same CPU, side by side in one run.

usage: bench/compare_pytorch_cpu.py [--build build] [--iters 3] [--warmup 1] [--repeats 3] [--out bench/results/...md]
       [--configs paper:8:299 inception_v3:32:75 ...]

For every configuration (model, batch, size) it times forward-only and a full training step (forward,
cross-entropy, backward, SGD update) with livernet's tools/bench and with PyTorch (Debian's python3-torch,
channels-last, the same number of threads), each in its own process so that peak RSS is per run. The two
run alternately --repeats times (a shared machine drifts: interleaving gives both the same conditions) and
the median images/s of each is compared. Prints a table (images/s, ratio, peak RSS, and PyTorch's RSS right
after importing torch, its fixed cost) and writes it as Markdown.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def torch_run(model, batch, size, train, iters, warmup, threads, classes):
    """Runs in a child process: prints JSON with images_per_s and max_rss_bytes."""
    import torch
    sys.path.insert(0, HERE)
    import torch_models
    import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = torch_models.build(model, classes).to(memory_format=torch.channels_last)
    m.train(train)
    x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
    y = torch.arange(batch) % classes
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)

    def step():
        if train:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(m(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                m(x)

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    secs = time.perf_counter() - t0
    print(json.dumps({"images_per_s": batch * iters / secs, "import_rss_bytes": import_rss,
                      "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--configs", nargs="*", default=["paper:8:299", "inception_v3:8:299", "paper:32:75", "inception_v3:32:75"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--torch-child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_child:
        model, batch, size, train = a.torch_child
        torch_run(model, int(batch), int(size), train == "1", a.iters, a.warmup, a.threads, a.classes)
        return
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    bench = os.path.join(a.build, "tools", "bench")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    rows = []
    for cfg in a.configs:
        model, batch, size = cfg.split(":")
        for train in (False, True):
            ours_runs, theirs_runs = [], []
            for _ in range(a.repeats):
                with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                    cmd = [bench, "--model", model, "--classes", str(a.classes), "--device", "cpu", "--batch", batch,
                           "--size", size, "--iters", str(a.iters), "--warmup", str(a.warmup), "--no-per-block",
                           "--json", tmp.name] + (["--train"] if train else [])
                    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                    ours_runs.append(json.load(open(tmp.name)))
                out = subprocess.run([python, __file__, "--iters", str(a.iters), "--warmup", str(a.warmup), "--threads",
                                      str(a.threads), "--classes", str(a.classes), "--torch-child", model, batch, size,
                                      "1" if train else "0"], check=True, env=env, capture_output=True, text=True)
                theirs_runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = lambda runs: statistics.median(r["images_per_s"] for r in runs)
            rows.append((model, int(batch), int(size), "train" if train else "forward", med(ours_runs), med(theirs_runs),
                         max(r["max_rss_bytes"] for r in ours_runs), max(r["max_rss_bytes"] for r in theirs_runs),
                         min(r["import_rss_bytes"] for r in theirs_runs),
                         " ".join(f"{r['images_per_s']:.2f}" for r in ours_runs),
                         " ".join(f"{r['images_per_s']:.2f}" for r in theirs_runs)))
            r = rows[-1]
            print(f"{r[0]:<13} batch {r[1]:>3} {r[2]:>3}px {r[3]:<8} livernet {r[4]:7.2f} img/s  PyTorch {r[5]:7.2f} img/s"
                  f"  ratio {r[4] / r[5]:5.2f}  RSS {r[6] / 2**20:6.0f} / {r[7] / 2**20:6.0f} MiB"
                  f" (PyTorch after import {r[8] / 2**20:.0f})  runs: [{r[9]}] / [{r[10]}]", flush=True)
    import torch
    header = [f"# livernet vs PyTorch on the CPU", "",
              f"- CPU: {cpu_model()} ({a.threads} threads)", f"- PyTorch {torch.__version__} (oneDNN), channels_last, "
              f"SGD step included in training; livernet `tools/bench`", f"- {a.iters} timed iterations after {a.warmup} warm-up, {a.repeats} runs each, alternating; medians; "
              f"command: `bench/compare_pytorch_cpu.py {' '.join(sys.argv[1:])}`", f"- date: {time.strftime('%Y-%m-%d')}", "",
              "| model | batch | size | step | livernet img/s | PyTorch img/s | ratio | livernet peak RSS MiB | PyTorch peak RSS MiB | PyTorch RSS after import MiB | livernet runs | PyTorch runs |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines = [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.2f} | {r[5]:.2f} | {r[4] / r[5]:.2f} | {r[6] / 2**20:.0f} | "
             f"{r[7] / 2**20:.0f} | {r[8] / 2**20:.0f} | {r[9]} | {r[10]} |" for r in rows]
    text = "\n".join(header + lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        print("wrote", a.out)


if __name__ == "__main__":
    main()
