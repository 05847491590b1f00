#!/usr/bin/env python
"""Accuracy of every distillation method side by side, on a built-in suite or on your own data.

Trains, through tools/train_net.py subprocesses, the teacher once, then for each seed the
baseline student and one student per method, all on the same schedule, augmentation and seed
(only MODEL.DISTILL differs), and reports AP, AP50, AP75, APs, APm, APl per method as mean ± std
over seeds with the AP range, the goals that apply (CSGR >= baseline + 2 AP, CSGR >= FGD; with
calibrated rows: CSGR >= FGD among them, none below the baseline) and a recommendation: the
method to use (best mean of the test set's metric: AP, or AP50 for PASCAL VOC), its gain over the
baseline and whether the seeds resolve it, the methods that diverged and the loss term that grew,
and a teacher that scores no better than the baseline student. Writes accuracy.md (a
README-ready table), accuracy.png and results.json to the study's folder.

Your own data: your teacher and student configs (plain Detectron2 configs; the distillation
configs are derived from the student's), your datasets registered by --register; runs and report
go to --output (default output/compare_<student config name>). Methods default to every one that
applies to the student's detector.

    python tools/benchmark_accuracy.py --register my_datasets.py \
        --teacher-config configs/MyData/faster_rcnn_R_101_FPN.yaml \
        --student-config configs/MyData/faster_rcnn_R_50_FPN.yaml --seeds 1 2 3 --reuse
    python tools/benchmark_accuracy.py --register my_datasets.py --teacher-config T.yaml \
        --teacher-weights output/T/model_final.pth --student-config S.yaml --num-gpus 8 --reuse
    python tools/benchmark_accuracy.py ... --screen 0.25 --keep 3   # screen first, see below

Built-in suites (--suite, --detector): "shapes" (ResNet-FPN from scratch, the default),
"shapes-pretrained" or "coral" (ImageNet-initialised MobileNetV2-FPN student,
EfficientNet-Lite2-FPN teacher; coral: real underwater photographs); --output defaults to
output/<suite>, the report goes to <output>/<detector>.

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

--screen FRACTION trains the baseline and every method first on FRACTION of the students'
schedule with the first seed only (in <study>/screen, its own report there), and then only the
--keep best (by the metric; a diverged one is out) on every seed and the full schedule;
--screen-only stops after the screen (its report, with a recommendation from one short seed).

Choose on one split, report on another: give every run two test sets and report each in turn
(the second command trains nothing; each report goes to <study folder>/<DATASET>/; the opts
reach the teacher too, so a teacher trained with other test sets trains again unless
--teacher-weights names it):

    python tools/benchmark_accuracy.py --suite coral --seeds 1 2 3 --reuse --report-on coral_choice \
        DATASETS.TEST "('coral_choice','coral_test')"
    python tools/benchmark_accuracy.py --suite coral --seeds 1 2 3 --reuse --report-on coral_test \
        DATASETS.TEST "('coral_choice','coral_test')"

A study already trained with one test set is reported on another, without training, by
evaluating every run's final weights on it (kept in <run>/evaluate/<DATASET>/, reused until the
run's weights change; the report goes to <study folder>/<DATASET>/):

    python tools/benchmark_accuracy.py --suite coral --seeds 1 2 3 --reuse --evaluate-on coral_test

--reuse skips runs whose folder holds an evaluation and a stamp of the same merged config (and,
for distilled students, of the same teacher weights; for your data, of the same --register
files), and reports a recorded divergence of the same config again without training (other
failures train again): an interrupted study continues where it stopped. Suite runs share the
layout of `make main` (tools/run_main.py), whose teacher and seed-1 students are reused.
--num-gpus N trains each run on N GPUs (one run after the other); --jobs J trains J student runs
side by side (threads split evenly). Trailing KEY VALUE opts go to every run (after another
option: --methods and --variant take every word that follows). A diverged run is a result (in
the table and the recommendation); the exit status is 1 when a run failed otherwise.
"""

import argparse
import os
import shlex
import sys

from csgr.benchmark.accuracy_report import aggregate
from csgr.benchmark.accuracy_runs import SUITES, Variant, parse_variant
from csgr.benchmark.measure import load_average
from csgr.benchmark.provenance import provenance
from csgr.benchmark.study import StudyPlan, report_study, run_study
from csgr.benchmark.study_specs import SuiteStudy, UserStudy, applicable_methods
from csgr.engine.user_modules import add_register_argument, import_user_modules
from csgr.modeling.losses import method_names
from detectron2.data import DatasetCatalog  # after csgr: it quiets dependency warnings

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("--suite", choices=sorted(SUITES), help="a built-in suite (default shapes)")
    parser.add_argument("--detector", choices=sorted(SUITES["shapes"]), help="default frcnn")
    parser.add_argument("--teacher-config", help="your teacher's config (with --student-config)")
    parser.add_argument("--student-config", help="your student's config: your data, your detector")
    add_register_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="students' SEED")
    parser.add_argument("--iters", type=int, help="student iterations (default: the configs')")
    parser.add_argument("--teacher-iters", type=int, help="teacher iterations (default: config's)")
    parser.add_argument("--teacher-seed", type=int, default=1)
    parser.add_argument(
        "--teacher-weights", default="", help="use this trained teacher instead (from this folder)"
    )
    parser.add_argument(
        "--methods",
        nargs="*",
        choices=method_names(),
        metavar="METHOD",
        help="default: every method that applies to the student's detector; none (the bare "
        "option): only the baseline and the --variant rows",
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
    parser.add_argument(
        "--screen",
        type=float,
        metavar="FRACTION",
        help="train every method on FRACTION of the schedule and the first seed first; only "
        "the --keep best go on to every seed and the full schedule",
    )
    parser.add_argument("--keep", type=int, default=3, help="methods kept by --screen")
    parser.add_argument(
        "--screen-only", action="store_true", help="stop after the screen (its report, ranked)"
    )
    parser.add_argument("--output", help="the study's folder (see above)")
    parser.add_argument(
        "--report-on",
        metavar="DATASET",
        help="with several DATASETS.TEST, the one the report ranks on (default: the first); "
        "its report goes to <study folder>/<DATASET>/",
    )
    parser.add_argument(
        "--evaluate-on",
        metavar="DATASET",
        help="report on this test set: every finished run is evaluated on it after training "
        "(see above); its report goes to <study folder>/<DATASET>/",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="skip finished (or diverged) identical runs"
    )
    parser.add_argument("--num-gpus", type=int, default=1, help="GPUs of each run")
    parser.add_argument(
        "--jobs", type=int, default=1, help="student runs side by side (threads split evenly)"
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE opts for every run")
    args = parser.parse_args(argv)
    own = args.student_config or args.teacher_config
    if own and (args.suite or args.detector):
        parser.error("--suite/--detector or --teacher-config/--student-config, not both")
    if own and not (args.student_config and args.teacher_config):
        parser.error("your own data needs both --teacher-config and --student-config")
    if args.screen is not None and not 0 < args.screen < 1:
        parser.error(f"--screen takes a fraction of the schedule in (0, 1), got {args.screen}")
    if args.screen_only and args.screen is None:
        parser.error("--screen-only needs --screen FRACTION")
    if args.report_on and args.evaluate_on:
        parser.error("--report-on (one of DATASETS.TEST) or --evaluate-on (any test set), not both")
    if own:
        args.spec = UserStudy(args.teacher_config, args.student_config, tuple(args.register))
        stem = os.path.splitext(os.path.basename(args.student_config))[0]
        args.output = os.path.abspath(args.output or os.path.join("output", "compare_" + stem))
        args.out_dir = args.output
    else:
        args.suite, args.detector = args.suite or "shapes", args.detector or "frcnn"
        args.spec = SuiteStudy(SUITES[args.suite][args.detector], ROOT)
        args.output = args.output or os.path.join(ROOT, "output", args.suite)
        args.out_dir = os.path.join(os.path.abspath(args.output), args.detector)
    args.teacher_weights = teacher_weights_for_runs(args.teacher_weights, args.spec.cwd)
    if args.methods is None:
        args.methods = applicable_methods(args.spec.arch)
    try:
        args.variants = [parse_variant(words) for words in args.variant]
    except ValueError as e:
        parser.error(str(e))
    if args.calibrated:
        calibrated = ("MODEL.DISTILL.LOSS_SCALE.MODE", "calibrated")
        args.variants += [Variant(f"{m}-calibrated", m, calibrated) for m in args.methods]
    # The methods trained at published weights (the baseline always trains).
    args.published = [] if args.calibrated == "only" else list(args.methods)
    return args


def teacher_weights_for_runs(path: str, run_cwd: str) -> str:
    """``--teacher-weights`` as the runs, started in ``run_cwd`` (the repository root for a
    suite), must name it: unchanged where it names the same file from there as from here (a
    study's identity keeps the path as given), else absolute, so that the runs load the file
    the user named and not another one of the same relative path under ``run_cwd``."""
    if not path or os.path.isabs(path):
        return path
    if os.path.realpath(os.path.join(run_cwd, path)) == os.path.realpath(path):
        return path
    return os.path.abspath(path)


def main(argv=None):
    args = parse_args(argv)
    import_user_modules(args.register)  # the test set's evaluator decides the metric
    if args.evaluate_on and args.evaluate_on not in DatasetCatalog.list():
        sys.exit(
            f"error: --evaluate-on {args.evaluate_on!r} is not a registered dataset (register "
            "yours with --register my_datasets.py)"
        )
    plan = StudyPlan(
        args.published,
        args.seeds,
        args.out_dir,
        ROOT,
        iters=args.iters,
        teacher_iters=args.teacher_iters,
        teacher_seed=args.teacher_seed,
        teacher_weights=args.teacher_weights,
        extra_opts=tuple(args.opts),
        variants=tuple(args.variants),
        num_gpus=args.num_gpus,
        screen=args.screen,
        keep=args.keep,
        screen_only=args.screen_only,
        report_on=args.report_on,
        evaluate_on=args.evaluate_on,
    )
    load_before = load_average()
    try:
        outcome = run_study(args.spec, plan, args.reuse, args.jobs)
    except ValueError as e:  # a study that cannot be planned (a label twice, --report-on)
        sys.exit(f"error: {e}")
    student, teacher = args.spec.names()
    schedule = f"iterations: students {args.iters or 'config'}, teacher " + (
        "given" if args.teacher_weights else str(args.teacher_iters or "config")
    )
    command = "python tools/benchmark_accuracy.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    if args.suite:
        title = f"{args.suite} {args.detector}: students {student}, teacher {teacher}"
        facts = dict(suite=args.suite, detector=args.detector)
    else:
        title = f"{outcome.split} {args.spec.arch}: students {student}, teacher {teacher}"
        facts = dict(student_config=args.student_config, teacher_config=args.teacher_config)
        facts.update(register=list(args.register), detector=args.spec.arch)
    facts = provenance(
        ROOT,
        command,
        **facts,
        split=outcome.split,
        teacher_seed=args.teacher_seed,
        schedule=schedule,
    )
    on = args.report_on or args.evaluate_on
    out_dir = os.path.join(args.out_dir, on) if on else args.out_dir
    report = report_study(
        outcome, out_dir, title, schedule, args.seeds, command, load_before, facts
    )
    print("\n" + report)
    result = outcome.result or outcome.stage1
    crashed = sorted(run for run, why in result.failed.items() if "diverged" not in why)
    if crashed:
        sys.exit(f"{len(crashed)} run(s) failed: {crashed}")
    return aggregate(result.results)


if __name__ == "__main__":
    main()
