"""Criss-cross attention: agreement with dense and brute-force references, memory, precision."""

import copy
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from csgr.layers import CrissCrossAttention, dense_criss_cross_reference

SHAPES = [(2, 16, 5, 7), (1, 16, 7, 3), (3, 8, 1, 6), (2, 8, 6, 1), (1, 8, 1, 1), (2, 16, 4, 4)]


def random_block(
    channels, reduction=4, recurrence=1, gamma=0.7, dtype=torch.float64, std=0.5, seed=0
):
    """A block with random N(0, std^2) conv weights (not the default init) and a nonzero gamma."""
    torch.manual_seed(seed)
    block = CrissCrossAttention(channels, reduction, recurrence).to(dtype)
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, std)
        block.gamma.fill_(gamma)
    return block


def brute_force(block, x):
    """Per-pixel loop over the row and column of every position (tiny inputs only)."""
    n, c, h, w = x.shape
    for _ in range(block.recurrence):
        q, k, v = block.query_conv(x), block.key_conv(x), block.value_conv(x)
        out = torch.zeros_like(x)
        for b in range(n):
            for i in range(h):
                for j in range(w):
                    # Row and column of (i, j), the centre once.
                    positions = [(i, jj) for jj in range(w)] + [
                        (ii, j) for ii in range(h) if ii != i
                    ]
                    energies = torch.stack([q[b, :, i, j] @ k[b, :, y, z] for y, z in positions])
                    weights = energies.softmax(0)
                    for weight, (y, z) in zip(weights, positions):
                        out[b, :, i, j] += weight * v[b, :, y, z]
        x = block.gamma * out + x
    return x


@pytest.mark.parametrize("recurrence", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_dense_reference_float64(shape, recurrence):
    block = random_block(shape[1], recurrence=recurrence)
    x = torch.randn(*shape, dtype=torch.float64)
    torch.testing.assert_close(block(x), dense_criss_cross_reference(block, x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("recurrence", [1, 2])
def test_matches_dense_reference_float32_with_gradients(recurrence):
    block = random_block(16, recurrence=recurrence, gamma=0.3, dtype=torch.float32)
    x = torch.randn(2, 16, 6, 9, requires_grad=True)
    grad_out = torch.randn(2, 16, 6, 9)
    outputs, grads = [], []
    for fn in (block, lambda t: dense_criss_cross_reference(block, t)):
        block.zero_grad()
        x.grad = None
        y = fn(x)
        (y * grad_out).sum().backward()
        outputs.append(y.detach())
        grads.append([x.grad.clone()] + [p.grad.clone() for p in block.parameters()])
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("recurrence", [1, 2])
def test_matches_brute_force(recurrence):
    block = random_block(4, reduction=2, recurrence=recurrence)
    x = torch.randn(2, 4, 3, 4, dtype=torch.float64)
    torch.testing.assert_close(block(x), brute_force(block, x), atol=1e-10, rtol=0)


def test_recurrence_two_reaches_whole_image_one_does_not():
    block1 = random_block(8, recurrence=1)
    block2 = random_block(8, recurrence=2)
    x = torch.randn(1, 8, 5, 6, dtype=torch.float64, requires_grad=True)
    for block, reaches_corner in ((block1, False), (block2, True)):
        x.grad = None
        block(x)[0, :, 0, 0].sum().backward()
        # (4, 5) shares neither row nor column with (0, 0).
        assert bool(x.grad[0, :, 4, 5].abs().sum() > 0) == reaches_corner


def test_gamma_zero_is_identity():
    block = CrissCrossAttention(16)
    x = torch.randn(2, 16, 5, 7)
    assert block.gamma.item() == 0.0
    assert torch.equal(block(x), x)


class _MaxNumel(TorchDispatchMode):
    """Records the largest tensor produced by any ATen op (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
        return out


@pytest.mark.parametrize("recurrence", [1, 2])
def test_never_materialises_dense_affinities(recurrence):
    n, c, h, w = 2, 16, 24, 40
    block = random_block(c, recurrence=recurrence, dtype=torch.float32)
    x = torch.randn(n, c, h, w, requires_grad=True)
    dense_numel = n * (h * w) ** 2
    criss_cross_numel = n * h * w * (h + w)  # the concatenated row+column energies

    sparse = _MaxNumel()
    with sparse:
        block(x).sum().backward()
    assert sparse.max_numel <= max(criss_cross_numel, n * c * h * w)
    assert sparse.max_numel * 10 < dense_numel

    dense = _MaxNumel()  # the detector does see a dense attention
    with dense:
        dense_criss_cross_reference(block, x).sum().backward()
    assert dense.max_numel >= dense_numel


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_cpu(dtype):
    block = random_block(16, recurrence=2, gamma=0.5, dtype=torch.float32, std=0.2)
    x = torch.randn(2, 16, 9, 11, requires_grad=True)
    expected = block(x).detach()
    with torch.autocast("cpu", dtype=dtype):
        y = block(x)
    assert y.dtype == torch.float32  # the residual keeps the input's dtype
    assert torch.isfinite(y).all()
    # Roughly the float32 result: the attention branch within a few percent.
    error = (y.detach() - expected).norm() / (expected - x.detach()).norm()
    assert error < 0.05, error
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in block.parameters())


def test_bfloat16_module_and_input():
    block = random_block(16, gamma=0.5, dtype=torch.float32, std=0.2)
    x = torch.randn(1, 16, 8, 5)
    expected = block(x).detach()
    y = block.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert y.dtype == torch.bfloat16
    assert torch.isfinite(y).all()
    error = (y.float() - expected).norm() / (expected - x).norm()
    assert error < 0.05, error


def test_large_energies_stay_finite():
    # Energies far beyond exp()'s range: the softmax must stay finite with the -inf mask.
    block = random_block(8, gamma=1.0, dtype=torch.float32)
    x = 100.0 * torch.randn(1, 8, 4, 6)
    y = block(x)
    assert torch.isfinite(y).all()
    assert math.isfinite(dense_criss_cross_reference(block, x).sum().item())
    torch.testing.assert_close(y, dense_criss_cross_reference(block, x), atol=1e-2, rtol=1e-4)


def test_rejects_bad_input():
    block = CrissCrossAttention(16)
    with pytest.raises(ValueError, match="expected"):
        block(torch.randn(1, 8, 4, 4))
    with pytest.raises(ValueError, match="recurrence"):
        CrissCrossAttention(16, recurrence=0)
    with pytest.raises(ValueError, match="init must be one of"):
        CrissCrossAttention(16, init="xavier")


def test_kaiming_init_zero_bias_and_default_kept_on_request():
    """Kaiming-normal fan_in weights (std sqrt(2/C)) and zero bias, as the probable official
    code; init="default" keeps PyTorch's default (std 1/sqrt(3C), nonzero bias)."""
    channels = 256
    torch.manual_seed(0)
    kaiming = CrissCrossAttention(channels)
    default = CrissCrossAttention(channels, init="default")
    for name in ("query_conv", "key_conv", "value_conv"):
        conv, old = getattr(kaiming, name), getattr(default, name)
        # Sample std of >= 8192 normal weights: within 5% of sqrt(2/C) by a wide margin.
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / channels), rel=0.05)
        assert old.weight.std().item() == pytest.approx(1 / math.sqrt(3.0 * channels), rel=0.05)
        assert torch.count_nonzero(conv.bias) == 0
        assert torch.count_nonzero(old.bias) > 0
    assert kaiming.gamma.item() == 0.0 == default.gamma.item()


def test_flop_count_matches_hand_count():
    from csgr.benchmark.criss_cross import criss_cross_flops

    n, c, h, w = 2, 16, 5, 7
    fwd, bwd = criss_cross_flops(n, c, h, w, reduction=4, recurrence=3)
    inner = 4
    per_pixel = 2 * c * (2 * inner + c) + 2 * (h + w) * inner + 2 * (h + w) * c
    assert fwd == n * 3 * h * w * per_pixel
    assert bwd == 2 * fwd


def _values_and_grads(fn, block, x, grad_out):
    block.zero_grad(set_to_none=True)
    x.grad = None
    y = fn(x)
    y.backward(grad_out)
    grads = [x.grad.clone()] + [p.grad.clone() for p in block.parameters()]
    return y.detach(), grads


def _assert_same_float64_step(block, reference, x, grad_out):
    """``block(x)`` and ``reference(x)`` agree in value and in every gradient (float64)."""
    y, grads = _values_and_grads(block, block, x, grad_out)
    y_ref, grads_ref = _values_and_grads(reference, block, x, grad_out)
    torch.testing.assert_close(y, y_ref, atol=1e-10, rtol=0)
    for g, g_ref in zip(grads, grads_ref):
        torch.testing.assert_close(g, g_ref, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("recurrence", [1, 2])
@pytest.mark.parametrize("shape", [(3, 8, 5, 7), (2, 8, 1, 6), (2, 8, 6, 1), (1, 16, 4, 4)])
def test_values_and_all_gradients_match_dense_float64(shape, recurrence):
    # The hand-written backward against autograd through the dense reference, exactly (float64).
    block = random_block(shape[1], recurrence=recurrence)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(*shape, dtype=torch.float64)
    _assert_same_float64_step(block, lambda t: dense_criss_cross_reference(block, t), x, grad_out)


def test_gradcheck_float64():
    block = random_block(4, reduction=2, recurrence=2, std=0.3)
    x = torch.randn(2, 4, 3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def test_input_without_gradient_gives_parameter_gradients():
    # A teacher map: no input gradient is computed, the shared weights still get theirs.
    block = random_block(8, dtype=torch.float64)
    x = torch.randn(2, 8, 4, 5, dtype=torch.float64)
    block(x).sum().backward()
    reference = random_block(8, dtype=torch.float64)
    dense_criss_cross_reference(reference, x).sum().backward()
    for p, p_ref in zip(block.parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, p_ref.grad, atol=1e-9, rtol=1e-9)


def test_matches_previous_implementation_float64():
    from csgr.benchmark.criss_cross_previous import previous_criss_cross

    block = random_block(16, recurrence=2)
    x = torch.randn(2, 16, 6, 9, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(2, 16, 6, 9, dtype=torch.float64)
    _assert_same_float64_step(block, lambda t: previous_criss_cross(block, t), x, grad_out)


def test_aggregate_entry_point_gradients_float64():
    from csgr.benchmark.criss_cross_previous import previous_criss_cross_aggregate
    from csgr.layers import criss_cross_aggregate

    g = torch.Generator().manual_seed(3)
    q, k = (torch.randn(2, 4, 5, 6, dtype=torch.float64, generator=g) for _ in range(2))
    v = torch.randn(2, 8, 5, 6, dtype=torch.float64, generator=g)
    inputs = [t.requires_grad_() for t in (q, k, v)]
    grad_out = torch.randn(2, 8, 5, 6, dtype=torch.float64, generator=g)
    results = []
    for fn in (criss_cross_aggregate, previous_criss_cross_aggregate):
        y = fn(*inputs)
        results.append([y.detach()] + list(torch.autograd.grad(y, inputs, grad_out)))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def _assert_autocast_close_to_float32(dtype, device):
    """Under autocast the products run in low precision: the output keeps the input's dtype and
    is within a few percent of the float32 one; gradients keep the parameters' dtype and stay
    within a few percent of the float32 ones."""
    block = random_block(16, gamma=0.5, dtype=torch.float32, std=0.2).to(device)
    x = torch.randn(2, 16, 7, 9, device=device, requires_grad=True)
    grad_out = torch.randn(2, 16, 7, 9, device=device)
    expected, expected_grads = _values_and_grads(block, block, x, grad_out)

    def under_autocast(t):
        with torch.autocast(device, dtype=dtype):
            return block(t)

    y, grads = _values_and_grads(under_autocast, block, x, grad_out)
    assert y.dtype == torch.float32
    assert (y - expected).norm() <= 0.05 * (expected - x.detach()).norm()
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    # The input's gradient, then all parameters' together (the key bias's own gradient is 0 in
    # exact arithmetic, a softmax shift, so only its rounding noise shows on its own).
    for part in (slice(0, 1), slice(1, None)):
        g, g_ref = (torch.cat([t.flatten() for t in gs[part]]) for gs in (grads, expected_grads))
        assert (g - g_ref).norm() <= 0.05 * g_ref.norm()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_gradients_close_to_float32(dtype):
    _assert_autocast_close_to_float32(dtype, "cpu")


# ---------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("recurrence", [1, 2])
@pytest.mark.parametrize("shape", [(2, 8, 5, 7), (2, 8, 1, 6), (1, 16, 4, 4)])
def test_cuda_values_and_all_gradients_match_dense_float64(shape, recurrence):
    block = random_block(shape[1], recurrence=recurrence).cuda()
    x = torch.randn(*shape, dtype=torch.float64, device="cuda", requires_grad=True)
    grad_out = torch.randn(*shape, dtype=torch.float64, device="cuda")
    _assert_same_float64_step(block, lambda t: dense_criss_cross_reference(block, t), x, grad_out)


@pytest.mark.cuda
@pytest.mark.parametrize("recurrence", [1, 2])
def test_cuda_float32_matches_float64_dense_reference(recurrence):
    # The reference in float64: no TF32 convolution or reduced-precision GEMM can blur it.
    # Relative errors of whole tensors: about 1e-6 on CPUs; the bound leaves room for other
    # summation orders.
    block = random_block(16, recurrence=recurrence, gamma=0.3, dtype=torch.float32).cuda()
    x = torch.randn(2, 16, 12, 17, device="cuda", requires_grad=True)
    grad_out = torch.randn(2, 16, 12, 17, device="cuda")
    y, grads = _values_and_grads(block, block, x, grad_out)
    reference = copy.deepcopy(block).double()
    x64 = x.detach().double().requires_grad_(True)
    y_ref, grads_ref = _values_and_grads(
        lambda t: dense_criss_cross_reference(reference, t), reference, x64, grad_out.double()
    )
    assert (y.double() - y_ref).norm() <= 1e-5 * y_ref.norm()
    for part in (slice(0, 1), slice(1, None)):  # the input's gradient, then the parameters'
        g, g_ref = (
            torch.cat([t.double().flatten() for t in gs[part]]) for gs in (grads, grads_ref)
        )
        assert (g - g_ref).norm() <= 1e-4 * g_ref.norm()


@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_close_to_float32(dtype):
    _assert_autocast_close_to_float32(dtype, "cuda")
