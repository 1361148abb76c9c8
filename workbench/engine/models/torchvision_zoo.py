"""torchvision's classification models, registered under torchvision's names, with its ImageNet weights.

One row of `_MODELS` per model. A builder calls `torchvision.models.get_model(name, weights=None, ...)` and
gives the stem `in_channels` channels; ImageNet weights are loaded afterwards by `build_model` (see
`weights.py`), never by torchvision, so they are checked and adapted like any weights file.

min_size: the smallest side for which the network still has a 1×1 map before its head — 32 for the
networks that divide the image by 32, torchvision's own `min_size` where that is larger (AlexNet 63,
Inception v3 75).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

from workbench.engine.models.adapt import set_input_channels
from workbench.engine.models.registry import register_model
from workbench.engine.models.weights import StateDict, torchvision_weights

# name: (family, year, min_size, default_size, description)
_MODELS: dict[str, tuple[str, int, int, int, str]] = {
    "alexnet": (
        "AlexNet",
        2012,
        63,
        224,
        "torchvision's AlexNet: 5 conv (64-192-384-256-256) + 3 FC, ReLU, dropout, no LRN",
    ),
    "vgg11": ("VGG", 2014, 32, 224, "VGG-11 (configuration A): 8 conv3×3 + 3 FC layers"),
    "vgg11_bn": ("VGG", 2014, 32, 224, "VGG-11 with batch norm after every convolution"),
    "vgg13": ("VGG", 2014, 32, 224, "VGG-13 (configuration B): 10 conv3×3 + 3 FC layers"),
    "vgg13_bn": ("VGG", 2014, 32, 224, "VGG-13 with batch norm after every convolution"),
    "vgg16": ("VGG", 2014, 32, 224, "VGG-16 (configuration D): 13 conv3×3 + 3 FC layers, 138M parameters"),
    "vgg16_bn": ("VGG", 2014, 32, 224, "VGG-16 with batch norm after every convolution"),
    "vgg19": ("VGG", 2014, 32, 224, "VGG-19 (configuration E): 16 conv3×3 + 3 FC layers"),
    "vgg19_bn": ("VGG", 2014, 32, 224, "VGG-19 with batch norm after every convolution"),
    "googlenet": (
        "GoogLeNet/Inception",
        2014,
        32,
        224,
        "GoogLeNet (Inception v1): 9 inception modules, 1×1 bottlenecks, aux heads with aux_logits=True",
    ),
    "inception_v3": (
        "GoogLeNet/Inception",
        2015,
        75,
        299,
        "Inception v3: factorized convolutions; its aux head (aux_logits=True) needs 299 px images",
    ),
    "resnet18": ("ResNet", 2015, 32, 224, "ResNet-18: basic residual blocks [2,2,2,2]"),
    "resnet34": ("ResNet", 2015, 32, 224, "ResNet-34: basic residual blocks [3,4,6,3]"),
    "resnet50": ("ResNet", 2015, 32, 224, "ResNet-50: bottleneck blocks [3,4,6,3], 1×1 projection shortcuts"),
    "resnet101": ("ResNet", 2015, 32, 224, "ResNet-101: bottleneck blocks [3,4,23,3]"),
    "resnet152": ("ResNet", 2015, 32, 224, "ResNet-152: bottleneck blocks [3,8,36,3]"),
    "wide_resnet50_2": (
        "ResNet",
        2016,
        32,
        224,
        "Wide ResNet-50-2: ResNet-50 with bottlenecks twice as wide",
    ),
    "densenet121": (
        "DenseNet",
        2017,
        32,
        224,
        "DenseNet-121: dense blocks 6-12-24-16, growth 32, transitions",
    ),
    "densenet169": ("DenseNet", 2017, 32, 224, "DenseNet-169: dense blocks 6-12-32-32, growth 32"),
    "densenet201": ("DenseNet", 2017, 32, 224, "DenseNet-201: dense blocks 6-12-48-32, growth 32"),
    "mobilenet_v2": ("MobileNet", 2018, 32, 224, "MobileNet V2: inverted residuals with linear bottlenecks"),
    "mobilenet_v3_small": (
        "MobileNet",
        2019,
        32,
        224,
        "MobileNet V3 Small: NAS-found blocks, SE, hard-swish",
    ),
    "mobilenet_v3_large": (
        "MobileNet",
        2019,
        32,
        224,
        "MobileNet V3 Large: NAS-found blocks, SE, hard-swish",
    ),
    "efficientnet_b0": (
        "EfficientNet",
        2019,
        32,
        224,
        "EfficientNet-B0: MBConv with SE and swish, compound scaling",
    ),
    "efficientnet_b2": ("EfficientNet", 2019, 32, 288, "EfficientNet-B2: B0 scaled to width 1.1, depth 1.2"),
}

# Fixed options: aux heads off unless asked for (the forward then returns a tensor), and GoogLeNet's
# "transform_input" (the rescaling its ImageNet weights expect) on whenever the input has 3 channels, for
# scratch and pretrained builds alike, so a checkpoint rebuilds into a model that behaves the same.
_INCEPTION_DEFAULTS: dict[str, Any] = {"aux_logits": False, "init_weights": True}
_FIXED_KWARGS = {"googlenet": _INCEPTION_DEFAULTS, "inception_v3": _INCEPTION_DEFAULTS}

# Published DenseNet files still use the old key names 'norm.1', 'conv.2'... (as torchvision's own loader fixes).
_LEGACY_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _densenet_keys(state: StateDict) -> StateDict:
    return {_LEGACY_DENSENET_KEY.sub(r"\1\2", key): value for key, value in state.items()}


_AUX_PREFIXES = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}


def _builder(tv_name: str):
    def build(num_classes: int, in_channels: int, **kwargs: Any) -> nn.Module:
        from torchvision.models import get_model

        options = {**_FIXED_KWARGS.get(tv_name, {}), **kwargs}
        if tv_name in _FIXED_KWARGS:
            options.setdefault("transform_input", in_channels == 3)
        model = get_model(tv_name, weights=None, num_classes=num_classes, **options)
        return set_input_channels(model, in_channels) if in_channels != 3 else model

    build.__name__ = tv_name
    return build


for _name, (_family, _year, _min, _default, _description) in _MODELS.items():
    register_model(
        _name,
        family=_family,
        year=_year,
        description=_description,
        min_size=_min,
        default_size=_default,
        pretrained=True,
        source="torchvision",
        weights=torchvision_weights(
            _name,
            rename=_densenet_keys if _name.startswith("densenet") else None,
            optional_prefixes=_AUX_PREFIXES.get(_name, ()),
        ),
    )(_builder(_name))
