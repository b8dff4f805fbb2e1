#!/usr/bin/env python3
"""GPU vs CPU end-to-end runs of scripts/gpu_e2e.sh, side by side, with bounds and PASS/FAIL (standard library only).

    bench/e2e_compare.py GPU.json CPU.json [--out FILE.md] [--dp-tol 0.05] [--margin 0.05] [--sigmas 2] [--tool-tol 1e-3]

(i) The same weights on two devices / precisions: max |p_gpu - p_cpu| <= --dp-tol, and the predicted class equal for
    every lesion whose reference (CPU, f32) probability is not within --margin of the decision threshold 0.5.
    Why 0.05: bf16 keeps 8 significant bits, a relative rounding error of about 2^-9 = 2e-3 per operation; over the
    ~100 layers of InceptionV3 + head these errors accumulate (partly cancelling) to logit errors of order 1e-2, and
    since dp/dlogit = p(1 - p) <= 1/4, probabilities move by less than that. 0.05 leaves a margin of a few times for
    unlucky lesions; a lesion within 0.05 of 0.5 may legitimately change class. The checks: tools/evaluate and
    tools/predict on the GPU vs on the CPU (note: both tools run f32 on the GPU, so there the bound is loose: f32 vs
    f32 should agree to ~1e-5) and, the real bf16 check, the run's own fold-1 test predictions (made on the GPU in
    bf16 autocast during training) vs tools/evaluate --fold 1 (f32) of the same fold_1/best.h5.
(ii) Separately trained runs (GPU bf16 vs CPU f32: different rounding and summation order, so the training
    trajectories diverge chaotically after a few steps): the pooled accuracy and AUC may differ by sampling noise
    only: |x_gpu - x_cpu| <= --sigmas * sqrt(p (1 - p) / n) with p the CPU value and n the number of lesions (the 95 %
    binomial interval for --sigmas 2). With a few dozen test lesions one changed prediction moves accuracy by 1/n,
    so a tighter bound would test the seed, not the engine.
(iii) Tool consistency on one device (same weights, both f32): tools/predict vs tools/evaluate --fold 1 on the
    dataset file: max |dp| <= --tool-tol (both should preprocess identically: HU window, clip, resize).
Exit code 0 when every check passes, 1 otherwise.
"""
import argparse
import json
import math
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def g(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def num(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and (abs(v) < 10 ** -digits and v != 0):
            return f"{v:.1e}"
        return f"{v:.{digits}f}" if isinstance(v, float) else str(v)
    return str(v)


def diff(a, b, digits=3):
    return f"{a - b:+.{digits}f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) else ""


def step_seconds(r, prefix):
    s = [v.get("seconds") for k, v in (r.get("steps") or {}).items() if k.startswith(prefix) and v.get("seconds") is not None]
    return sum(s) if s else None


def same_weights_row(name, c, args):
    """One (i)-style check: c from the JSON's same_weights section."""
    if not c or c.get("error") or c.get("n") in (None, 0):
        return f"| {name} | n/a | | | | | FAIL (missing: {c.get('error') if c else 'not run'}) |", False
    outside = [f for f in c.get("flips", []) if abs(f[1] - 0.5) > args.margin]
    ok = c["max_abs_dp"] is not None and c["max_abs_dp"] <= args.dp_tol and not outside
    return (f"| {name} | {c['n']} | {num(c['max_abs_dp'], 4)} | {num(c.get('mean_abs_dp'), 4)} | {c['class_differs']} | "
            f"{len(outside)} | {'PASS' if ok else 'FAIL'} |"), ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gpu_json")
    ap.add_argument("cpu_json")
    ap.add_argument("--out", help="also write the markdown here")
    ap.add_argument("--dp-tol", type=float, default=0.05, help="(i) max |p_gpu - p_cpu| for the same weights")
    ap.add_argument("--margin", type=float, default=0.05, help="(i) class changes allowed within this of 0.5")
    ap.add_argument("--sigmas", type=float, default=2.0, help="(ii) binomial standard errors allowed (2 = 95%%)")
    ap.add_argument("--tool-tol", type=float, default=1e-3, help="(iii) max |dp| predict vs evaluate, same device")
    args = ap.parse_args()
    G, C = load(args.gpu_json), load(args.cpu_json)
    L, ok_all = [], True

    L.append(f"# livernet end to end: {G.get('device')} vs {C.get('device')}\n")
    for tag, r in (("GPU run", G), ("CPU run", C)):
        st = r.get("settings") or {}
        L.append(f"- {tag}: {r.get('gpu') or r.get('device')} on {r.get('host')} ({r.get('cores')} cores), commit "
                 f"{r.get('commit')}, {r.get('date')}; {st.get('patients')} patients, {st.get('epochs')} epochs, "
                 f"{st.get('size')}x{st.get('size')}, {st.get('folds')} folds, precision {st.get('precision')}; "
                 f"`{g(r, 'train', 'model_line')}`" + (f"; **error: {r['error']}**" if r.get("error") else ""))
    keys = ("patients", "epochs", "size", "folds", "seed")
    if any(g(G, "settings", k) != g(C, "settings", k) for k in keys):
        L.append("- **the two runs differ in settings** (" + ", ".join(
            f"{k} {g(G, 'settings', k)} vs {g(C, 'settings', k)}" for k in keys if g(G, "settings", k) != g(C, "settings", k))
            + "): (ii) compares unlike runs")
    L.append("")
    L.append("| | GPU | CPU | GPU - CPU |\n|---|---|---|---|")
    rows = [("total time, s", lambda r: r.get("total_seconds"), 0),
            ("phantoms, s", lambda r: step_seconds(r, "phantoms"), 1),
            ("train until SIGKILL, s", lambda r: step_seconds(r, "train_until_kill"), 1),
            ("train --resume (to the end, report included), s", lambda r: step_seconds(r, "resume"), 1),
            ("evaluate (all runs of it), s", lambda r: step_seconds(r, "evaluate"), 1),
            ("predict (all runs of it), s", lambda r: step_seconds(r, "predict"), 1),
            ("training img/s, median over epochs", lambda r: g(r, "train", "img_per_s_median"), 1),
            ("training img/s, best epoch", lambda r: g(r, "train", "img_per_s_max"), 1),
            ("lesions", lambda r: g(r, "metrics", "lesions"), 0)]
    rows += [(f"pooled {k} (out of fold)", (lambda k: lambda r: g(r, "metrics", "pooled", k))(k), 3)
             for k in ("accuracy", "precision", "recall", "f1", "auc")]
    for name, f, dg in rows:
        a, b = f(G), f(C)
        L.append(f"| {name} | {num(a, dg)} | {num(b, dg)} | {diff(a, b, dg)} |")
    for name, f in (("killed (SIGKILL) at", lambda r: g(r, "kill", "point")),
                    ("resume", lambda r: "; ".join((g(r, "resume", "resuming_lines") or []) + (g(r, "resume", "already_done_lines") or [])) or "no checkpoint used"),
                    ("run directory complete, no .tmp files", lambda r: g(r, "run_dir", "ok")),
                    ("report.html: all sections, charts, Grad-CAM images", lambda r: g(r, "report", "ok")),
                    ("Grad-CAM images (expected)", lambda r: f"{g(r, 'report', 'gradcam_images')} ({g(r, 'report', 'expected_gradcam_images')})")):
        L.append(f"| {name} | {num(f(G))} | {num(f(C))} | |")

    L.append("\n## Run checks\n\n| run | steps exit 0 | killed, resumed from a checkpoint | run dir | report | |\n|---|---|---|---|---|---|")
    for tag, r in (("GPU", G), ("CPU", C)):
        ch = r.get("checks") or {}
        ok = bool(ch) and all(ch.get(k) for k in ("steps_ok", "killed_and_resumed_from_checkpoint", "run_dir_complete", "report_complete"))
        ok_all &= ok
        L.append(f"| {tag} | {num(ch.get('steps_ok'))} | {num(ch.get('killed_and_resumed_from_checkpoint'))} | "
                 f"{num(ch.get('run_dir_complete'))} | {num(ch.get('report_complete'))} | {'PASS' if ok else 'FAIL'} |")

    L.append(f"\n## (i) Same weights, GPU vs CPU: max |dp| <= {args.dp_tol}; class equal unless the CPU probability is "
             f"within {args.margin} of 0.5\n")
    L.append(f"_{g(G, 'same_weights', 'precision_note')}._\n")
    L.append("| check | lesions | max abs dp | mean abs dp | class differs | ... outside the margin | |\n|---|---|---|---|---|---|---|")
    for name, key in (("tools/evaluate, GPU vs CPU (f32 vs f32)", "evaluate_gpu_vs_cpu"),
                      ("tools/predict, GPU vs CPU (f32 vs f32)", "predict_gpu_vs_cpu"),
                      ("run's fold-1 predictions on the GPU (run precision) vs tools/evaluate --fold 1 on the GPU (f32)",
                       "train_vs_evaluate_fold1")):
        row, ok = same_weights_row(name, g(G, "same_weights", key), args)
        ok_all &= ok
        L.append(row)

    L.append(f"\n## (ii) Separately trained runs: |GPU - CPU| <= {args.sigmas:g} sqrt(p(1-p)/n), p = the CPU value, n = lesions\n")
    L.append("| metric | GPU | CPU | difference | bound | |\n|---|---|---|---|---|---|")
    n = g(C, "metrics", "pooled", "n") or g(C, "metrics", "lesions")
    for k in ("accuracy", "auc"):
        a, b = g(G, "metrics", "pooled", k), g(C, "metrics", "pooled", k)
        if None in (a, b, n):
            L.append(f"| {k} | {num(a)} | {num(b)} | | | FAIL (missing) |")
            ok_all = False
            continue
        bound = args.sigmas * math.sqrt(max(b * (1 - b), 0.0) / n)
        ok = abs(a - b) <= bound
        ok_all &= ok
        L.append(f"| pooled {k} | {num(a)} | {num(b)} | {diff(a, b)} | {bound:.3f} (n = {n}) | {'PASS' if ok else 'FAIL'} |")

    L.append(f"\n## (iii) Tool consistency on one device, same weights, f32: tools/predict vs tools/evaluate --fold 1, "
             f"max |dp| <= {args.tool_tol:g}\n")
    L.append("| run | lesions | max abs dp | mean abs dp | class differs | |\n|---|---|---|---|---|---|")
    for tag, r in (("GPU", G), ("CPU", C)):
        c = g(r, "same_weights", "predict_vs_evaluate_fold1") or {}
        ok = c.get("max_abs_dp") is not None and c["max_abs_dp"] <= args.tool_tol
        ok_all &= ok
        L.append(f"| {tag} | {num(c.get('n'))} | {num(c.get('max_abs_dp'), 4)} | {num(c.get('mean_abs_dp'), 4)} | "
                 f"{num(c.get('class_differs'))} | {'PASS' if ok else 'FAIL'} |")
    L.append(f"\n**overall: {'PASS' if ok_all else 'FAIL'}**")
    text = "\n".join(L) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
