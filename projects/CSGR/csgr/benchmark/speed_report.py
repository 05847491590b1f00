"""Tables and the markdown report of the distillation speed benchmark."""

import math
from typing import List

from tabulate import tabulate

from .distill_speed import csgr_goals

__all__ = ["SPEED_HEADERS", "speed_table", "speed_report"]

# (header, row key, format); "range" joins min_ms and max_ms.
_COLUMNS = [
    ("case", "case", "s"),
    ("median ms", "ms", ".1f"),
    ("min-max ms", "range", ""),
    ("img/s", "images_per_s", ".2f"),
    ("(c)/((a)+(b))", "ratio", ".3f"),
    ("loss f+b ms", "loss_ms", ".1f"),
    ("loss f+b / (a)", "loss_share", ".1%"),
    ("((c)-(a)-(b)) / (a)", "residual_share", "+.1%"),
    ("peak MiB", "peak_mib", ".0f"),
    ("loss peak MiB", "loss_peak_mib", ".0f"),
    ("state MiB", "state_mib", ".0f"),
    ("note", "note", "s"),
]
SPEED_HEADERS = [c[0] for c in _COLUMNS]

EXPLANATION = """\
- (a): the student alone (plain detector), forward + backward + SGD step; (b): the teacher's
  backbone+FPN forward under no_grad with its own preprocessing (the Distiller's code path);
  (c): the Distiller's training step with that single method (student, teacher, losses, step).
  (a) and (c) are the trainer's own step (non-finite-loss guard, metrics, SOLVER.AMP autocast).
- loss f+b: the method's loss modules alone: their forward plus a backward of the distillation
  terms only, down to leaf copies of the student features/head outputs of a real step (so it
  includes the losses' own parameters, e.g. adapters and criss-cross attention, but not the
  student network, whose backward a real step shares with the detection losses). Response
  methods' teacher heads run in (c) but not here.
- ((c)-(a)-(b)) / (a): the overhead by subtraction, which also holds the teacher heads of
  response methods and noise; it can be negative by noise.
- Timing: median over rounds; every round runs every case once, in turn (interleaved), after
  warm-up rounds (all models stay in memory). The optimizer's learning rate is 0 unless --lr
  is given, so every round does the same work on the same weights (an SGD step costs the same
  at any rate). On a CPU shared with other jobs, --threads 1 keeps rounds steady.
- peak MiB: peak of the memory allocated during one step above what was allocated before it
  (activations, gradients, temporaries), in a separate run; on CUDA from
  torch.cuda.max_memory_allocated, on the CPU from torch.profiler's allocation events (tensor
  storage of PyTorch's CPU allocator only, not the process's resident memory). state MiB:
  weights, buffers and optimizer state kept between steps (the teacher's weights included)."""


def _cell(row: dict, key: str, fmt: str) -> str:
    if key == "range":
        if "min_ms" not in row:
            return ""
        return f"{row['min_ms']:.1f}-{row['max_ms']:.1f}"
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return format(value, fmt)


def speed_table(rows: List[dict], tablefmt: str = "github") -> str:
    """One precision's rows as a table with :data:`SPEED_HEADERS`."""
    body = [[_cell(r, key, fmt) for _, key, fmt in _COLUMNS] for r in rows]
    return tabulate(body, headers=SPEED_HEADERS, tablefmt=tablefmt, disable_numparse=True)


def speed_report(result: dict, command: str = "") -> str:
    """The markdown report: what ran, on what, one table per precision, and the CSGR goals."""
    meta, s = result["meta"], result["settings"]
    lines = []
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"- config: `{s['config_file']}` (student {meta['student']}, teacher config "
        f"`{meta['teacher_config']}`, teacher weights: {meta['teacher_weights']})",
        f"- input: batch {s['batch']} of {s['height']}x{s['width']} synthetic images",
        f"- device: {meta['device']}, {meta['threads']} threads; {s['repeats']} timed rounds "
        f"after {s['warmup']} warm-up",
        f"- before: {meta['load_before']}; after: {meta['load_after']}",
    ]
    for precision, rows in result["results"].items():
        name = f"amp ({meta['amp_precision']})" if precision == "amp" else precision
        lines += ["", f"**{name}**", "", speed_table(rows)]
        goals = csgr_goals(rows)
        if goals:
            lines.append("")
            for name, (value, target, met) in goals.items():
                verdict = "met" if met else "NOT met"
                lines.append(f"- goal {name} <= {target:g}: {value:.3f} ({verdict})")
    lines += ["", EXPLANATION]
    return "\n".join(lines) + "\n"
