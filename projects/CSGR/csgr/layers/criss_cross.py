"""Criss-cross attention (CCNet, Huang et al., ICCV 2019) in pure PyTorch.

Each pixel attends to the H + W - 1 positions of its own row and column (itself counted once),
so one pass costs O(HW(H+W)) time and memory instead of the O((HW)^2) of a non-local block; two
recurrent passes give every pixel context from the whole image.

The affinities are computed with batched matrix products over the N*W columns (H x H each) and
the N*H rows (W x W each); no (HW x HW) tensor is ever built. :func:`dense_criss_cross_reference`
does build it (a non-local block with a criss-cross mask) and exists only for tests and benchmarks.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .criss_cross_function import CrissCrossFunction

__all__ = ["CrissCrossAttention", "criss_cross_aggregate", "dense_criss_cross_reference"]


def _softmax_precision(energy: torch.Tensor) -> torch.Tensor:
    """Energies in at least float32 (float16/bfloat16 are upcast, float64 is kept)."""
    return energy.to(torch.promote_types(energy.dtype, torch.float32))


def criss_cross_aggregate(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor):
    """Aggregate values over the row and column of every pixel.

    The energy of pixel (h, w) with (h', w') is ``<query[:, :, h, w], key[:, :, h', w']>`` for the
    positions sharing its row or column. One softmax runs over the H column energies and the W
    row energies together, with the centre's column entry masked out so that it counts once. The
    softmax runs in (at least) float32 and is cast back to ``value``'s dtype, so fp16/bf16 inputs
    and autocast are safe. Peak memory is O(N*H*W*(H+W) + N*C*H*W); no (HW x HW) tensor is built.

    This entry point copies its three inputs into one channels-last tensor;
    :class:`CrissCrossAttention` computes them with one projection GEMM instead.

    Args:
        query: (N, C', H, W).
        key: (N, C', H, W).
        value: (N, C, H, W).

    Returns:
        (N, C, H, W): ``sum_{p' in row(p) U col(p)} softmax(energy)[p, p'] * value[:, :, p']``.
    """
    dtype = torch.promote_types(torch.promote_types(query.dtype, key.dtype), value.dtype)
    qkv = torch.cat([t.to(dtype) for t in (query, key, value)], dim=1)
    return CrissCrossFunction.apply(qkv, None, None, query.shape[1], _compute_dtype(qkv))


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Autocast's dtype where autocast is on for ``x``'s device and ``x`` is float32, else
    ``x``'s dtype: what a 1x1 conv of ``x`` would return."""
    kind = x.device.type
    if x.dtype == torch.float32 and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


class CrissCrossAttention(nn.Module):
    """Criss-cross attention block: ``x <- gamma * aggregate(x) + x``, applied ``recurrence`` times.

    Query and key are 1x1 convs to ``in_channels // reduction`` channels, value a 1x1 conv to
    ``in_channels``; ``gamma`` is a learnable scalar initialised to 0, so the block starts as the
    identity. The same weights are used in every recurrence.

    The three convs are initialised as in the probable official CSGR code: Kaiming-normal weights
    (fan_in, ReLU gain, std ``sqrt(2 / C)``) and zero bias, about 2.45x the spread of PyTorch's
    default (uniform, std ``1 / sqrt(3 C)``); ``init="default"`` keeps PyTorch's default instead
    (kept to reproduce the figures measured with it).

    Args:
        in_channels: C, channels of the input and the output.
        reduction: channel reduction of query and key (C -> max(1, C // reduction)).
        recurrence: R >= 1, how many times the block is applied; R = 2 gives every pixel
            context from the whole image.
        init: "kaiming" (default) or "default", see above.
    """

    INITS = ("kaiming", "default")

    def __init__(
        self, in_channels: int, reduction: int = 8, recurrence: int = 1, init: str = "kaiming"
    ):
        super().__init__()
        if recurrence < 1:
            raise ValueError(f"recurrence must be >= 1, got {recurrence}")
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        if init not in self.INITS:
            raise ValueError(f"init must be one of {self.INITS}, got {init!r}")
        inner = max(1, in_channels // reduction)
        self.in_channels = in_channels
        self.recurrence = recurrence
        self.query_conv = nn.Conv2d(in_channels, inner, kernel_size=1)
        self.key_conv = nn.Conv2d(in_channels, inner, kernel_size=1)
        self.value_conv = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))
        if init == "kaiming":
            for conv in (self.query_conv, self.key_conv, self.value_conv):
                nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
                nn.init.zeros_(conv.bias)

    def residual(self, x: torch.Tensor, aggregated: torch.Tensor) -> torch.Tensor:
        """``gamma * aggregated + x`` in ``x``'s dtype.

        Args:
            x: (N, C, H, W) input of one pass.
            aggregated: (N, C, H, W) attended values.

        Returns:
            (N, C, H, W), same dtype as ``x``.
        """
        return torch.addcmul(x, self.gamma.to(x.dtype), aggregated.to(x.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) features.

        Returns:
            (N, C, H, W) features, same dtype as ``x``.
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        convs = (self.query_conv, self.key_conv, self.value_conv)
        inner = self.query_conv.out_channels
        for _ in range(self.recurrence):
            # The three 1x1 convs as one (2C'+C, C) projection, inside the function.
            weight = torch.cat([conv.weight.flatten(1) for conv in convs])
            bias = torch.cat([conv.bias for conv in convs])
            dtype = _compute_dtype(x)
            aggregated = CrissCrossFunction.apply(x, weight, bias, inner, dtype)
            x = self.residual(x, aggregated)
        return x


def dense_criss_cross_reference(module: CrissCrossAttention, x: torch.Tensor) -> torch.Tensor:
    """The same computation as ``module(x)`` through a dense (HW x HW) masked attention.

    For tests and benchmarks only: memory grows as (HW)^2.

    Args:
        module: the block whose convs, ``gamma`` and ``recurrence`` are used.
        x: (N, C, H, W) features.

    Returns:
        (N, C, H, W), what ``module(x)`` returns up to floating-point rounding.
    """
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device).repeat_interleave(w)  # (HW,) row of each position
    cols = torch.arange(w, device=x.device).repeat(h)  # (HW,) column of each position
    same_line = (rows[:, None] == rows[None, :]) | (cols[:, None] == cols[None, :])  # (HW, HW)
    for _ in range(module.recurrence):
        query = module.query_conv(x).flatten(2)  # (N, C', HW)
        key = module.key_conv(x).flatten(2)  # (N, C', HW)
        value = module.value_conv(x).flatten(2)  # (N, C, HW)
        energy = _softmax_precision(torch.bmm(query.transpose(1, 2), key))  # (N, HW, HW)
        energy = energy.masked_fill(~same_line, float("-inf"))
        attention = F.softmax(energy, dim=2).to(value.dtype)
        aggregated = torch.bmm(value, attention.transpose(1, 2)).view(n, c, h, w)
        x = module.residual(x, aggregated)
    return x
