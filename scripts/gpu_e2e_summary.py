#!/usr/bin/env python3
"""The JSON of scripts/gpu_e2e.sh (python3 standard library only): step exit codes and times, the trainer's
metrics and img/s, the kill/resume facts, checks of the run directory and report.html, and the same-weights
comparisons (evaluate and predict on the GPU vs the CPU; the trainer's own test predictions vs predict)."""
import argparse
import csv
import glob
import json
import math
import os
import re
import statistics
import sys

EPOCH = re.compile(r"^fold (\d+)/(\d+) epoch (\d+)/(\d+): train loss (\S+), val loss (\S+) acc (\S+) auc (\S+), "
                   r"lr (\S+), ([\d.]+) img/s, data wait (\d+)%, (\S+)( \(run [^)]*\))?$")
# Markers that train/report.cpp writes for each section of report.html.
REPORT_SECTIONS = {
    "metrics_table": "<h2>Metrics</h2>",
    "paper_and_trivial_rule": "<h2>Beside the paper and a trivial rule</h2>",
    "roc": "<h2>ROC curves and confusion matrix</h2>",
    "confusion_matrix": "<b>Confusion matrix (pooled)</b>",
    "calibration": "<h2>Calibration</h2>",
    "training_curves": "<h2>Training and validation</h2>",
    "gradcam": "<h2>Most confidently wrong lesions, with Grad-CAM</h2>",
    "configuration": "<h2>Configuration</h2>",
}


def seconds(text):  # train/progress.cpp format_duration: 12s, 1m05s, 2h03m
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text or "")
    return None if not m or not text else int(m[1] or 0) * 3600 + int(m[2] or 0) * 60 + int(m[3] or 0)


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_probs(path, id_col, only=None):
    """{id: [prob per class]} from a predictions CSV (tools/train, tools/evaluate or tools/predict)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return None
    out = {}
    for r in rows:
        if only and any(r.get(k) != v for k, v in only.items()):
            continue
        out[r[id_col]] = [float(v) for k, v in r.items() if k.startswith("prob_")]
    return out


def compare(ref, other, positive, what):
    """ref: the CPU (or f32) probabilities, other: the GPU (or bf16) ones, of the same weights."""
    if not ref or not other:
        return {"what": what, "error": "missing predictions"}
    ids = [i for i in ref if i in other]
    diffs, flips = [], []
    for i in ids:
        a, b = ref[i], other[i]
        diffs.append(max(abs(x - y) for x, y in zip(a, b)))
        if max(range(len(a)), key=a.__getitem__) != max(range(len(b)), key=b.__getitem__):
            flips.append([i, a[positive], b[positive]])
    return {"what": what, "n": len(ids), "unmatched": len(set(ref) ^ set(other)),
            "max_abs_dp": max(diffs, default=None), "mean_abs_dp": statistics.fmean(diffs) if diffs else None,
            "class_differs": len(flips), "flips": flips}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    for a in ("--facts", "--run", "--work", "--device", "--json"):
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    facts = {}
    for line in read_text(args.facts).splitlines():
        k, _, v = line.partition("\t")
        facts[k] = v
    run, work = args.run, args.work
    res = {"device": args.device, "name": facts.get("name"), "gpu": facts.get("gpu"), "host": facts.get("host"),
           "cores": int(facts["cores"]) if facts.get("cores", "").isdigit() else None, "work": facts.get("work"), "commit": facts.get("commit"), "date": facts.get("date"),
           "settings": {k: int(facts[k]) if facts.get(k, "").isdigit() else facts.get(k)
                        for k in ("budget", "patients", "epochs", "size", "precision")},
           "error": facts.get("error")}
    res["settings"].update(config="configs/paper.yaml", folds=2, seed=42, weights="none (from scratch)")
    steps = {}
    for k, v in facts.items():
        st, _, field = k.rpartition(".")
        if field in ("rc", "seconds") and st not in ("kill", "total") and st:
            steps.setdefault(st, {})[field] = (float(v) if field == "seconds" else int(v) if v.lstrip("-").isdigit() else v)
    res["steps"] = steps
    res["total_seconds"] = int(facts["total.seconds"]) if "total.seconds" in facts else None

    # training: the trainer's lines in RUN/log.txt (both processes: before the kill and the resume)
    log = read_text(os.path.join(run, "log.txt")).splitlines()
    epochs, phase = [], "before_kill"
    for line in log:
        if line.startswith("resuming run "):
            phase = "after_resume"
        m = EPOCH.match(line)
        if m:
            epochs.append({"fold": int(m[1]), "epoch": int(m[3]), "phase": phase, "img_per_s": float(m[10]),
                           "data_wait_pct": int(m[11]), "train_seconds": seconds(m[12]),
                           "val_accuracy": float(m[7]), "val_auc": float(m[8])})
    ips = [e["img_per_s"] for e in epochs]
    res["train"] = {"model_line": next((line for line in log if line.startswith("model ")), None),
                    "data_line": next((line for line in log if line.startswith("data ")), None),
                    "initial_weights_line": next((line for line in log if line.startswith("initial weights")), None),
                    "epochs": epochs, "img_per_s_median": round(statistics.median(ips), 1) if ips else None,
                    "img_per_s_max": max(ips, default=None)}
    metrics = read_json(os.path.join(run, "metrics.json")) or {}
    names = ("accuracy", "precision", "recall", "specificity", "f1", "auc")
    res["metrics"] = {"pooled": {k: metrics.get(k) for k in names} | {
        "n": metrics.get("pooled", {}).get("n"), "confusion": metrics.get("pooled", {}).get("confusion")},
        "mean": metrics.get("mean"), "std": metrics.get("std"), "lesions": metrics.get("lesions"),
        "patients": metrics.get("patients"), "classes": metrics.get("classes"),
        "folds": [{k: f.get(k) for k in ("fold", "n", "accuracy", "f1", "auc", "best_epoch", "epochs_run")}
                  for f in metrics.get("folds", [])]}

    # the kill and the resume
    resume_log = read_text(os.path.join(work, "resume.log"))
    resumed = re.findall(r"^fold \d+/\d+: resuming at epoch .*$", resume_log, re.M)
    done = re.findall(r"^fold \d+/\d+: already done$", resume_log, re.M)
    at_kill = read_text(os.path.join(work, "history_at_kill.csv")).splitlines()
    final0 = read_text(os.path.join(run, "fold_1", "history.csv")).splitlines()
    res["kill"] = {"killed": facts.get("kill.killed") == "1", "signal": "SIGKILL", "point": facts.get("kill.point"),
                   "after_seconds": float(facts["kill.after_s"]) if "kill.after_s" in facts else None,
                   "last_log_line": facts.get("kill.last_line"), "files_at_kill": facts.get("kill.files", "").split()}
    res["resume"] = {"rc": steps.get("resume", {}).get("rc"), "resuming_lines": resumed, "already_done_lines": done,
                     "resumed_from_checkpoint": bool(resumed) or bool(done),
                     "removed_temporaries": re.findall(r"^removed \d+ temporary file.*$", resume_log, re.M),
                     "metrics_table_printed": bool(re.search(r"accuracy\s+precision\s+recall", resume_log))
                     and bool(re.search(r"^pooled\s+[\d.]", resume_log, re.M)),
                     "history_at_kill_kept": bool(at_kill) and final0[:len(at_kill)] == at_kill}

    # e. the run directory
    folds = len((read_json(os.path.join(run, "splits.json")) or {}).get("folds", [0, 0]))
    want = ["config.yaml", "splits.json", "log.txt", "metrics.json", "predictions.csv", "report.html"]
    want += [f"fold_{k + 1}/{f}" for k in range(folds) for f in ("best.h5", "checkpoint.h5", "history.csv", "result.json")]
    missing = [f for f in want if not os.path.isfile(os.path.join(run, f))]
    tmp = [os.path.relpath(p, run) for p in glob.glob(os.path.join(run, "**", "*"), recursive=True)
           if ".tmp." in os.path.basename(p) or p.endswith(".tmp")]
    tmp += [os.path.relpath(p, run) for p in glob.glob(os.path.join(run, "**", ".*"), recursive=True) if ".tmp" in p]
    hist_ok = []
    for k, f in enumerate(res["metrics"]["folds"] or [{}] * folds):
        rows = read_text(os.path.join(run, f"fold_{k + 1}", "history.csv")).splitlines()[1:]
        nums = [int(r.split(",")[0]) for r in rows if r]
        hist_ok.append(nums == list(range(1, len(nums) + 1)) and len(nums) == f.get("epochs_run"))
    preds = read_probs(os.path.join(run, "predictions.csv"), "lesion_id") or {}
    res["run_dir"] = {"missing": missing, "tmp_files": sorted(set(tmp)), "history_epochs_consecutive": hist_ok,
                      "prediction_rows": len(preds), "evaluation_reports": sorted(
                          os.path.relpath(p, run) for p in glob.glob(os.path.join(run, "eval_*", "report.html")))}
    res["run_dir"]["ok"] = not missing and not tmp and all(hist_ok) and len(preds) == metrics.get("lesions")

    html = read_text(os.path.join(run, "report.html"))
    wrong = 0  # misclassified lesions (the gallery shows up to 8 of them)
    try:
        with open(os.path.join(run, "predictions.csv"), newline="") as f:
            classes = metrics.get("classes") or []
            wrong = sum(1 for r in csv.DictReader(f)
                        if classes and max(classes, key=lambda c: float(r["prob_" + c])) != r["label"])
    except OSError:
        pass
    rep = {k: v in html for k, v in REPORT_SECTIONS.items()}
    rep.update(bytes=len(html), charts=html.count('<svg class="chart"'), gradcam_images=html.count('src="data:image/png;base64,'),
               misclassified=wrong, expected_gradcam_images=min(8, wrong), expected_charts=2 + folds)  # ROC, reliability, one training chart per fold
    rep["ok"] = (all(rep[k] for k in REPORT_SECTIONS) and rep["charts"] == rep["expected_charts"]
                 and rep["gradcam_images"] == rep["expected_gradcam_images"])
    res["report"] = rep

    # c, d. evaluations and same-weights comparisons
    pos_name = metrics.get("positive_class")
    pos = (metrics.get("classes") or []).index(pos_name) if pos_name in (metrics.get("classes") or []) else 1
    res["evaluate"] = {}
    for d in sorted(glob.glob(os.path.join(run, "eval_*"))):
        m = read_json(os.path.join(d, "metrics.json")) or {}
        res["evaluate"][os.path.basename(d)[5:]] = {k: m.get(k) for k in names} | {"n": m.get("lesions")}
    ev = {d: read_probs(os.path.join(run, f"eval_{d}", "predictions.csv"), "lesion_id") for d in ("cuda", "cpu")}
    pr = {d: read_probs(os.path.join(work, f"predict_{d}.csv"), "id") for d in ("cuda", "cpu")}
    dev = "cpu" if args.device == "cpu" else "cuda"
    fold1 = read_probs(os.path.join(run, f"eval_fold1_{dev}", "predictions.csv"), "lesion_id")
    trained = read_probs(os.path.join(run, "predictions.csv"), "lesion_id", only={"fold": "1"})
    sw = {"precision_note": "tools/evaluate and tools/predict have no precision option: they run f32 on both devices "
                            "(the GPU's cuDNN/cuBLAS in strict f32, no TF32); the run's own test predictions "
                            "(RUN/predictions.csv) use the run's precision (bf16 autocast on the GPU by default)",
          "positive_class": pos_name, "run_precision": res["train"]["model_line"],
          "train_vs_evaluate_fold1": compare(fold1, trained, pos, f"fold 1 test lesions, fold_1/best.h5 on {dev}: "
                                             "tools/evaluate --fold 1 (f32) vs the run's predictions.csv (run precision)"),
          "predict_vs_evaluate_fold1": compare(fold1, pr[dev], pos, f"every lesion, fold_1/best.h5 on {dev}, both f32: "
                                               "tools/evaluate --fold 1 vs tools/predict (a tool consistency check)")}
    if dev == "cuda":
        sw["evaluate_gpu_vs_cpu"] = compare(ev["cpu"], ev["cuda"], pos, "tools/evaluate, 2 fold models averaged, every lesion")
        sw["predict_gpu_vs_cpu"] = compare(pr["cpu"], pr["cuda"], pos, "tools/predict fold_1/best.h5, every lesion")
    res["same_weights"] = sw

    rcs = {k: v.get("rc") for k, v in steps.items()}
    res["checks"] = {
        "steps_ok": all(rc == 0 for k, rc in rcs.items() if k != "train_until_kill") and rcs.get("train_until_kill") in (0, 137),
        "killed_and_resumed_from_checkpoint": res["kill"]["killed"] and res["resume"]["resumed_from_checkpoint"]
        and res["resume"]["rc"] == 0 and res["resume"]["metrics_table_printed"],
        "run_dir_complete": res["run_dir"]["ok"], "report_complete": rep["ok"], "error": res["error"]}
    pooled = res["metrics"]["pooled"]
    res["headline"] = {  # the few numbers to read first
        "pooled": {k: pooled.get(k) for k in ("accuracy", "f1", "auc", "n")},
        "img_per_s_median": res["train"]["img_per_s_median"], "killed_at": res["kill"]["point"],
        "resume": (resumed + done) or None, "total_seconds": res["total_seconds"],
        "same_weights_max_abs_dp": {k: v.get("max_abs_dp") for k, v in sw.items() if isinstance(v, dict)},
        "same_weights_class_differs": {k: v.get("class_differs") for k, v in sw.items() if isinstance(v, dict)}}
    first = ("device", "gpu", "error", "checks", "headline", "steps")  # gpu_check.sh's summary shows the first 12 keys
    res = {k: res[k] for k in first} | {k: v for k, v in res.items() if k not in first}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
        f.write("\n")
    if res["error"]:  # gpu_e2e.sh prints the one line
        return 0
    p = pooled
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"e2e {args.device}: steps {rcs}; pooled accuracy {fmt(p['accuracy'])} F1 {fmt(p['f1'])} AUC {fmt(p['auc'])}; "
          f"img/s median {res['train']['img_per_s_median']}; killed at: {res['kill']['point']}; resumed: "
          f"{resumed or done}; run dir ok {res['run_dir']['ok']}; report ok {rep['ok']}; checks {res['checks']}")
    for k, c in sw.items():
        if isinstance(c, dict):
            print(f"same weights, {c['what']}: n {c.get('n')}, max |dp| {c.get('max_abs_dp')}, class differs {c.get('class_differs')}")
    print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
