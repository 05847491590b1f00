#!/usr/bin/env python
"""Check the CUDA paths on a GPU machine in one run of about 8 minutes, and report them.

From a fresh checkout, `bash tools/gpu_check.sh` sets up .venv first (tools/bootstrap.sh), then
runs this script. The parts run in order, each in its own process, each stopped at its share
of the budget (time a part leaves unused goes to the parts after it); a part that fails or runs
out of time is reported as such, with what it finished. The markdown report is printed at the
end; the results (with device, driver, torch, CUDA and cuDNN versions, commit, date, command)
go to a JSON file after every part (docs/results/gpu_check.json for a full CUDA run, rendered
into BENCHMARKS.md). Exit status 0 when every part is done or skipped, 1 otherwise.

    bash tools/gpu_check.sh                               # a GPU machine, fresh checkout
    python tools/gpu_check.py --parts speed --budget-s 300
    python tools/gpu_check.py --device cpu --quick        # dry run: same code, tiny sizes, ~1 min
"""

import argparse
import shlex
import sys
import textwrap

from csgr.benchmark.gpu_check import PARTS, RESULTS_FILE, GpuCheckSettings, run_gpu_check
from csgr.benchmark.gpu_check_env import driver_version
from csgr.benchmark.gpu_check_report import render_gpu_section

DEFAULT = GpuCheckSettings()


def _parts_text() -> str:
    lines = [f"parts (in order; default budget {DEFAULT.budget_s:.0f} s):"]
    for name, part in PARTS.items():
        head = f"  {name:<12} {part.share:.0%} (~{part.share * DEFAULT.budget_s:.0f} s) "
        lines += textwrap.wrap(part.checks, 96, initial_indent=head, subsequent_indent=" " * 15)
    return "\n".join(lines)


def parse_args(argv=None):
    doc = __doc__.split("\n\n")
    parser = argparse.ArgumentParser(
        description="\n\n".join(doc[:2]),
        epilog=_parts_text() + "\n\nexamples:\n" + doc[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device", default="cuda", choices=["cuda", "cpu"], help="cpu: the dry run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (the dry run; on a GPU a smoke test)"
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT.budget_s,
        help="wall-clock budget of all parts, seconds (default %(default).0f)",
    )
    parser.add_argument(
        "--parts", nargs="+", choices=list(PARTS), default=list(PARTS), help="default: all"
    )
    parser.add_argument(
        "--output",
        default="",
        help=f"results JSON (default: {RESULTS_FILE} for a full CUDA run, else "
        "<work-dir>/gpu_check.json)",
    )
    parser.add_argument(
        "--work-dir", default=DEFAULT.work_dir, help="part files and logs (default %(default)s)"
    )
    # set by tools/gpu_check.sh: the command to record, and how long its setup took
    parser.add_argument("--via", default="python tools/gpu_check.py", help=argparse.SUPPRESS)
    parser.add_argument("--setup-s", type=float, help=argparse.SUPPRESS)
    return parser, parser.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, args = parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            parser.error(
                f"PyTorch {torch.__version__} (built with CUDA {torch.version.cuda}) sees no "
                f"CUDA device; NVIDIA driver: {driver_version() or 'none found'} (a CUDA build "
                "needs a driver at least as new as its CUDA version). The dry run is --device "
                "cpu --quick"
            )
    user_args = _without_hidden(argv)
    fields = ("device", "quick", "budget_s", "parts", "output", "work_dir", "setup_s")
    settings = GpuCheckSettings(
        **{name: getattr(args, name) for name in fields},
        command=" ".join([args.via] + ([shlex.join(user_args)] if user_args else [])),
    )
    results = run_gpu_check(
        settings, progress=lambda line: print(line, file=sys.stderr, flush=True)
    )
    print(render_gpu_section(results), end="")
    print(f"[gpu_check] results: {settings.output_path()}", file=sys.stderr)
    return results


def _without_hidden(argv):
    """``argv`` without the options tools/gpu_check.sh adds (the user's own command)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--via", "--setup-s"):
            skip = True
        elif not arg.startswith(("--via=", "--setup-s=")):
            out.append(arg)
    return out


def exit_status(results: dict) -> int:
    return 0 if all(p["status"] in ("done", "skipped") for p in results["parts"].values()) else 1


if __name__ == "__main__":
    sys.exit(exit_status(main()))
