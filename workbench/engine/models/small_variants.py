"""Small-image variants (28–64 px) of the ResNet, SE-ResNet, VGG, DenseNet and NiN families.

ImageNet networks divide the image by 4 in their stem (7×7 stride-2 conv + max-pool) and by 32 overall,
which leaves a 28×28 image almost nothing to work with. These keep torchvision's blocks but use the
CIFAR-style stem — a 3×3 stride-1 convolution and no early max-pool — so 28×28 and 32×32 datasets train at
their own size without upscaling. They have no ImageNet weights (their stems differ).
"""

from __future__ import annotations

from torch import nn
from torchvision.models.densenet import DenseNet
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
from torchvision.models.vgg import cfgs as vgg_configs
from torchvision.models.vgg import make_layers

from workbench.engine.models.nin import nin_cifar
from workbench.engine.models.registry import register_model
from workbench.engine.models.se_resnet import resnet_stem, se_resnet

_RESNET_LAYERS = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
}


def resnet_small(depth: int, num_classes: int, in_channels: int, **kwargs) -> ResNet:
    block, layers = _RESNET_LAYERS[depth]
    return resnet_stem(ResNet(block, layers, num_classes=num_classes, **kwargs), in_channels, small=True)


class VGGSmall(nn.Module):
    """VGG's conv3×3 stacks with batch norm, minus the last max-pool (28 px would shrink to 0), then global
    average pooling and one FC layer instead of the three 4096-wide ones (the usual CIFAR VGG)."""

    def __init__(self, config: str, num_classes: int, in_channels: int, dropout: float = 0.0):
        super().__init__()
        layers = list(vgg_configs[config])
        if layers[-1] == "M":
            layers.pop()
        self.features = make_layers(layers, batch_norm=True)
        self.features[0] = nn.Conv2d(in_channels, self.features[0].out_channels, 3, padding=1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(512, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def densenet_small(num_classes: int, in_channels: int, **kwargs) -> DenseNet:
    """DenseNet-121's dense blocks and transitions behind a 3×3 stride-1 stem (no max-pool)."""
    model = DenseNet(
        growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64, num_classes=num_classes, **kwargs
    )
    model.features.conv0 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.features.conv0.weight)
    model.features.pool0 = nn.Identity()
    return model


_FAMILY_NOTE = "3×3 stem, no early max-pool, for 28–64 px images"


@register_model(
    "resnet18_small",
    family="ResNet",
    year=2015,
    min_size=8,
    default_size=32,
    description=f"ResNet-18 (torchvision's BasicBlock, [2,2,2,2]) with a CIFAR-style {_FAMILY_NOTE}",
)
def resnet18_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return resnet_small(18, num_classes, in_channels, **kwargs)


@register_model(
    "resnet34_small",
    family="ResNet",
    year=2015,
    min_size=8,
    default_size=32,
    description=f"ResNet-34 (BasicBlock, [3,4,6,3]) with a CIFAR-style {_FAMILY_NOTE}",
)
def resnet34_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return resnet_small(34, num_classes, in_channels, **kwargs)


@register_model(
    "resnet50_small",
    family="ResNet",
    year=2015,
    min_size=8,
    default_size=32,
    description=f"ResNet-50 (Bottleneck, [3,4,6,3]) with a CIFAR-style {_FAMILY_NOTE}",
)
def resnet50_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return resnet_small(50, num_classes, in_channels, **kwargs)


@register_model(
    "se_resnet18_small",
    family="SE-ResNet",
    year=2017,
    min_size=8,
    default_size=32,
    description=f"SE-ResNet-18 with a CIFAR-style {_FAMILY_NOTE}",
)
def se_resnet18_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return se_resnet(18, num_classes, in_channels, small=True, **kwargs)


@register_model(
    "se_resnet50_small",
    family="SE-ResNet",
    year=2017,
    min_size=8,
    default_size=32,
    description=f"SE-ResNet-50 with a CIFAR-style {_FAMILY_NOTE}",
)
def se_resnet50_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return se_resnet(50, num_classes, in_channels, small=True, **kwargs)


@register_model(
    "vgg11_small",
    family="VGG",
    year=2014,
    min_size=16,
    default_size=32,
    description="VGG-11 with batch norm, 4 max-pools, global average pool and one FC layer",
)
def vgg11_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return VGGSmall("A", num_classes, in_channels, **kwargs)


@register_model(
    "vgg16_small",
    family="VGG",
    year=2014,
    min_size=16,
    default_size=32,
    description="VGG-16 with batch norm, 4 max-pools, global average pool and one FC layer",
)
def vgg16_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return VGGSmall("D", num_classes, in_channels, **kwargs)


@register_model(
    "densenet121_small",
    family="DenseNet",
    year=2017,
    min_size=8,
    default_size=32,
    description=f"DenseNet-121 (growth 32, blocks 6-12-24-16) with a {_FAMILY_NOTE}",
)
def densenet121_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return densenet_small(num_classes, in_channels, **kwargs)


@register_model(
    "nin_small",
    family="NiN",
    year=2013,
    min_size=8,
    default_size=32,
    description="The NiN paper's CIFAR-10 network (5×5, 5×5, 3×3 mlpconvs), with batch norm",
)
def nin_small(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
    return nin_cifar(num_classes, in_channels, **kwargs)
