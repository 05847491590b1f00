#!/usr/bin/env python
"""Time and memory of criss-cross attention against a dense (HW x HW) masked attention.

For each FPN level of an 800x1333 input, runs forward + backward of
:class:`csgr.layers.CrissCrossAttention` and of :func:`csgr.layers.dense_criss_cross_reference`
(the same module, the same weights) on a random (batch, C, H, W) input and prints:

* ``ms``: median wall time of one forward + backward (inputs and all parameters get gradients),
  after one warm-up run; CUDA is synchronised.
* ``peak MiB``: peak of the memory allocated during one forward + backward, above what was
  allocated before it (input, weights). On CUDA: ``torch.cuda.max_memory_allocated``. On the
  CPU: the running total of PyTorch's CPU allocator as recorded by ``torch.profiler`` with
  ``profile_memory=True`` (allocation events, in a separate run from the timing).
* ``max |dy|`` / ``max |dgrad|``: largest absolute difference of the outputs and of the input
  gradients between the two implementations.

Examples::

    python tools/benchmark_criss_cross.py --device cpu --levels p6 p7 --repeats 2
    python tools/benchmark_criss_cross.py --device cuda --dtype bfloat16
"""

import argparse

import torch
from tabulate import tabulate

from csgr.benchmark.measure import MIB, interleaved_times_ms, median, peak_bytes
from csgr.layers import CrissCrossAttention, dense_criss_cross_reference

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


def median_ms(fn, device: torch.device, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    return median(interleaved_times_ms({"fn": fn}, device, repeats)["fn"])


def make_step(forward, block, x, grad_out, dtype):
    """One forward + backward of ``forward(x)``; returns the output and the input gradient."""

    def step():
        block.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
            y = forward(x)
        y.backward(grad_out)
        return y.detach(), x.grad

    return step


def benchmark_level(name, args, device, dtype):
    h, w = LEVEL_SIZES[name]
    c, n = args.channels, args.batch
    torch.manual_seed(0)
    block = CrissCrossAttention(c, args.reduction, args.recurrence).to(device)
    with torch.no_grad():
        block.gamma.fill_(0.5)  # with gamma = 0 both would return the input
    x = torch.randn(n, c, h, w, device=device, requires_grad=True)
    grad_out = torch.randn(n, c, h, w, device=device)
    sparse = make_step(block, block, x, grad_out, dtype)
    row = {"level": name, "H x W": f"{h} x {w}"}
    row["cc ms"] = median_ms(sparse, device, args.repeats)
    row["cc peak MiB"] = peak_bytes(sparse, device) / MIB
    if h * w > args.skip_dense_above:
        return row
    dense = make_step(lambda t: dense_criss_cross_reference(block, t), block, x, grad_out, dtype)
    row["dense ms"] = median_ms(dense, device, args.repeats)
    row["dense peak MiB"] = peak_bytes(dense, device) / MIB
    row["ms ratio"] = row["dense ms"] / row["cc ms"]
    row["MiB ratio"] = row["dense peak MiB"] / row["cc peak MiB"]
    (y_cc, g_cc), (y_dense, g_dense) = sparse(), dense()
    row["max |dy|"] = (y_cc.float() - y_dense.float()).abs().max().item()
    row["max |dgrad|"] = (g_cc.float() - g_dense.float()).abs().max().item()
    return row


def _cell(value):
    return f"{value:.3g}" if isinstance(value, float) else value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--reduction", type=int, default=8)
    parser.add_argument("--recurrence", type=int, default=1)
    parser.add_argument(
        "--levels", nargs="+", default=["p3", "p4", "p5", "p6", "p7"], choices=list(LEVEL_SIZES)
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=list(DTYPES),
        help="float32, or the autocast dtype (inputs and weights stay float32)",
    )
    parser.add_argument(
        "--skip-dense-above",
        type=int,
        default=10000,
        metavar="N",
        help="skip the dense reference on levels with more than N positions (H*W)",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]

    rows = [benchmark_level(name, args, device, dtype) for name in args.levels]
    headers = ["level", "H x W", "cc ms", "dense ms", "ms ratio", "cc peak MiB"]
    headers += ["dense peak MiB", "MiB ratio", "max |dy|", "max |dgrad|"]
    table = [[_cell(row.get(k, "skipped")) for k in headers] for row in rows]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"criss-cross vs dense masked attention, forward+backward, device={where}, "
        f"threads={torch.get_num_threads()}, dtype={args.dtype}, N={args.batch}, "
        f"C={args.channels}, reduction={args.reduction}, R={args.recurrence}"
    )
    print(tabulate(table, headers=headers, tablefmt="github", disable_numparse=True))


if __name__ == "__main__":
    main()
