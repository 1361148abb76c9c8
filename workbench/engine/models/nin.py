"""Network in Network (Lin, Chen & Yan, 2013): mlpconv blocks, global average pooling, no FC layer.

An mlpconv block is a k×k convolution followed by two 1×1 convolutions (a small MLP slid over every
position), each with ReLU. The last block outputs one map per class; global average pooling turns each
map into that class's score, so the network has no fully connected layer. Its last 1×1 convolution is
the head (no ReLU after it, so scores can be negative).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from workbench.engine.models.registry import register_model


def _conv(c_in: int, c_out: int, kernel: int, stride: int, padding: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    return [*layers, nn.ReLU(inplace=True)]


def mlpconv(
    c_in: int,
    widths: Sequence[int],
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    *,
    batch_norm: bool = False,
    last_is_head: bool = False,
) -> nn.Sequential:
    """k×k conv to widths[0], then 1×1 convs to widths[1] and widths[2]."""
    layers = _conv(c_in, widths[0], kernel, stride, padding, batch_norm)
    layers += _conv(widths[0], widths[1], 1, 1, 0, batch_norm)
    if last_is_head:
        layers.append(nn.Conv2d(widths[1], widths[2], 1))
    else:
        layers += _conv(widths[1], widths[2], 1, 1, 0, batch_norm)
    return nn.Sequential(*layers)


class NiN(nn.Module):
    """`features` (mlpconv blocks and pools) then `classifier` (last mlpconv → global average pool)."""

    def __init__(self, features: nn.Sequential, classifier_block: nn.Sequential):
        super().__init__()
        self.features = features
        self.classifier = nn.Sequential(classifier_block, nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.classifier(self.features(x))


def nin_imagenet(
    num_classes: int, in_channels: int, *, batch_norm: bool = False, dropout: float = 0.5
) -> NiN:
    """The ImageNet model of the paper (its Caffe release): 11×11/4, 5×5, 3×3 mlpconvs, then 1024 → classes."""
    features = nn.Sequential(
        mlpconv(in_channels, (96, 96, 96), 11, stride=4, batch_norm=batch_norm),
        nn.MaxPool2d(3, stride=2),
        mlpconv(96, (256, 256, 256), 5, padding=2, batch_norm=batch_norm),
        nn.MaxPool2d(3, stride=2),
        mlpconv(256, (384, 384, 384), 3, padding=1, batch_norm=batch_norm),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(dropout),
    )
    head = mlpconv(384, (1024, 1024, num_classes), 3, padding=1, batch_norm=batch_norm, last_is_head=True)
    return NiN(features, head)


def nin_cifar(num_classes: int, in_channels: int, *, batch_norm: bool = True, dropout: float = 0.5) -> NiN:
    """The paper's CIFAR-10 model: 5×5 (192-160-96), 5×5 (192-192-192), 3×3 (192-192-classes)."""
    features = nn.Sequential(
        mlpconv(in_channels, (192, 160, 96), 5, padding=2, batch_norm=batch_norm),
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.Dropout(dropout),
        mlpconv(96, (192, 192, 192), 5, padding=2, batch_norm=batch_norm),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.Dropout(dropout),
    )
    head = mlpconv(192, (192, 192, num_classes), 3, padding=1, batch_norm=batch_norm, last_is_head=True)
    return NiN(features, head)


@register_model(
    "nin",
    family="NiN",
    year=2013,
    description="Network in Network: mlpconv blocks (k×k conv + two 1×1 convs), global average pooling, no FC",
    min_size=67,
    default_size=224,
)
def nin(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return nin_imagenet(num_classes, in_channels, **kwargs)
