#!/usr/bin/env python3
"""livernet vs PyTorch on the same GPU, side by side in one run (issue: GPU speed).

usage: bench/compare_pytorch_gpu.py [--build build-gpu] [--batches 64 128] [--size 299] [--iters 20] [--out FILE.md]

For the paper's model (torchvision InceptionV3 + identity residual shortcuts + FC head, bench/torch_models.py)
it times a full training step (forward, cross-entropy, backward, SGD) and inference, for livernet
(tools/bench --device cuda --dtype bf16) and PyTorch eager (bf16 autocast, channels_last) and
torch.compile, and prints images/s, the ratio, MFU against the measured bf16 matmul rate, and peak
memory. Each PyTorch configuration runs in its own process.
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
    dev = "cuda"
    m = torch_models.build(model, 2).to(dev).to(memory_format=torch.channels_last)
    m.train(train)
    if compiled:
        m = torch.compile(m)
    x = torch.randn(batch, 3, size, size, device=dev).to(memory_format=torch.channels_last)
    y = torch.arange(batch, device=dev) % 2
    opt = torch.optim.SGD(m.parameters(), lr=1e-3)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if train:
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(m(x).float(), y)
            else:
                with torch.no_grad():
                    m(x)
        if train:
            loss.backward()
            opt.step()

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
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        model, batch, size, train, compiled = a.child
        torch_child(model, int(batch), int(size), train == "1", a.iters, a.warmup, compiled == "1")
        return
    rows = []
    info = {}
    for batch in a.batches:
        for train in (True, False):
            with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
                cmd = [os.path.join(a.build, "tools", "bench"), "--model", "paper", "--device", "cuda", "--dtype", "bf16",
                       "--batch", str(batch), "--size", str(a.size), "--iters", str(a.iters), "--warmup", str(a.warmup),
                       "--json", tmp.name] + (["--train"] if train else [])
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                ours = json.load(open(tmp.name))
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
            rows.append((batch, "train" if train else "inference", ours, theirs))
            eager = theirs.get("eager")
            print(f"batch {batch:4d} {'train' if train else 'infer':5s}  livernet {ours['images_per_s']:8.1f} img/s"
                  f"  (MFU {100 * ours.get('mfu', 0):.1f}%, {ours['peak_memory_bytes'] / 2**30:.2f} GiB)"
                  + (f"  PyTorch eager {eager['images_per_s']:8.1f} img/s  ratio {ours['images_per_s'] / eager['images_per_s']:.2f}"
                     if eager else ""), flush=True)
    lines = [f"# livernet vs PyTorch on {info.get('device', 'the GPU')}", "",
             f"- PyTorch {info.get('torch')}, cuDNN {info.get('cudnn')}; bf16 autocast, channels_last; livernet bf16, "
             f"`tools/bench`; {a.iters} timed steps after {a.warmup} warm-up; {a.size}x{a.size}",
             f"- command: `bench/compare_pytorch_gpu.py {' '.join(sys.argv[1:])}`", "",
             "| batch | step | livernet img/s | PyTorch eager | ratio | torch.compile | ratio | livernet MFU | livernet peak GiB | PyTorch peak GiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for batch, step, ours, theirs in rows:
        e, c = theirs.get("eager"), theirs.get("compile")
        lines.append(f"| {batch} | {step} | {ours['images_per_s']:.1f} | {e['images_per_s'] if e else float('nan'):.1f} | "
                     f"{ours['images_per_s'] / e['images_per_s'] if e else float('nan'):.2f} | "
                     f"{c['images_per_s'] if c else float('nan'):.1f} | {ours['images_per_s'] / c['images_per_s'] if c else float('nan'):.2f} | "
                     f"{100 * ours.get('mfu', 0):.1f}% | {ours['peak_memory_bytes'] / 2**30:.2f} | "
                     f"{e['peak_memory_bytes'] / 2**30 if e else float('nan'):.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
