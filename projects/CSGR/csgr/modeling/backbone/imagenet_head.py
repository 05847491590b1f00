"""The ImageNet classifier on top of a mobile backbone's res5, used only to check weights.

Both MobileNetV2 and EfficientNet-Lite end in the same head: a 1x1 conv to 1280 channels with
batch norm and ReLU6, global average pooling, and a linear layer to the 1000 classes.
"""

import torch
from detectron2.layers import Conv2d, FrozenBatchNorm2d
from torch import nn

__all__ = ["ImageNetHead"]


class ImageNetHead(nn.Module):
    """1x1 conv + FrozenBN + ReLU6, average pool, linear.

    Args:
        in_channels: channels of res5.
        eps: batch-norm epsilon of the pretrained network.
        mid_channels, num_classes: 1280 and 1000 for the ImageNet networks.
    """

    def __init__(self, in_channels: int, eps: float, mid_channels=1280, num_classes=1000):
        super().__init__()
        self.conv = Conv2d(
            in_channels,
            mid_channels,
            1,
            bias=False,
            norm=FrozenBatchNorm2d(mid_channels, eps=eps),
            activation=nn.ReLU6(),
        )
        self.fc = nn.Linear(mid_channels, num_classes)

    def forward(self, res5: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) res5 features -> (N, num_classes) logits."""
        return self.fc(self.conv(res5).mean(dim=(2, 3)))
