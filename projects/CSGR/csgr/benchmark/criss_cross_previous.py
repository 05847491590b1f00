"""The previous criss-cross attention (1x1 convs and ``torch.matmul`` on permuted views), kept to
time it against the current one in the same run (``tools/benchmark_criss_cross.py``) and to
test that both agree.

The block's three 1x1 convs, then energies, a concatenated softmax and the aggregation through
``torch.matmul`` on permuted views (what PyTorch's autograd makes of them, copies included).
"""

import torch
import torch.nn.functional as F

from ..layers import CrissCrossAttention

__all__ = ["previous_criss_cross_aggregate", "previous_criss_cross"]


def _softmax_precision(energy: torch.Tensor) -> torch.Tensor:
    return energy.to(torch.promote_types(energy.dtype, torch.float32))


def previous_criss_cross_aggregate(query, key, value) -> torch.Tensor:
    """(N, C', H, W) query and key, (N, C, H, W) value -> (N, C, H, W), the old way."""
    h, w = query.shape[2:]
    q = query.permute(0, 2, 3, 1)
    v = value.permute(0, 2, 3, 1).contiguous()
    energy_row = torch.matmul(q, key.permute(0, 2, 1, 3))  # [n, h, w, w']
    energy_col = torch.matmul(q.transpose(1, 2), key.permute(0, 3, 1, 2))  # [n, w, h, h']
    centre = torch.eye(h, dtype=torch.bool, device=query.device)
    energy_col = _softmax_precision(energy_col).masked_fill(centre, float("-inf"))
    energy = torch.cat([energy_col.transpose(1, 2), _softmax_precision(energy_row)], dim=3)
    attention = F.softmax(energy, dim=3).to(v.dtype)  # [n, h, w, h' | w']
    att_col, att_row = attention.split([h, w], dim=3)
    out_row = torch.matmul(att_row, v)  # [n, h, w, c]
    out_col = torch.matmul(att_col.transpose(1, 2), v.transpose(1, 2))  # [n, w, h, c]
    return out_row.add_(out_col.transpose(1, 2)).permute(0, 3, 1, 2).contiguous()


def previous_criss_cross(module: CrissCrossAttention, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` computed the old way, with the module's weights."""
    for _ in range(module.recurrence):
        aggregated = previous_criss_cross_aggregate(
            module.query_conv(x), module.key_conv(x), module.value_conv(x)
        )
        x = module.residual(x, aggregated)
    return x
