#!/usr/bin/env python3
"""PyTorch's side of the per-kernel GPU profile: where GPU time goes in one training / inference step of the
paper's model under PyTorch, in the same form as livernet's CUPTI tracer (bench/cupti_trace/kernel_trace.cpp).

usage: bench/torch_profile.py [--batch 64] [--size 299] [--steps 3] [--warmup 3] [--modes train infer]
                              [--compile] [--device cuda|cpu] [--json FILE] [--out FILE] [--top 40]
       bench/torch_profile.py --from-trace CHROME_TRACE.json --label train --steps N [--json FILE]
       bench/torch_profile.py --render FILE.jsonl [--top N]      (text report of JSON lines, either tool's)
       bench/torch_profile.py --self-test

Same set-up as bench/compare_pytorch_gpu.py: bench/torch_models.py's model ('paper': InceptionV3 + residual
shortcuts + FC head), channels_last, bf16 autocast, SGD lr 1e-3, cross-entropy; cudnn.benchmark on. Each mode
runs `--warmup` untimed steps, then `--steps` steps under torch.profiler (CPU + CUDA activities), each step inside
record_function("livernet_step_<i>"). The GPU events (kernels, memcpy, memset) of the profile are aggregated by
kernel name and by the categories of bench/cupti_trace/categories.txt -- the rules the CUPTI tracer uses, applied
the same way (case-insensitive, first match, to the name without "void " and its parameter list). From the
CPU-side runtime events inside the step ranges it counts, per step, the kernel launches (cudaLaunchKernel and
kin) and the host synchronisations (cuda*Synchronize, blocking cudaMemcpy, device-to-host copies).

Writes the text report (stdout, and --out) and one JSON line per mode (--json) with the tracer's schema, which
bench/trace_compare.py puts beside livernet's. --device cpu runs the same code on the CPU (CPU activities only, so
no kernels are found): a check of the script without a GPU. --compile adds torch.compile'd modes
("train_compile", "infer_compile").
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TRACE_DIR = os.path.join(HERE, "cupti_trace")
DEFAULT_RULES = os.path.join(TRACE_DIR, "categories.txt")

# ---- names and categories: the same steps as bench/cupti_trace/trace_agg.h ----


def load_rules(path=DEFAULT_RULES):
    """[(compiled regex, category)] from REGEX<TAB>CATEGORY lines ('#' comments and blank lines skipped)."""
    rules = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line or line.startswith("#"):
                continue
            if "\t" not in line or line.startswith("\t"):
                print(f"{path}:{lineno}: expected REGEX<TAB>CATEGORY (line skipped)", file=sys.stderr)
                continue
            pattern, category = line.split("\t", 1)
            try:
                rules.append((re.compile(pattern, re.IGNORECASE), category.rstrip(" \t")))
            except re.error as e:
                print(f"{path}:{lineno}: bad regex: {e} (line skipped)", file=sys.stderr)
    return rules


def classify(rules, name):
    for rx, category in rules:
        if rx.search(name):
            return category
    return "other"


def strip_params(s):
    """'void ns::f<T>(int, T)' -> 'ns::f<T>' (the last balanced '(...)' at the end is the parameter list)."""
    if s.startswith("void "):
        s = s[5:]
    s = s.rstrip(" ")
    if s.endswith(")"):
        depth = 0
        for i in range(len(s) - 1, -1, -1):
            if s[i] == ")":
                depth += 1
            elif s[i] == "(":
                depth -= 1
                if depth == 0:
                    if i > 0:
                        s = s[:i]
                    break
    return s.rstrip(" ")


_DROP = ["(anonymous namespace)::", "livernet::kernels::cuda::", "livernet::kernels::", "livernet::", "at::native::",
         "at::cuda::"]
_SUBST = [("c10::BFloat16", "bf16"), ("__nv_bfloat16", "bf16"), ("c10::Half", "f16"), ("__half", "f16"), (" >", ">")]


def shorten(stripped, max_len=300):
    s = stripped
    for d in _DROP:
        s = s.replace(d, "")
    for a, b in _SUBST:
        s = s.replace(a, b)
    s = re.sub(r" {2,}", " ", s.replace("\n", " ").replace("\t", " "))
    if max_len >= 4 and len(s) > max_len:
        s = s[:max_len - 3] + "..."
    return s


def union_us(intervals):
    total, cur = 0.0, None
    for a, b in sorted((a, b) for a, b in intervals if b > a):
        if cur is None:
            cur = [a, b]
        elif a <= cur[1]:
            cur[1] = max(cur[1], b)
        else:
            total += cur[1] - cur[0]
            cur = [a, b]
    if cur is not None:
        total += cur[1] - cur[0]
    return total


def summarize(label, steps, records, rules, tool="torch-profiler", name_len=300):
    """records: [(kind, start_us, end_us, raw_name)] with kind in kernel / memcpy / memset. Returns the tracer's
    JSON schema (totals over the window; readers divide by 'steps')."""
    s = {"tool": tool, "label": label, "steps": max(int(steps), 1), "busy_us": 0.0, "span_us": 0.0, "sum_us": 0.0,
         "kernels": 0, "memcpys": 0, "memsets": 0, "dropped": 0, "incomplete": 0, "outside": 0}
    groups, order, iv = {}, [], []
    first, last = None, None
    for kind, start, end, raw in records:
        if end < start:
            s["incomplete"] += 1
            continue
        full = strip_params(raw)
        g = groups.get(full)
        if g is None:
            g = groups[full] = {"name": shorten(full, name_len), "category": classify(rules, full), "count": 0,
                                "total_us": 0.0}
            order.append(full)
        d = end - start
        g["count"] += 1
        g["total_us"] += d
        s["sum_us"] += d
        s[{"kernel": "kernels", "memcpy": "memcpys", "memset": "memsets"}[kind]] += 1
        iv.append((start, end))
        first = start if first is None else min(first, start)
        last = end if last is None else max(last, end)
    s["busy_us"] = union_us(iv)
    s["span_us"] = (last - first) if first is not None else 0.0
    names = [groups[k] for k in order]
    cats = {}
    for g in names:
        c = cats.setdefault(g["category"], {"category": g["category"], "count": 0, "total_us": 0.0})
        c["count"] += g["count"]
        c["total_us"] += g["total_us"]
    by_total = lambda x: (-x["total_us"], -x["count"])  # noqa: E731
    s["categories"] = sorted(sorted(cats.values(), key=lambda c: c["category"]), key=by_total)
    s["names"] = sorted(names, key=by_total)
    return s


def count_str(v):
    return "%d" % v if float(v) == int(v) else "%.1f" % v


def format_text(s, top=40, name_width=110):
    """The tracer's text report (trace_agg.h format_text), from a summary / JSON record."""
    n = float(s["steps"])
    total = s["sum_us"]
    o = "== %s %s: %d step(s); times per step ==\n" % (s["tool"], s["label"], s["steps"])
    o += ("GPU busy %.3f ms (union of kernel/memcpy/memset intervals), span %.3f ms (first start to last end), "
          "sum of durations %.3f ms\n" % (s["busy_us"] / n / 1e3, s["span_us"] / n / 1e3, total / n / 1e3))
    o += ("records: kernels %s, memcpy %s, memset %s per step; dropped %d, incomplete %d, outside window %d "
          "(whole run)\n" % (count_str(s["kernels"] / n), count_str(s["memcpys"] / n), count_str(s["memsets"] / n),
                             s.get("dropped", 0), s.get("incomplete", 0), s.get("outside", 0)))
    o += "%-14s %10s %10s %7s\n" % ("category", "ms", "count", "share")
    for c in s["categories"]:
        o += "%-14s %10.3f %10s %6.1f%%\n" % (c["category"], c["total_us"] / n / 1e3, count_str(c["count"] / n),
                                              100.0 * c["total_us"] / total if total > 0 else 0.0)
    o += "%-14s %10.3f %10s %6.1f%%\n" % ("total", total / n / 1e3,
                                          count_str((s["kernels"] + s["memcpys"] + s["memsets"]) / n),
                                          100.0 if total > 0 else 0.0)
    names = s["names"]
    shown = len(names) if not top else min(top, len(names))
    o += "kernels by total time (%d of %d names)\n" % (shown, len(names))
    o += "%10s %8s %10s %7s  %-14s %s\n" % ("ms", "count", "mean_us", "share", "category", "name")
    for k in names[:shown]:
        name = k["name"]
        if name_width >= 4 and len(name) > name_width:
            name = name[:name_width - 3] + "..."
        o += "%10.3f %8s %10.2f %6.1f%%  %-14s %s\n" % (
            k["total_us"] / n / 1e3, count_str(k["count"] / n), k["total_us"] / k["count"] if k["count"] else 0.0,
            100.0 * k["total_us"] / total if total > 0 else 0.0, k["category"], name)
    host = s.get("host")
    if host:
        o += "host, per step (CPU-side runtime calls inside the steps%s): kernel launches %s, synchronisations %s, " \
             "blocking cudaMemcpy %s, device-to-host copies %s\n" % (
                 "" if host.get("windowed") else "; no step ranges found, whole profile", count_str(host["launches"] / n),
                 count_str(host["syncs"] / n), count_str(host["blocking_memcpy"] / n), count_str(host["d2h_copies"] / n))
        if host.get("api_counts"):
            top_api = sorted(host["api_counts"].items(), key=lambda kv: -kv[1])[:12]
            o += "  runtime/driver calls per step: " + ", ".join("%s %s" % (k, count_str(v / n)) for k, v in top_api) + "\n"
    return o


# ---- the profile of a PyTorch run ----

STEP_PREFIX = "livernet_step_"
_LAUNCH = re.compile(r"LaunchKernel|cuLaunch|LaunchCooperative|GraphLaunch", re.IGNORECASE)
_SYNC = re.compile(r"Synchronize", re.IGNORECASE)


def parse_chrome_trace(path, label, steps, rules, tool="torch-profiler"):
    """Aggregates the GPU events and the step-range CPU runtime events of a torch.profiler chrome trace."""
    with open(path, encoding="utf-8") as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    records, windows, runtime = [], [], []
    for e in events:
        if e.get("ph") != "X":
            continue
        cat = str(e.get("cat", "")).lower()
        name = str(e.get("name", ""))
        ts, dur = float(e.get("ts", 0.0)), float(e.get("dur", 0.0))
        if cat == "kernel":
            records.append(("kernel", ts, ts + dur, name))
        elif cat == "gpu_memcpy":
            records.append(("memcpy", ts, ts + dur, name))
        elif cat == "gpu_memset":
            records.append(("memset", ts, ts + dur, name))
        elif cat in ("cuda_runtime", "cuda_driver"):
            runtime.append((ts, name))
        elif name.startswith(STEP_PREFIX) and cat != "gpu_user_annotation":
            windows.append((ts, ts + dur))  # CPU-side range ("user_annotation"; no "cat" in CPU-only builds)
    s = summarize(label, steps, records, rules, tool=tool)
    inside = [(t, n) for t, n in runtime if any(a <= t <= b for a, b in windows)] if windows else runtime
    api = {}
    for _, n in inside:
        api[n] = api.get(n, 0) + 1
    s["host"] = {
        "windowed": bool(windows),
        "launches": sum(v for k, v in api.items() if _LAUNCH.search(k)),
        "syncs": sum(v for k, v in api.items() if _SYNC.search(k)),
        "blocking_memcpy": sum(v for k, v in api.items() if re.fullmatch(r"cu(da)?Memcpy(_v2)?|cudaMemcpy(2D|3D)?", k)),
        "d2h_copies": sum(1 for r in records if r[0] == "memcpy" and re.match(r"\s*Memcpy DtoH", r[3])),
        "api_counts": api,
    }
    return s


def profile_mode(args, rules, mode, compiled):
    import torch
    sys.path.insert(0, HERE)
    import torch_models

    cuda = args.device == "cuda"
    torch.manual_seed(0)
    if cuda:
        torch.backends.cudnn.benchmark = True
    train = mode == "train"
    step = torch_models.benchmark_step(args.model, args.batch, args.size, train, compiled, device=args.device, amp=args.amp)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    t0 = time.perf_counter()
    for _ in range(args.warmup):
        step()
    sync()
    warm_s = time.perf_counter() - t0
    acts = [torch.profiler.ProfilerActivity.CPU]
    if cuda:
        acts.append(torch.profiler.ProfilerActivity.CUDA)
    label = mode + ("_compile" if compiled else "")
    with torch.profiler.profile(activities=acts) as prof:
        for i in range(args.steps):
            with torch.profiler.record_function(f"{STEP_PREFIX}{i}"):
                step()
        sync()
    keep = args.trace_dir is not None
    trace_dir = args.trace_dir or tempfile.mkdtemp(prefix="torch_profile_")
    os.makedirs(trace_dir, exist_ok=True)
    path = os.path.join(trace_dir, f"torch_trace_{label}.json")
    prof.export_chrome_trace(path)
    s = parse_chrome_trace(path, label, args.steps, rules, tool="torch-profiler")
    if not keep:
        os.remove(path)
        try:
            os.rmdir(trace_dir)
        except OSError:
            pass
    s["config"] = {"model": args.model, "batch": args.batch, "size": args.size, "device": args.device,
                   "amp_bf16": bool(args.amp), "channels_last": True, "compiled": compiled, "warmup": args.warmup,
                   "warmup_s": round(warm_s, 3), "torch": torch.__version__,
                   "cudnn": torch.backends.cudnn.version() if cuda else None,
                   "gpu": torch.cuda.get_device_name() if cuda else None}
    return s


def emit(summaries, args):
    text = "".join(format_text(s, args.top) for s in summaries)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            for s in summaries:
                f.write(json.dumps(s, separators=(",", ":")) + "\n")


# ---- self-test (no torch needed) ----


def self_test():
    rules = load_rules()
    failed = passed = 0

    def check(cond, what):
        nonlocal failed, passed
        if cond:
            passed += 1
        else:
            failed += 1
            print("FAIL", what, file=sys.stderr)

    for fname in ("livernet_kernels.tsv", "library_kernels.tsv"):
        n = 0
        with open(os.path.join(TRACE_DIR, "testdata", fname), encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#") or "\t" not in line:
                    continue
                expected, raw = line.split("\t", 1)
                # CUPTI names are mangled and the tracer demangles them; PyTorch's arrive demangled. Names that
                # are still mangled here are classified as they are (the rules match inside them too).
                if raw.startswith("_Z"):
                    raw = _cxxfilt(raw)
                got = classify(rules, strip_params(raw))
                check(got == expected, f"{fname}: {got} != {expected}: {raw[:150]}")
                n += 1
        check(n > 10, f"{fname} has cases")
    check(strip_params("void a::b<int, (anonymous namespace)::X>(long, (anonymous namespace)::X)")
          == "a::b<int, (anonymous namespace)::X>", "strip_params")
    check(strip_params("Memcpy HtoD (Pageable -> Device)") == "Memcpy HtoD", "strip_params memcpy")
    check(strip_params("(weird)") == "(weird)", "strip_params whole")
    check(shorten("livernet::kernels::cuda::(anonymous namespace)::vec_kernel<8, livernet::kernels::cuda::"
                  "(anonymous namespace)::BnApplyFn<livernet::bf16> >") == "vec_kernel<8, BnApplyFn<bf16>>", "shorten")
    check(shorten("abcdefghij", 8) == "abcde...", "shorten cut")
    check(union_us([(10, 20), (15, 30), (40, 50)]) == 30, "union")
    check(union_us([(10, 100), (20, 30)]) == 90, "union nested")
    # A synthetic chrome trace: 2 steps, a conv kernel and a BN kernel per step, a D2H copy, launches, one sync.
    ev = [{"ph": "X", "cat": "user_annotation", "name": STEP_PREFIX + "0", "ts": 0, "dur": 100},
          {"ph": "X", "cat": "user_annotation", "name": STEP_PREFIX + "1", "ts": 200, "dur": 100}]
    for base in (0, 200):
        ev += [{"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": base + 1, "dur": 2},
               {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernelExC", "ts": base + 5, "dur": 2},
               {"ph": "X", "cat": "kernel", "name": "sm90_xmma_fprop_implicit_gemm_bf16_kernel__5x_cudnn",
                "ts": base + 10, "dur": 40},
               {"ph": "X", "cat": "Kernel", "name": "void at::native::batch_norm_transform_input_channels_last_kernel"
                "<c10::BFloat16, float, float, 4>(c10::BFloat16 const*, int)", "ts": base + 45, "dur": 10},
               {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy DtoH (Device -> Pageable)", "ts": base + 60, "dur": 1}]
    ev += [{"ph": "X", "cat": "cuda_runtime", "name": "cudaStreamSynchronize", "ts": 250, "dur": 5},
           {"ph": "X", "cat": "cuda_runtime", "name": "cudaMemcpyAsync", "ts": 251, "dur": 5},
           {"ph": "X", "cat": "cuda_runtime", "name": "cudaDeviceSynchronize", "ts": 400, "dur": 5}]  # after the steps
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"traceEvents": ev}, f)
    try:
        s = parse_chrome_trace(f.name, "train", 2, rules)
    finally:
        os.remove(f.name)
    check(s["kernels"] == 4 and s["memcpys"] == 2 and s["memsets"] == 0, "counts")
    check(abs(s["busy_us"] - 2 * 46) < 1e-9 and abs(s["sum_us"] - 2 * 51) < 1e-9, "busy/sum")
    check(abs(s["span_us"] - 251) < 1e-9, "span")
    cats = {c["category"]: c for c in s["categories"]}
    check(cats["conv_fwd"]["count"] == 2 and abs(cats["conv_fwd"]["total_us"] - 80) < 1e-9, "conv_fwd")
    check(cats["batchnorm"]["count"] == 2 and cats["copy"]["count"] == 2, "batchnorm/copy")
    h = s["host"]
    check(h["windowed"] and h["launches"] == 4 and h["syncs"] == 1 and h["d2h_copies"] == 2, f"host {h}")
    text = format_text(s, 5)
    check("host, per step" in text and "kernel launches 2, synchronisations 0.5" in text, "host text")
    check(json.loads(json.dumps(s))["label"] == "train", "json")
    print(f"torch_profile self-test: {passed} passed, {failed} failed")
    return failed == 0


def _cxxfilt(name):
    import subprocess
    try:
        return subprocess.run(["c++filt"], input=name, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return name


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="paper")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=299)
    ap.add_argument("--steps", type=int, default=3, help="profiled steps per mode")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    ap.add_argument("--compile", action="store_true", help="also profile torch.compile'd modes")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--no-amp", dest="amp", action="store_false", help="no bf16 autocast")
    ap.add_argument("--json", help="write one JSON line per mode here")
    ap.add_argument("--out", help="also write the text report here")
    ap.add_argument("--top", type=int, default=40, help="rows of the per-kernel table (0: all)")
    ap.add_argument("--categories", default=DEFAULT_RULES)
    ap.add_argument("--trace-dir", help="keep the chrome traces here (torch_trace_<mode>.json)")
    ap.add_argument("--from-trace", help="aggregate this chrome trace instead of running a model")
    ap.add_argument("--label", default="train", help="label for --from-trace")
    ap.add_argument("--render", help="print the text report of the JSON lines in this file")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(0 if self_test() else 1)
    if a.render:
        with open(a.render, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    sys.stdout.write(format_text(json.loads(line), a.top))
        return
    rules = load_rules(a.categories)
    if a.from_trace:
        emit([parse_chrome_trace(a.from_trace, a.label, a.steps, rules)], a)
        return
    import torch
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_profile.py: no CUDA device (use --device cpu for a check of the script)")
    summaries = []
    for compiled in ([False, True] if a.compile else [False]):
        for mode in a.modes:
            try:
                summaries.append(profile_mode(a, rules, mode, compiled))
            except Exception as e:  # torch.compile may be missing or fail; keep the other modes' results
                if not compiled:
                    raise
                print(f"[torch_profile] {mode}_compile failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
                continue
            print(f"[torch_profile] {summaries[-1]['label']}: {summaries[-1]['kernels']} kernels in {a.steps} step(s)",
                  file=sys.stderr, flush=True)
    emit(summaries, a)


if __name__ == "__main__":
    main()
