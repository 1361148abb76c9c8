"""The learned convolution kernels, as pictures.

First layer: each kernel reads the image's own channels, so a 3-channel kernel is itself a small RGB image
(AlexNet's famous figure of edge and colour-blob detectors); each is stretched to its own value range.
Deeper layers read feature maps, not colours: each kernel is shown as one grey tile per input channel, on
a symmetric scale shared by the layer, so 0.5 means a zero weight and the tiles can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.models.adapt import first_conv


@dataclass
class Kernels:
    layer: str
    weight: torch.Tensor  # (out_channels, in_channels / groups, kh, kw) float32 on the CPU
    groups: int

    @property
    def num_kernels(self) -> int:
        return self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1]

    def color_tiles(self) -> torch.Tensor:
        """(K, C, kh, kw) in [0, 1]: each kernel stretched to its own min..max — RGB tiles when C is 3, grey
        when 1 (a first layer's kernels, as images)."""
        flat = self.weight.flatten(1)
        low = flat.amin(dim=1).view(-1, 1, 1, 1)
        span = (flat.amax(dim=1) - flat.amin(dim=1)).view(-1, 1, 1, 1)
        return torch.where(span > 0, (self.weight - low) / span.clamp(min=1e-12), 0.5)

    def channel_tiles(self, kernel: int | None = None) -> torch.Tensor:
        """(K, C, kh, kw) — or (C, kh, kw) for one `kernel` — in [0, 1] with 0.5 for a zero weight, on a
        scale shared by the whole layer (largest |weight| → 0 or 1)."""
        scale = self.weight.abs().max()
        tiles = self.weight / (2 * scale) + 0.5 if scale > 0 else torch.full_like(self.weight, 0.5)
        if kernel is None:
            return tiles
        if not 0 <= kernel < self.num_kernels:
            raise ModelError(f"layer {self.layer} has {self.num_kernels} kernels, not kernel {kernel}")
        return tiles[kernel]


def conv_kernels(model: nn.Module, layer: str | None = None) -> Kernels:
    """The kernels of the 2-D convolution `layer` (default: the first one, which reads the image)."""
    if layer is None:
        layer, module = first_conv(model)
    else:
        try:
            module = model.get_submodule(layer)
        except AttributeError:
            raise ModelError(f"the model has no layer named '{layer}'") from None
        if not isinstance(module, nn.Conv2d):
            raise ModelError(f"layer {layer} is a {type(module).__name__}, not a 2-D convolution")
    return Kernels(layer, module.weight.detach().float().cpu().clone(), module.groups)
