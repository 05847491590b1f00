"""Wall time and peak memory of a callable, on the CPU and on CUDA.

Timing is interleaved: every round runs each case once, in turn, so that a load spike from other
processes on a shared machine lands on all cases alike instead of on whichever ran at that moment.
"""

import os
import statistics
import time
from typing import Callable, Dict, List

import torch

__all__ = ["MIB", "interleaved_times_ms", "peak_bytes", "cpu_peak_bytes", "load_average", "median"]

MIB = 2.0**20


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times_ms(
    cases: Dict[str, Callable[[], object]], device: torch.device, repeats: int, warmup: int = 1
) -> Dict[str, List[float]]:
    """Wall times of each case, in milliseconds, measured round by round.

    Args:
        cases: callables by name; each runs one unit of work (e.g. one training step).
        device: CUDA is synchronised before and after each call.
        repeats: timed rounds.
        warmup: untimed rounds first (allocator warm-up, lazy initialisation, cuDNN choice).

    Returns:
        dict: the ``repeats`` times of each case, in round order.
    """
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def cpu_peak_bytes(fn: Callable[[], object]) -> float:
    """Peak bytes held by PyTorch's CPU allocator while ``fn()`` runs, above the level at its
    start, from the allocation events of ``torch.profiler`` (``profile_memory=True``).

    This counts tensor storage only (not the Python heap, nor memory the allocator keeps cached
    or the OS counts as resident).
    """
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events, stack = [], list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.tag == _EventType.Allocation and node.extra_fields.device.type == "cpu":
            events.append((node.start_time_ns, node.extra_fields))
    if not events:
        return 0.0
    events.sort(key=lambda e: e[0])
    # The running total counts every live block; start from its level before the first event.
    first = events[0][1]
    base = first.total_allocated - first.alloc_size
    return float(max(e.total_allocated for _, e in events) - base)


def peak_bytes(fn: Callable[[], object], device: torch.device) -> float:
    """Peak bytes allocated while ``fn()`` runs, above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated``; CPU: :func:`cpu_peak_bytes`; NaN elsewhere.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    if device.type == "cpu":
        return cpu_peak_bytes(fn)
    return float("nan")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count, as text (for reports)."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load average unavailable"
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} on {os.cpu_count()} CPUs"


def median(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")
