"""SE-ResNet: torchvision's ResNet with a Squeeze-and-Excitation block in every residual unit.

The course's SE block: global average pool (squeeze) → FC reducing the channels ×16 → ReLU → FC back →
sigmoid → rescale each channel of the residual branch (excite), before the shortcut is added.
torchvision's `SqueezeExcitation` is exactly that, with its two FC layers written as 1×1 convolutions.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.ops import SqueezeExcitation

from workbench.engine.models.registry import register_model

SE_REDUCTION = 16


def _squeeze_excite(channels: int) -> SqueezeExcitation:
    return SqueezeExcitation(channels, max(1, channels // SE_REDUCTION))


class SEBasicBlock(BasicBlock):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.se = _squeeze_excite(self.conv2.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


class SEBottleneck(Bottleneck):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.se = _squeeze_excite(self.conv3.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + identity)


def resnet_stem(model: ResNet, in_channels: int, *, small: bool) -> ResNet:
    """ImageNet stem (7×7 stride 2 + max-pool) for `in_channels`, or the CIFAR one (3×3 stride 1, no pool)."""
    if small:
        model.conv1 = nn.Conv2d(in_channels, model.conv1.out_channels, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_channels != model.conv1.in_channels:
        model.conv1 = nn.Conv2d(in_channels, model.conv1.out_channels, 7, stride=2, padding=3, bias=False)
    nn.init.kaiming_normal_(
        model.conv1.weight, mode="fan_out", nonlinearity="relu"
    )  # as torchvision's ResNet
    return model


def se_resnet(depth: int, num_classes: int, in_channels: int, *, small: bool = False, **kwargs) -> ResNet:
    block, layers = {18: (SEBasicBlock, [2, 2, 2, 2]), 50: (SEBottleneck, [3, 4, 6, 3])}[depth]
    return resnet_stem(ResNet(block, layers, num_classes=num_classes, **kwargs), in_channels, small=small)


@register_model(
    "se_resnet18",
    family="SE-ResNet",
    year=2017,
    description="ResNet-18 with a squeeze-and-excitation block (reduction 16) in every residual unit",
    min_size=32,
    default_size=224,
)
def se_resnet18(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return se_resnet(18, num_classes, in_channels, **kwargs)


@register_model(
    "se_resnet50",
    family="SE-ResNet",
    year=2017,
    description="ResNet-50 with a squeeze-and-excitation block (reduction 16) in every bottleneck unit",
    min_size=32,
    default_size=224,
)
def se_resnet50(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return se_resnet(50, num_classes, in_channels, **kwargs)
