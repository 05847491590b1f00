#!/usr/bin/env python
"""Accuracy of every distillation method side by side on an offline suite (shapes or coral).

Trains, through tools/train_net.py subprocesses, the teacher once, then for each seed the
baseline student and one student per method, all on the same schedule, augmentation and seed
(only MODEL.DISTILL.METHODS differs), and reports AP, AP50, AP75, APs, APm, APl per method as
mean ± std over seeds with the AP range, against the goals (CSGR >= baseline + 2 AP, CSGR >= FGD;
with calibrated rows: CSGR >= FGD among them, none below the baseline).
Writes accuracy.md, accuracy.png (AP bar chart) and results.json under --output/<detector>.
--suite picks the data and models: "shapes" (ResNet-FPN from scratch, the default),
"shapes-pretrained" or "coral" (ImageNet-initialised MobileNetV2-FPN student, EfficientNet-Lite2-FPN
teacher; coral: real underwater photographs); --output defaults to output/<suite>.

    python tools/benchmark_accuracy.py --reuse                      # full schedule, seeds 1 2
    python tools/benchmark_accuracy.py --iters 100 --teacher-iters 300 --methods CSGR FGD --reuse
    python tools/benchmark_accuracy.py --detector retinanet --seeds 1 2 3
    python tools/benchmark_accuracy.py --suite coral --methods CSGR FGD --seeds 1 2 3 --jobs 2

--variant LABEL=METHOD KEY VALUE ... adds a student row: the method with its own opts (repeat it
for several); --calibrated adds "<METHOD>-calibrated" (MODEL.DISTILL.LOSS_SCALE.MODE calibrated)
for every method, and --calibrated only trains those instead of the published-weight rows:

    python tools/benchmark_accuracy.py --methods CSGR --seeds 1 2 3 --reuse \
        --variant CSGR-p3p6=CSGR MODEL.DISTILL.CSGR.REL_IN_FEATURES "['p3','p4','p5','p6']"
    python tools/benchmark_accuracy.py --methods CSGR FGD --calibrated --seeds 1 2 3 --reuse
    python tools/benchmark_accuracy.py --methods MSE PKD --calibrated only --seeds 1 2 3 --reuse

--reuse skips runs whose folder holds an evaluation and a stamp of the same merged config (and,
for distilled students, of the same teacher weights), and reports a recorded divergence of the
same config again without training (other failures train again); runs share the layout of
`make main` (tools/run_main.py), whose teacher and seed-1 students are reused. Trailing KEY VALUE
opts go to every run (after another option: --methods and --variant take every word that follows).
"""

import argparse
import os
import shlex
import sys

from csgr.benchmark.accuracy_report import aggregate, write_accuracy_report
from csgr.benchmark.accuracy_runs import SUITES, Variant, parse_variant, plan_runs
from csgr.benchmark.measure import load_average
from csgr.benchmark.provenance import provenance
from csgr.benchmark.runner import plan_progress, run_experiment
from csgr.config import load_config
from csgr.modeling.losses import method_names

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="shapes")
    parser.add_argument("--detector", choices=sorted(SUITES["shapes"]), default="frcnn")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="students' SEED")
    parser.add_argument("--iters", type=int, help="student iterations (default: the configs')")
    parser.add_argument("--teacher-iters", type=int, help="teacher iterations (default: config's)")
    parser.add_argument("--teacher-seed", type=int, default=1)
    parser.add_argument("--teacher-weights", default="", help="use this trained teacher instead")
    parser.add_argument(
        "--methods", nargs="+", default=method_names(), choices=method_names(), metavar="METHOD"
    )
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar="WORD",
        help="LABEL=METHOD KEY VALUE ...: the method with these opts as its own row",
    )
    parser.add_argument(
        "--calibrated",
        nargs="?",
        const="also",
        choices=["also", "only"],
        help="also (or, with 'only', instead) every method with MODEL.DISTILL.LOSS_SCALE.MODE "
        "calibrated (<METHOD>-calibrated)",
    )
    parser.add_argument("--output", help="runs and report go to <output>/<detector>")
    parser.add_argument(
        "--reuse", action="store_true", help="skip finished (or diverged) identical runs"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="student runs side by side (threads split evenly)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE opts for every run")
    args = parser.parse_args(argv)
    try:
        args.variants = [parse_variant(words) for words in args.variant]
    except ValueError as e:
        parser.error(str(e))
    if args.calibrated:
        calibrated = ("MODEL.DISTILL.LOSS_SCALE.MODE", "calibrated")
        args.variants += [Variant(f"{m}-calibrated", m, calibrated) for m in args.methods]
    # The methods trained at published weights (the baseline always trains).
    args.published = [] if args.calibrated == "only" else list(args.methods)
    if args.output is None:
        args.output = os.path.join(ROOT, "output", args.suite)
    return args


def main(argv=None):
    args = parse_args(argv)
    teacher, students, skipped = plan_runs(
        args.detector,
        args.published,
        args.seeds,
        args.output,
        ROOT,
        iters=args.iters,
        teacher_iters=args.teacher_iters,
        teacher_seed=args.teacher_seed,
        teacher_weights=args.teacher_weights,
        extra_opts=tuple(args.opts),
        variants=tuple(args.variants),
        suite=args.suite,
    )
    load_before = load_average()
    board = plan_progress(teacher, students, args.jobs)
    experiment = run_experiment(
        teacher,
        students,
        args.reuse,
        args.reuse,
        args.jobs,
        args.teacher_weights,
        log=board.write,
        progress=board,
    )
    spec = SUITES[args.suite][args.detector]
    title = f"{args.suite} {args.detector}: students {spec.baseline}, teacher {spec.teacher}"
    schedule = f"iterations: students {args.iters or 'config'}, teacher " + (
        "given" if args.teacher_weights else str(args.teacher_iters or "config")
    )
    command = "python tools/benchmark_accuracy.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    out_dir = os.path.join(os.path.abspath(args.output), args.detector)
    facts = provenance(
        ROOT,
        command,
        suite=args.suite,
        detector=args.detector,
        split=", ".join(load_config(spec.config_file(ROOT, spec.baseline)).DATASETS.TEST),
        teacher_seed=args.teacher_seed,
        schedule=schedule,
    )
    report = write_accuracy_report(
        out_dir, title, schedule, args.seeds, command, experiment, skipped, load_before, facts
    )
    print("\n" + report)
    if experiment.failed:
        sys.exit(f"{len(experiment.failed)} run(s) failed: {sorted(experiment.failed)}")
    return aggregate(experiment.results)


if __name__ == "__main__":
    main()
