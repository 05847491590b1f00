#!/usr/bin/env python
"""The main job: baseline student vs CSGR student on the offline shapes dataset.

1. trains the teacher (or reuses its checkpoint when one from the same config exists),
2. trains the baseline student and the CSGR student on an identical schedule and seed,
3. evaluates both and prints AP, AP50, AP75, APs, APm, APl with the difference.

Every run goes through tools/train_net.py, as a user would run it; outputs go to
``--output`` (default output/main/<detector>).

    python tools/run_main.py                     # Faster R-CNN (default)
    python tools/run_main.py --detector retinanet
    python tools/run_main.py --iters 300 --teacher-iters 600   # shorter schedule
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

from tabulate import tabulate

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
METRICS = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
CONFIGS = {
    "frcnn": ("faster_rcnn_R_50_FPN", "faster_rcnn_R_18_FPN", "csgr_frcnn_r18_r50"),
    "retinanet": ("retinanet_R_50_FPN", "retinanet_R_18_FPN", "csgr_retinanet_r18_r50"),
}


def final_metrics(output_dir: str) -> dict:
    """The last ``bbox/*`` evaluation written to ``output_dir/metrics.json``."""
    path = os.path.join(output_dir, "metrics.json")
    found = None
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            if "bbox/AP" in record:
                found = record
    if found is None:
        raise RuntimeError(f"{path} holds no bbox evaluation")
    return {m: found.get(f"bbox/{m}", float("nan")) for m in METRICS}


def train(label: str, config: str, output_dir: str, opts: list) -> float:
    """Run tools/train_net.py in a fresh process, its output in ``output_dir/stdout.log``.

    Returns:
        the wall time in seconds.
    """
    cmd = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", config]
    cmd += ["OUTPUT_DIR", output_dir, *opts]
    os.makedirs(output_dir, exist_ok=True)
    log = os.path.join(output_dir, "stdout.log")
    print(f"[{label}] {' '.join(cmd[1:])}\n[{label}] log: {log}", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.readlines()[-30:]
        sys.exit(f"[{label}] failed (exit {proc.returncode}); end of {log}:\n" + "".join(tail))
    seconds = time.perf_counter() - start
    print(f"[{label}] done in {seconds / 60:.1f} min", flush=True)
    return seconds


def fmt(value: float, signed: bool = False) -> str:
    """A metric for the table; COCO reports -1/NaN where a size range has no objects."""
    if value != value or value < 0 and not signed:
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def cfg(name: str) -> str:
    return os.path.join("configs", "Shapes", name + ".yaml")


def sched(iters: int) -> list:
    """Opts for a schedule of ``iters`` iterations (LR steps at 2/3 and 8/9), or none."""
    if iters is None:
        return []
    return ["SOLVER.MAX_ITER", str(iters), "SOLVER.STEPS", f"({iters * 2 // 3}, {iters * 8 // 9})"]


def teacher_is_cached(output_dir: str, key: str) -> bool:
    stamp = os.path.join(output_dir, "csgr_main_stamp.txt")
    if not os.path.isfile(os.path.join(output_dir, "model_final.pth")):
        return False
    return os.path.isfile(stamp) and open(stamp).read() == key


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detector", choices=sorted(CONFIGS), default="frcnn")
    parser.add_argument("--output", default=os.path.join(ROOT, "output", "main"))
    parser.add_argument("--iters", type=int, help="student iterations (default: the config's)")
    parser.add_argument("--teacher-iters", type=int, help="teacher iterations (default: config's)")
    parser.add_argument("--retrain-teacher", action="store_true", help="ignore a cached teacher")
    args = parser.parse_args()

    teacher_name, student_name, csgr_name = CONFIGS[args.detector]
    out = os.path.join(os.path.abspath(args.output), args.detector)
    times = {}

    teacher_dir = os.path.join(out, "teacher")
    teacher_opts = sched(args.teacher_iters)
    key = hashlib.sha256(
        (open(os.path.join(ROOT, cfg(teacher_name))).read() + repr(teacher_opts)).encode()
    ).hexdigest()
    if args.retrain_teacher or not teacher_is_cached(teacher_dir, key):
        times["teacher"] = train("teacher", cfg(teacher_name), teacher_dir, teacher_opts)
        with open(os.path.join(teacher_dir, "csgr_main_stamp.txt"), "w") as f:
            f.write(key)
    else:
        print(f"Reusing the teacher in {teacher_dir} (--retrain-teacher to train it again)")
    teacher_weights = os.path.join(teacher_dir, "model_final.pth")

    student_opts = sched(args.iters)
    runs = {"baseline": (student_name, []), "CSGR": (csgr_name, [])}
    runs["CSGR"][1].extend(["MODEL.DISTILL.TEACHER.WEIGHTS", teacher_weights])
    results = {"teacher": final_metrics(teacher_dir)}
    for label, (name, opts) in runs.items():
        run_dir = os.path.join(out, label.lower())
        times[label] = train(label, cfg(name), run_dir, student_opts + opts)
        results[label] = final_metrics(run_dir)

    rows = [[label, *(fmt(results[label][m]) for m in METRICS)] for label in results]
    diff = [results["CSGR"][m] - results["baseline"][m] for m in METRICS]
    rows.append(["CSGR - baseline", *(fmt(d, signed=True) for d in diff)])
    print(f"\nOffline shapes, {args.detector}: teacher {teacher_name}, student {student_name}")
    print(tabulate(rows, headers=["model", *METRICS], tablefmt="github"))
    print("Wall time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in times.items()))


if __name__ == "__main__":
    main()
