"""CBAM-style spatial attention (Woo et al., "CBAM: Convolutional Block Attention Module",
ECCV 2018): a per-position weight in (0, 1) from channel-pooled features."""

import torch
from torch import nn

__all__ = ["SpatialAttention"]


class SpatialAttention(nn.Module):
    """``A = sigmoid(conv_kxk([mean_c(F), max_c(F)]))``.

    Args:
        kernel_size: odd size k of the conv over the 2 pooled maps (CBAM uses 7).
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"SpatialAttention: kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, C, H, W) features.

        Returns:
            (N, 1, H, W) attention in (0, 1).
        """
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))
