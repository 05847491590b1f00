"""The GPU check's results as markdown: the GPU section of BENCHMARKS.md.

:func:`render_gpu_section` is a pure function of the results dict that
:func:`.gpu_check.run_gpu_check` returns and writes (``docs/results/gpu_check.json``); given
``None`` (no results file yet) it says that nothing is measured and names the command that
measures it. The report printed at the end of a check is the same text.
"""

import math
from collections import Counter
from typing import List, Optional

from tabulate import tabulate

__all__ = ["COMMAND", "render_gpu_section"]

COMMAND = "bash tools/gpu_check.sh"

_CC_COLUMNS = [  # (header, key of the criss-cross row, format)
    ("cc ms", "cc ms", ".4g"),
    ("cc peak MiB", "cc peak MiB", ".4g"),
    ("dense ms", "dense ms", ".4g"),
    ("dense peak MiB", "dense peak MiB", ".4g"),
    ("dense / cc ms", "dense / cc ms", ".3g"),
    ("max abs dy vs dense", "max |dy| dense", ".2e"),
    ("max abs dgrad vs dense", "max |dgrad| dense", ".2e"),
    ("GFLOP/s", "GFLOP/s", ".4g"),
    ("of GEMM", "of GEMM", ".2f"),
    ("previous ms", "previous ms", ".4g"),
]


def _not_measured() -> str:
    return (
        "**Not measured on a GPU yet.** On a Linux machine with a CUDA GPU and access to the "
        f"package registries, from a fresh checkout, `{COMMAND}` sets up `.venv` (the README's "
        "setup), then checks the CUDA paths in about 8 minutes (`--help` lists the parts and "
        "the options) and writes `docs/results/gpu_check.json`, from which this section is "
        "rendered.\n"
    )


def _cudnn(version) -> str:
    if not version:
        return "none"
    return f"{version // 10000}.{version % 10000 // 100}.{version % 100}"


def _on(flag) -> str:
    return {True: "on", False: "off"}.get(flag, "unknown")


def _provenance(results: dict) -> str:
    p, s = results["provenance"], results["settings"]
    cpus = f"{p['cpu']}, {p['cpu_count']} CPUs"
    if p["device"] == "cpu":
        where = f"**Dry run on the CPU** (tiny sizes, not a measurement): {cpus}"
    else:
        where = f"Measured on **{p['device']}** ({p['gpu_count']} GPU"
        where += f"{'s' if p['gpu_count'] != 1 else ''}, {p.get('gpu_memory_gib')} GiB each, "
        where += f"compute capability {p.get('capability')}; {cpus}; TF32 in fp32 convolutions "
        where += f"{_on(p.get('tf32_cudnn'))}, in matmuls {_on(p.get('tf32_matmul'))})"
    commit = p["commit"] or "unknown"
    text = f"{where}; NVIDIA driver {p['driver'] or 'none'}; PyTorch {p['torch']} (CUDA "
    text += f"{p['cuda'] or 'none'}, cuDNN {_cudnn(p['cudnn'])}), Detectron2 {p['detectron2']}, "
    text += f"Python {p['python']}; commit `{commit[:7]}{commit[40:]}`, {p['date']}. "
    text += f"{results.get('wall_s', 0):.0f} s of a {s['budget_s']:.0f} s budget"
    if s.get("setup_s") is not None:
        text += f", after {s['setup_s']:.0f} s of setup"
    return text + "."


def _counts(units: List[dict]) -> str:
    counts = Counter(u["status"] for u in units)
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "nothing finished"


def _summary(part: dict) -> str:
    if part["status"] == "skipped":
        return part.get("reason", "")
    text = _counts(part["units"])
    if part.get("error"):
        text += "; " + part["error"].splitlines()[0]
    return text


def _table(headers: List[str], rows: List[List[str]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _cell(value, fmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return format(value, fmt)


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _problems(units: List[dict]) -> List[str]:
    """A line per unit that did not finish normally, its error in a code block."""
    lines = []
    for u in units:
        if u["status"] in ("skipped", "not run", "timeout"):
            lines.append(
                f"- {u['name']}: {u['status']}" + (f": {u['note']}" if "note" in u else "")
            )
        elif u["status"] in ("error", "failed") and ("error" in u or "log_tail" in u):
            lines += [f"- {u['name']}: {u['status']}", "", "```"]
            lines += [(u.get("error") or u["log_tail"]).rstrip(), "```", ""]
    return lines


def _tests(part: dict) -> List[str]:
    rows = [
        [f"`{u['name']}`", u["status"], _cell(u.get("wall_s"), ".1f"), _one_line(u.get("note", ""))]
        for u in part["units"]
    ]
    lines = [f"`{part.get('command', 'pytest -m cuda tests')}`", ""]
    lines += [_table(["test", "result", "s", "note"], rows)] if rows else []
    failed = [u for u in part["units"] if u["status"] in ("failed", "error")]
    return lines + [""] + _problems(failed)


def _speed(part: dict) -> List[str]:
    from .speed_report import speed_table  # imports torch: only where a speed part is shown

    plan = part["plan"]
    lines = [
        f"{plan['height']}x{plan['width']}, batch {plan['batch']}, random weights, median of "
        f"{plan['repeats']} rounds after {plan['warmup']} warm-up (`tools/benchmark_distill.py`"
        "'s cases; BENCHMARKS section 1 says how each is measured)."
    ]
    for u in part["units"]:
        if u["status"] != "done":
            continue
        title = f"**{u['name']}** (`{u['config']}`)"
        if "csgr_ratio" in u:
            title += f": CSGR step / (student step + teacher forward) = {u['csgr_ratio']:.3f}"
        lines += ["", title, "", speed_table(u["rows"])]
    return lines + [""] + _problems(part["units"])


def _criss_cross(part: dict) -> List[str]:
    plan = part["plan"]
    lines = [
        f"One image, C={plan['channels']}, level sizes of 800x1333 x {plan['scale']:g}, forward + "
        f"backward, median of {plan['repeats']} rounds (`tools/benchmark_criss_cross.py`'s "
        "measurement); float16 is autocast (inputs and weights float32).",
        "",
    ]
    headers = ["level", "H x W", "dtype"] + [c[0] for c in _CC_COLUMNS] + ["note"]
    rows = []
    for u in part["units"]:
        if "row" not in u:
            continue
        row = u["row"]
        cells = [u["level"], row["H x W"], u["dtype"]]
        cells += [_cell(row.get(key), fmt) for _, key, fmt in _CC_COLUMNS]
        rows.append(cells + [u.get("dense_note", "")])
    if rows:
        lines.append(_table(headers, rows))
    return lines + [""] + _problems(part["units"])


def _nccl(part: dict) -> List[str]:
    lines = []
    for u in part["units"]:
        lines += ["```", f"python {u.get('command', '')}", "```", ""]
        losses = ", ".join(f"{k} {v:.4g}" for k, v in sorted(u.get("losses", {}).items()))
        lines.append(
            f"- {u['name']}: {u['status']}; exit status {u.get('exit_status')}, "
            f"{u.get('iterations')} iterations, {_cell(u.get('s_per_iter'), '.3f') or 'n/a'} s/it; "
            f"last iteration: {losses or 'no metrics'}"
        )
    return lines + [""] + _problems([u for u in part["units"] if u["status"] != "done"])


_RENDERERS = {"tests": _tests, "speed": _speed, "criss_cross": _criss_cross, "nccl": _nccl}


def render_gpu_section(results: Optional[dict]) -> str:
    """The GPU section's markdown.

    Args:
        results: what :func:`.gpu_check.run_gpu_check` returns (the JSON of the results file),
            or None when there is none.

    Returns:
        The provenance, the command, a table of the parts (status, time, counts), then each
        part's tables; or, for None, the "not measured yet" text naming :data:`COMMAND`.
    """
    if results is None:
        return _not_measured()
    lines = [_provenance(results), "", "```", results["provenance"]["command"], "```", ""]
    summary = [
        [
            part["title"],
            part["status"],
            f"{part.get('wall_s', 0):.0f} / {part.get('limit_s', 0):.0f}",
            _one_line(_summary(part)),
        ]
        for part in results["parts"].values()
    ]
    lines.append(_table(["part", "status", "s / limit", "units"], summary))
    for name, part in results["parts"].items():
        lines += ["", f"**{part['title']}**: {part['status']}", ""]
        if part["status"] == "skipped":
            lines.append(part.get("reason", ""))
            continue
        lines += _RENDERERS[name](part)
        if part["status"] in ("error", "timeout") and (part.get("error") or part.get("log_tail")):
            lines += ["```", (part.get("error") or "") + "\n" + part.get("log_tail", ""), "```"]
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"
