"""Criss-cross aggregation, projections included, as one autograd function.

Layouts are chosen so that every product is a GEMM whose matrices BLAS reads and writes in place
(each has a unit stride; the leading dimension is free), for rows and columns alike:

* one GEMM projects the (C, HW) input to channels-last query, key and value, ``qkv`` (HW, 2C'+C);
* energies: one (W x W) product per row and one (H x H) per column, from ``qkv`` in place;
* the softmax over the H + W positions of a pixel runs on the row and column energies in place,
  without concatenating them, and so does its backward;
* aggregation: the row part is written straight into the (C, H, W) output; the column part goes
  to a (C, W, H) buffer added with a per-channel transpose, the one transposed pass of the
  forward (the backward has one too, of the output gradient). Gradients of query, key and value
  go into one (HW, 2C'+C) buffer, from which two GEMMs give the input and weight gradients.

The 1x1-conv formulation it replaces went through PyTorch's im2col convolution on the CPU (a copy
of the input per call, about 40% of a pass at P3) and made several strided (transposing) passes
over value-sized tensors; BENCHMARKS.md ("Criss-cross attention") has the figures.
"""

from typing import Optional

import torch

__all__ = ["CrissCrossFunction"]


def _joint_softmax_(energy_row: torch.Tensor, energy_col: torch.Tensor) -> None:
    """Softmax over the union of each pixel's row and column energies, in place.

    Args:
        energy_row: (N, H, W, W) energies of pixel (h, w) with (h, w').
        energy_col: (N, W, H, H) energies of pixel (h, w) with (h', w); the centre h' == h must
            already be -inf (it counts once, in the row part).
    """
    peak = torch.maximum(energy_row.amax(3), energy_col.amax(3).transpose(1, 2))  # (N, H, W)
    energy_row.sub_(peak.unsqueeze(3)).exp_()
    energy_col.sub_(peak.transpose(1, 2).unsqueeze(3)).exp_()
    scale = (energy_row.sum(3) + energy_col.sum(3).transpose(1, 2)).reciprocal_()  # (N, H, W)
    energy_row.mul_(scale.unsqueeze(3))
    energy_col.mul_(scale.transpose(1, 2).unsqueeze(3))


def _joint_softmax_backward_(grad_row, grad_col, att_row, att_col) -> None:
    """``dE = A * dA - A * sum_union(A * dA)`` in place of ``dA`` (same shapes as above)."""
    grad_row.mul_(att_row)
    grad_col.mul_(att_col)  # 0 at the masked centre
    dot = grad_row.sum(3) + grad_col.sum(3).transpose(1, 2)  # (N, H, W)
    grad_row.addcmul_(att_row, dot.unsqueeze(3), value=-1.0)
    grad_col.addcmul_(att_col, dot.transpose(1, 2).unsqueeze(3), value=-1.0)


def _split(qkv: torch.Tensor, inner: int):
    """Query, key, value views of a channels-last (H, W, 2C'+C) tensor."""
    return qkv[..., :inner], qkv[..., inner : 2 * inner], qkv[..., 2 * inner :]


class CrissCrossFunction(torch.autograd.Function):
    """``aggregate(x)[:, :, h, w] = sum_{p in row(h,w) U col(h,w)} softmax(q . k)[p] * v[p]``
    with ``[q; k; v] = weight @ x + bias`` per pixel (the three 1x1 convs of the block).

    forward(x, weight, bias, inner, dtype):

    * x: (N, C, H, W), contiguous;
    * weight: (2C'+C, C) query, key and value weights stacked, bias: (2C'+C,); or both None,
      then ``x`` already holds the (N, 2C'+C, H, W) query, key and value;
    * inner: C';
    * dtype: the dtype of the products (e.g. autocast's); energies and softmax run in at least
      float32. Returns (N, C, H, W) in ``dtype``, contiguous.
    """

    @staticmethod
    def forward(ctx, x, weight: Optional[torch.Tensor], bias, inner: int, dtype):
        ctx.in_dtypes = (x.dtype, None if weight is None else weight.dtype)
        with torch.autocast(x.device.type, enabled=False):
            x = x.to(dtype).contiguous()
            n, _, h, w = x.shape
            if weight is None:
                qkv = x.permute(0, 2, 3, 1).contiguous()
            else:
                weight, bias = weight.to(dtype), bias.to(dtype)
                qkv = x.new_empty((n, h, w, weight.shape[0]))
                for i in range(n):
                    torch.addmm(
                        bias, x[i].view(-1, h * w).t(), weight.t(), out=qkv[i].view(h * w, -1)
                    )
            channels = qkv.shape[3] - 2 * inner
            acc = torch.promote_types(dtype, torch.float32)
            energy_row, energy_col = x.new_empty((n, h, w, w)), x.new_empty((n, w, h, h))
            for i in range(n):
                q, k, _ = _split(qkv[i], inner)
                torch.bmm(q, k.transpose(1, 2), out=energy_row[i])
                qt, kt = q.transpose(0, 1), k.transpose(0, 1)  # (W, H, C')
                torch.bmm(qt, kt.transpose(1, 2), out=energy_col[i])
            att_row, att_col = energy_row.to(acc), energy_col.to(acc)
            att_col.diagonal(dim1=2, dim2=3).fill_(float("-inf"))
            _joint_softmax_(att_row, att_col)
            low_row, low_col = att_row.to(dtype), att_col.to(dtype)
            out = x.new_empty((n, channels, h, w))
            column = x.new_empty((channels, w, h))
            for i in range(n):
                _, _, v = _split(qkv[i], inner)  # (H, W, C)
                vt = v.transpose(0, 1)  # (W, H, C)
                torch.bmm(v.transpose(1, 2), low_row[i].transpose(1, 2), out=out[i].transpose(0, 1))
                torch.bmm(
                    vt.transpose(1, 2), low_col[i].transpose(1, 2), out=column.transpose(0, 1)
                )
                out[i].add_(column.transpose(1, 2))
        ctx.inner = inner
        ctx.has_weight = weight is not None
        ctx.save_for_backward(x, weight, qkv, att_row, att_col)
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, weight, qkv, att_row, att_col = ctx.saved_tensors
        inner, dtype = ctx.inner, qkv.dtype
        with torch.autocast(x.device.type, enabled=False):
            grad_out = grad_out.to(dtype).contiguous()
            n, h, w, _ = qkv.shape
            grad_qkv = torch.empty_like(qkv)
            low_row, low_col = att_row.to(dtype), att_col.to(dtype)
            grad_row, grad_col = qkv.new_empty(att_row.shape), qkv.new_empty(att_col.shape)
            for i in range(n):
                _, _, v = _split(qkv[i], inner)
                _, _, gv = _split(grad_qkv[i], inner)
                go = grad_out[i].transpose(0, 1).transpose(1, 2)  # (H, W, C) view
                go_t = grad_out[i].transpose(1, 2).contiguous().transpose(0, 1)  # (W, C, H)
                go_t = go_t.transpose(1, 2)  # (W, H, C) view
                vt = v.transpose(0, 1)
                torch.bmm(go, v.transpose(1, 2), out=grad_row[i])
                torch.bmm(go_t, vt.transpose(1, 2), out=grad_col[i])
                torch.bmm(low_row[i].transpose(1, 2), go, out=gv)
                gv.transpose(0, 1).baddbmm_(low_col[i].transpose(1, 2), go_t)
            del low_row, low_col
            grad_row, grad_col = grad_row.to(att_row.dtype), grad_col.to(att_col.dtype)
            _joint_softmax_backward_(grad_row, grad_col, att_row, att_col)
            grad_row, grad_col = grad_row.to(dtype), grad_col.to(dtype)
            for i in range(n):
                q, k, _ = _split(qkv[i], inner)
                gq, gk, _ = _split(grad_qkv[i], inner)
                qt, kt = q.transpose(0, 1), k.transpose(0, 1)  # (W, H, C')
                torch.bmm(grad_row[i], k, out=gq)
                gq.transpose(0, 1).baddbmm_(grad_col[i], kt)
                torch.bmm(grad_row[i].transpose(1, 2), q, out=gk)
                gk.transpose(0, 1).baddbmm_(grad_col[i].transpose(1, 2), qt)
            del grad_row, grad_col
            grad_x = grad_weight = grad_bias = None
            if not ctx.has_weight:
                if ctx.needs_input_grad[0]:
                    grad_x = grad_qkv.permute(0, 3, 1, 2).to(ctx.in_dtypes[0])
                return grad_x, None, None, None, None
            flat = grad_qkv.view(n, h * w, -1)  # (N, HW, 2C'+C)
            if ctx.needs_input_grad[0]:
                grad_x = x.new_empty(x.shape)
                for i in range(n):
                    torch.mm(weight.t(), flat[i].t(), out=grad_x[i].view(-1, h * w))
                grad_x = grad_x.to(ctx.in_dtypes[0])
            if ctx.needs_input_grad[1]:
                grad_weight = weight.new_zeros(weight.shape)
                for i in range(n):
                    grad_weight.addmm_(flat[i].t(), x[i].view(-1, h * w).t())
                grad_weight = grad_weight.to(ctx.in_dtypes[1])
            if ctx.needs_input_grad[2]:
                grad_bias = flat.sum((0, 1)).to(ctx.in_dtypes[1])
        return grad_x, grad_weight, grad_bias, None, None
