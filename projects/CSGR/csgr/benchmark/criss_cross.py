"""Speed of the criss-cross attention against the machine's GEMM rate, its previous version and a
dense (HW x HW) masked attention (``tools/benchmark_criss_cross.py``).

FLOPs are counted analytically (:func:`criss_cross_flops`): 2 per multiply-add of the matrix
products only (the 1x1 projections to query, key and value, the row and column energies, the
aggregation), with the H + W energies of a pixel counted as computed (its centre twice); the
softmax, mask, bias and residual (O(HW(H+W)) and O(CHW) element-wise work, about 1% of the
count) are left out. The backward counts twice the forward: every product has two operands whose
gradients are needed (the input gets one too, as in a training step).

The machine's GEMM rate is a large square matmul in the same dtype, timed in the same
interleaved rounds as the layer (same threads, same load).
"""

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch

from ..layers import CrissCrossAttention, dense_criss_cross_reference
from .criss_cross_previous import previous_criss_cross
from .measure import MIB, interleaved_times_ms, median, peak_bytes

__all__ = [
    "LEVEL_SIZES",
    "DTYPES",
    "CrissCrossSettings",
    "criss_cross_flops",
    "gemm_flops",
    "benchmark_level",
    "benchmark_pair",
]

# (H, W) of the FPN levels of an 800x1333 input (strides 4..128).
LEVEL_SIZES = {
    "p2": (200, 334),
    "p3": (100, 167),
    "p4": (50, 84),
    "p5": (25, 42),
    "p6": (13, 21),
    "p7": (7, 11),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class CrissCrossSettings:
    """What the benchmark runs (the options of ``tools/benchmark_criss_cross.py``)."""

    levels: List[str] = field(default_factory=lambda: ["p2", "p3", "p4", "p5", "p6", "p7"])
    device: str = "cpu"
    dtype: str = "float32"  # float32, or the autocast dtype (inputs and weights stay float32)
    channels: int = 256
    batch: int = 1
    reduction: int = 8
    recurrence: int = 1
    repeats: int = 5
    gemm_size: int = 2048
    skip_dense_above: int = 10000  # H*W above which the dense reference is not run
    memory: bool = True
    scale: float = 1.0  # level sizes are multiplied by this (tests run tiny levels)


def criss_cross_flops(n, c, h, w, reduction=8, recurrence=1) -> Tuple[float, float]:
    """Analytic (forward, backward) FLOPs of one :class:`CrissCrossAttention` (see module doc).

    Per pass and image: projections ``2*HW*C*(2C'+C)``, energies ``2*HW*(H+W)*C'``, aggregation
    ``2*HW*(H+W)*C``, with ``C' = max(1, C // reduction)``; backward = 2 x forward.
    """
    inner = max(1, c // reduction)
    hw = h * w
    forward = 2 * hw * c * (2 * inner + c) + 2 * hw * (h + w) * (inner + c)
    forward = float(forward * n * recurrence)
    return forward, 2.0 * forward


def gemm_flops(size: int) -> float:
    """FLOPs of one (size x size) @ (size x size) matmul."""
    return 2.0 * size**3


def _block(settings: CrissCrossSettings, device) -> CrissCrossAttention:
    torch.manual_seed(0)
    block = CrissCrossAttention(settings.channels, settings.reduction, settings.recurrence)
    with torch.no_grad():
        block.gamma.fill_(0.5)  # with gamma = 0 every version would return its input
    return block.to(device)


def _step(forward, block, x, grad_out, dtype):
    """One forward + backward of ``forward(x)``; returns the output and the input gradient."""

    def step():
        block.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            y = forward(x)
        y.backward(grad_out)
        return y.detach(), x.grad

    return step


def _max_diff(step_a, step_b) -> Tuple[float, float]:
    (y_a, g_a), (y_b, g_b) = step_a(), step_b()
    return (
        (y_a.float() - y_b.float()).abs().max().item(),
        (g_a.float() - g_b.float()).abs().max().item(),
    )


def level_size(name: str, scale: float) -> Tuple[int, int]:
    h, w = LEVEL_SIZES[name]
    return max(1, round(h * scale)), max(1, round(w * scale))


def benchmark_level(name: str, settings: CrissCrossSettings) -> Dict[str, object]:
    """Forward + backward of one level: roofline figures, previous version, dense reference.

    Returns:
        dict with level, H x W, GFLOP fwd/bwd, cc ms, GFLOP/s, GEMM GFLOP/s, fraction of GEMM,
        previous ms, speed-up, peak MiB of both, their max output/input-gradient differences,
        and, on levels of at most ``skip_dense_above`` positions, the dense reference's figures.
    """
    device, dtype = torch.device(settings.device), DTYPES[settings.dtype]
    h, w = level_size(name, settings.scale)
    n, c = settings.batch, settings.channels
    block = _block(settings, device)
    x = torch.randn(n, c, h, w, device=device, requires_grad=True)
    grad_out = torch.randn(n, c, h, w, device=device)
    current = _step(block, block, x, grad_out, dtype)
    previous = _step(lambda t: previous_criss_cross(block, t), block, x, grad_out, dtype)
    size = settings.gemm_size
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    cases = {"cc": current, "previous": previous, "gemm": lambda: a @ b}
    dense = None
    if h * w <= settings.skip_dense_above:
        dense = _step(lambda t: dense_criss_cross_reference(block, t), block, x, grad_out, dtype)
        cases["dense"] = dense
    times = interleaved_times_ms(cases, device, settings.repeats)
    ms = {k: median(v) for k, v in times.items()}
    fwd, bwd = criss_cross_flops(n, c, h, w, settings.reduction, settings.recurrence)
    achieved = (fwd + bwd) / ms["cc"] / 1e6
    gemm = gemm_flops(size) / ms["gemm"] / 1e6
    row = {"level": name, "H x W": f"{h} x {w}", "GFLOP fwd": fwd / 1e9, "GFLOP bwd": bwd / 1e9}
    row.update({"cc ms": ms["cc"], "GFLOP/s": achieved, "GEMM GFLOP/s": gemm})
    row.update({"of GEMM": achieved / gemm, "previous ms": ms["previous"]})
    row["speed-up"] = ms["previous"] / ms["cc"]
    row["max |dy| prev"], row["max |dgrad| prev"] = _max_diff(current, previous)
    if settings.memory:
        row["cc peak MiB"] = peak_bytes(current, device) / MIB
        row["previous peak MiB"] = peak_bytes(previous, device) / MIB
    if dense is not None:
        row["dense ms"] = ms["dense"]
        row["dense / cc ms"] = ms["dense"] / ms["cc"]
        if settings.memory:
            row["dense peak MiB"] = peak_bytes(dense, device) / MIB
        row["max |dy| dense"], row["max |dgrad| dense"] = _max_diff(current, dense)
    return row


def benchmark_pair(name: str, settings: CrissCrossSettings) -> Dict[str, object]:
    """CSGR's relation term of one level: teacher and student maps (``batch`` images each)
    through the shared block in two calls, against one call on both concatenated.

    Times the forward and the backward of ``||CCA(F_t) - CCA(F_s)||^2`` (the student map and
    the block's parameters get gradients, the teacher map none).
    """
    device, dtype = torch.device(settings.device), DTYPES[settings.dtype]
    h, w = level_size(name, settings.scale)
    block = _block(settings, device)
    shape = (settings.batch, settings.channels, h, w)
    teacher = torch.randn(*shape, device=device)
    student = torch.randn(*shape, device=device, requires_grad=True)

    def make(batched: bool):
        def step():
            block.zero_grad(set_to_none=True)
            student.grad = None
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                if batched:
                    out_t, out_s = block(torch.cat([teacher, student])).chunk(2)
                else:
                    out_t, out_s = block(teacher), block(student)
                loss = (out_t.float() - out_s.float()).pow(2).sum()
            loss.backward()

        return step

    times = interleaved_times_ms({"two": make(False), "one": make(True)}, device, settings.repeats)
    two, one = median(times["two"]), median(times["one"])
    return {
        "level": name,
        "H x W": f"{h} x {w}",
        "two calls ms": two,
        "one call ms": one,
        "two / one": two / one,
    }
