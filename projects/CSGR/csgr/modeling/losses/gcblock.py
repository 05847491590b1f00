"""The global context block (GCNet, Cao et al. 2019, arXiv:1904.11492) used by FGD's global loss."""

import torch
from torch import nn

__all__ = ["GcBlock"]


class GcBlock(nn.Module):
    """Global context block with the channel-add fusion: ``out = F + T(context(F))``.

    * Context modeling: a 1x1 conv ``C -> 1`` gives one logit per position; a softmax over the
      H*W positions weights the features into one (N, C, 1, 1) context vector.
    * Transform ``T``: 1x1 conv ``C -> C*ratio``, ``LayerNorm([C*ratio, 1, 1])``, ReLU, 1x1 conv
      ``C*ratio -> C``.

    Initialised as in FGD's code: the context conv with Kaiming-normal (fan_in) weights and zero
    bias, the last transform conv with zeros, so that the block starts as the identity.

    Args:
        channels: C, the input and output channels.
        ratio: bottleneck ratio of the transform (FGD: 0.5).
    """

    def __init__(self, channels: int, ratio: float = 0.5):
        super().__init__()
        hidden = max(1, int(channels * ratio))
        self.context_conv = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )
        nn.init.kaiming_normal_(self.context_conv.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.context_conv.bias)
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Attention-pooled context.

        Args:
            x: (N, C, H, W) features.

        Returns:
            (N, C, 1, 1) ``sum_p softmax_p(conv(x))_p * x_p``.
        """
        n, c, h, w = x.shape
        weights = self.context_conv(x).reshape(n, h * w, 1).softmax(dim=1)  # (N, HW, 1)
        return torch.bmm(x.reshape(n, c, h * w), weights).view(n, c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) features.

        Returns:
            (N, C, H, W) ``x + transform(context(x))`` (the transform broadcast over positions).
        """
        return x + self.transform(self.context(x))
