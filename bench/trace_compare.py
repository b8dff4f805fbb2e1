#!/usr/bin/env python3
"""livernet's kernel profile beside PyTorch's, per category, as markdown.

usage: bench/trace_compare.py OURS.jsonl TORCH.jsonl [--label train] [--ours-label L] [--torch-label L]
                              [--ours-steps N] [--torch-steps N] [--names 15] [--out FILE.md]

OURS.jsonl: the JSON lines of bench/cupti_trace/kernel_trace.cpp (LIVERNET_TRACE_JSON); TORCH.jsonl: those of
bench/torch_profile.py (--json). Both hold totals over their window and the number of steps in it; this divides
by the steps. For each label present in both files (or the pair given), it prints a table per category -- ms per
step and records (kernels, memcpy, memset) per step, ours vs PyTorch, and the difference -- sorted by our time,
the totals (sum of kernel durations, GPU busy time, span, record counts), PyTorch's host-side counts (kernel
launches, synchronisations) and, with --names N, the N most expensive kernels of each side. When a label occurs
more than once in a file, the last line counts. Labels are paired by name, else by mode: a livernet label with
"train" in it ("paper train b64 299x299 eager", tools/bench --kernel-trace) goes with PyTorch's "train", one
with "infer" with "infer".
"""
import argparse
import json
import sys


def load(path):
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"trace_compare.py: {path}:{lineno}: not JSON: {e}")
            out[rec.get("label", "?")] = rec  # the last line of a label wins
    if not out:
        sys.exit(f"trace_compare.py: {path}: no records")
    return out


def mode_of(label):
    """'train' or 'infer' from a label ('paper train b64 299x299 eager', 'infer_compile', ...), else None."""
    low = label.lower()
    if "train" in low:
        return "train"
    if "infer" in low or "eval" in low:
        return "infer"
    return None


def per_step(rec, steps_override):
    steps = steps_override or rec.get("steps") or 1
    cats = {c["category"]: (c["total_us"] / steps / 1e3, c["count"] / steps) for c in rec.get("categories", [])}
    return steps, cats


def cnt(v):
    return "-" if v is None else ("%d" % round(v) if abs(v - round(v)) < 1e-9 else "%.1f" % v)


def signed(v, fmt):
    return "-" if v is None else (("+" if v > 0 else "") + fmt(v))


def compare(ours, theirs, label_o, label_t, a):
    so, co = per_step(ours, a.ours_steps)
    st, ct = per_step(theirs, a.torch_steps)
    cats = sorted(set(co) | set(ct), key=lambda c: (-co.get(c, (0.0, 0))[0], -ct.get(c, (0.0, 0))[0], c))
    title = label_o if label_o == label_t else f"{label_o} vs {label_t}"
    lines = [f"## {title}", "",
             f"livernet: {so} step(s) in its window; PyTorch ({theirs.get('tool', 'torch')}): {st} step(s). "
             "Times are sums of kernel durations per step (kernels on different streams may overlap).", ""]
    cfg = theirs.get("config")
    if cfg:
        lines += [f"PyTorch {cfg.get('torch')}, cuDNN {cfg.get('cudnn')}, {cfg.get('gpu')}; batch {cfg.get('batch')}, "
                  f"{cfg.get('size')}x{cfg.get('size')}, bf16 autocast {cfg.get('amp_bf16')}, channels_last, "
                  f"torch.compile {cfg.get('compiled')}", ""]
    lines += ["| category | livernet ms | PyTorch ms | diff ms | livernet / PyTorch | livernet count | PyTorch count "
              "| diff |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    tot = [0.0, 0.0, 0.0, 0.0]
    for c in cats:
        mo, ko = co.get(c, (0.0, 0.0))
        mt, kt = ct.get(c, (0.0, 0.0))
        tot = [tot[0] + mo, tot[1] + mt, tot[2] + ko, tot[3] + kt]
        ratio = "%.2fx" % (mo / mt) if mt > 0 else "-"
        lines.append(f"| {c} | {mo:.3f} | {mt:.3f} | {signed(mo - mt, lambda v: '%.3f' % v)} | {ratio} | "
                     f"{cnt(ko)} | {cnt(kt)} | {signed(ko - kt, cnt)} |")
    ratio = "%.2fx" % (tot[0] / tot[1]) if tot[1] > 0 else "-"
    lines.append(f"| **total** | **{tot[0]:.3f}** | **{tot[1]:.3f}** | **{signed(tot[0] - tot[1], lambda v: '%.3f' % v)}** "
                 f"| **{ratio}** | **{cnt(tot[2])}** | **{cnt(tot[3])}** | **{signed(tot[2] - tot[3], cnt)}** |")
    lines.append("")
    lines += ["| per step | livernet | PyTorch | diff |", "|---|---:|---:|---:|"]
    for key, name, scale, f in (("busy_us", "GPU busy ms (union of intervals)", 1e3, "%.3f"),
                                ("span_us", "span ms (first start to last end)", 1e3, "%.3f"),
                                ("sum_us", "sum of durations ms", 1e3, "%.3f"),
                                ("kernels", "kernels", 1, None), ("memcpys", "memcpy", 1, None),
                                ("memsets", "memset", 1, None)):
        vo, vt = ours.get(key, 0) / so / scale, theirs.get(key, 0) / st / scale
        fmt = (lambda v, f=f: f % v) if f else cnt
        lines.append(f"| {name} | {fmt(vo)} | {fmt(vt)} | {signed(vo - vt, fmt)} |")
    host = theirs.get("host")
    if host:
        lines.append(f"| PyTorch host: kernel launches | - | {cnt(host['launches'] / st)} | |")
        lines.append(f"| PyTorch host: synchronisations | - | {cnt(host['syncs'] / st)} | |")
        lines.append(f"| PyTorch host: blocking cudaMemcpy / D2H copies | - | "
                     f"{cnt(host['blocking_memcpy'] / st)} / {cnt(host['d2h_copies'] / st)} | |")
    notes = []
    for side, rec in (("livernet", ours), ("PyTorch", theirs)):
        if rec.get("dropped"):
            notes.append(f"{side}: CUPTI dropped {rec['dropped']} records; its figures are low")
        if rec.get("incomplete"):
            notes.append(f"{side}: {rec['incomplete']} records without timestamps left out")
    if notes:
        lines += [""] + ["- " + n for n in notes]
    if a.names:
        for side, rec, steps in (("livernet", ours, so), ("PyTorch", theirs, st)):
            lines += ["", f"{side}: top {a.names} kernels", "", "| ms/step | count/step | mean us | category | name |",
                      "|---:|---:|---:|---|---|"]
            for k in rec.get("names", [])[:a.names]:
                name = k["name"].replace("|", "\\|")
                if len(name) > 120:
                    name = name[:117] + "..."
                mean = k["total_us"] / k["count"] if k["count"] else 0.0
                lines.append(f"| {k['total_us'] / steps / 1e3:.3f} | {cnt(k['count'] / steps)} | {mean:.1f} | "
                             f"{k['category']} | `{name}` |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ours")
    ap.add_argument("torch")
    ap.add_argument("--label", help="compare this label of both files")
    ap.add_argument("--ours-label")
    ap.add_argument("--torch-label")
    ap.add_argument("--ours-steps", type=int, help="steps in livernet's window (overrides the file's)")
    ap.add_argument("--torch-steps", type=int, help="steps in PyTorch's window (overrides the file's)")
    ap.add_argument("--names", type=int, default=0, help="also list the N most expensive kernels of each side")
    ap.add_argument("--out")
    a = ap.parse_args()
    ours, theirs = load(a.ours), load(a.torch)
    if a.ours_label or a.torch_label or a.label:
        lo = a.ours_label or a.label
        lt = a.torch_label or a.label
        if lo is None or lt is None:
            sys.exit("trace_compare.py: give --label, or both --ours-label and --torch-label")
        pairs = [(lo, lt)]
    else:
        pairs = []
        for lab in ours:  # the same label, else PyTorch's eager label of the same mode (train / infer)
            if lab in theirs:
                pairs.append((lab, lab))
                continue
            mode = mode_of(lab)
            cands = [t for t in theirs if mode_of(t) == mode] if mode else []
            cands.sort(key=lambda t: (t != mode, "compile" in t, t))
            if cands:
                pairs.append((lab, cands[0]))
        if not pairs and len(ours) == 1 and len(theirs) == 1:
            pairs = [(next(iter(ours)), next(iter(theirs)))]
        if not pairs:
            sys.exit(f"trace_compare.py: no label in both files (livernet: {sorted(ours)}, PyTorch: {sorted(theirs)}); "
                     "use --ours-label / --torch-label")
    parts = []
    for lo, lt in pairs:
        if lo not in ours:
            sys.exit(f"trace_compare.py: {a.ours}: no label {lo!r} (has {sorted(ours)})")
        if lt not in theirs:
            sys.exit(f"trace_compare.py: {a.torch}: no label {lt!r} (has {sorted(theirs)})")
        parts.append(compare(ours[lo], theirs[lt], lo, lt, a))
    text = "# livernet vs PyTorch: GPU time per category\n\n" + "\n".join(parts)
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
