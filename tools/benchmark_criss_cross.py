#!/usr/bin/env python
"""Criss-cross attention: roofline, previous version and dense attention, per FPN level.

For each level of an 800x1333 input, times forward + backward of
:class:`csgr.layers.CrissCrossAttention` on a random (batch, C, H, W) input (inputs and all
parameters get gradients), interleaved with a large square matmul of the same dtype, the
previous implementation (``csgr.benchmark.criss_cross_previous``) and, on small levels, the dense
(HW x HW) masked attention. Prints per level the analytic FLOPs (forward, backward), the achieved
GFLOP/s, the GEMM rate and the fraction of it reached, the speed-up over the previous version,
peak memory, and the largest output / input-gradient differences between the versions; then the
relation term of CSGR with the teacher and student maps in two calls against one batched call.
How FLOPs are counted: ``csgr.benchmark.criss_cross`` (module docstring) and BENCHMARKS.md.

    python tools/benchmark_criss_cross.py --threads 1 --levels p2 p3 --repeats 5
    python tools/benchmark_criss_cross.py --device cuda --dtype bfloat16
"""

import argparse

import torch
from tabulate import tabulate

from csgr.benchmark.criss_cross import (
    DTYPES,
    LEVEL_SIZES,
    CrissCrossSettings,
    benchmark_level,
    benchmark_pair,
)
from csgr.benchmark.measure import load_average


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = CrissCrossSettings()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--channels", type=int, default=default.channels)
    parser.add_argument("--batch", type=int, default=default.batch, help="images per map")
    parser.add_argument("--reduction", type=int, default=default.reduction)
    parser.add_argument("--recurrence", type=int, default=default.recurrence)
    parser.add_argument("--levels", nargs="+", default=default.levels, choices=list(LEVEL_SIZES))
    parser.add_argument("--repeats", type=int, default=default.repeats, help="timed rounds")
    parser.add_argument("--gemm-size", type=int, default=default.gemm_size)
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=list(DTYPES),
        help="float32, or the autocast dtype (inputs and weights stay float32)",
    )
    parser.add_argument(
        "--skip-dense-above",
        type=int,
        default=default.skip_dense_above,
        metavar="N",
        help="skip the dense reference on levels with more than N positions (H*W)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory runs")
    parser.add_argument("--no-pair", action="store_true", help="skip the two-calls table")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply level sizes (tests)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: PyTorch default)")
    return parser.parse_args(argv)


def _table(rows):
    headers = list(dict.fromkeys(k for row in rows for k in row))
    cells = [
        [
            f"{row[k]:.3g}" if isinstance(row.get(k), float) else row.get(k, "skipped")
            for k in headers
        ]
        for row in rows
    ]
    return tabulate(cells, headers=headers, tablefmt="github", disable_numparse=True)


def main(argv=None):
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    settings = CrissCrossSettings(
        levels=args.levels,
        device=args.device,
        dtype=args.dtype,
        channels=args.channels,
        batch=args.batch,
        reduction=args.reduction,
        recurrence=args.recurrence,
        repeats=args.repeats,
        gemm_size=args.gemm_size,
        skip_dense_above=args.skip_dense_above,
        memory=not args.no_memory,
        scale=args.scale,
    )
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    before = load_average()
    rows = [benchmark_level(name, settings) for name in settings.levels]
    pairs = [] if args.no_pair else [benchmark_pair(name, settings) for name in settings.levels]
    print(
        f"criss-cross attention, forward+backward, device={where}, "
        f"threads={torch.get_num_threads()}, dtype={args.dtype}, N={args.batch}, "
        f"C={args.channels}, reduction={args.reduction}, R={args.recurrence}, "
        f"GEMM {args.gemm_size}^3; {before} before, {load_average()} after"
    )
    print(_table(rows))
    if pairs:
        print(f"\nCSGR relation term, teacher + student maps of N={args.batch} each:")
        print(_table(pairs))
    return rows, pairs


if __name__ == "__main__":
    main()
