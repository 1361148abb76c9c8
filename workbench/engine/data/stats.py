"""Per-channel statistics used to normalize inputs: the dataset's own, or ImageNet's for pretrained models."""

from __future__ import annotations

import math

import torch

# What torchvision's pretrained weights were trained with (RGB, in [0, 1] units).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_CHUNK_ELEMENTS = 1 << 24  # ~128 MB of int64 per chunk, whatever the image size


def channel_mean_std(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """Mean and standard deviation per channel of a uint8 (N, C, H, W) tensor, in [0, 1] units.

    Sums run chunk by chunk in exact integer arithmetic, so a memory-mapped split is never loaded whole
    and the result does not depend on the chunking. A channel with (almost) no spread gets std 1/255, so
    normalizing never divides by zero.
    """
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"expected a non-empty (N, C, H, W) tensor, got shape {tuple(images.shape)}")
    n, channels, height, width = images.shape
    per_image = channels * height * width
    step = max(1, _CHUNK_ELEMENTS // per_image)
    total = torch.zeros(channels, dtype=torch.int64)
    squares = torch.zeros(channels, dtype=torch.int64)
    for start in range(0, n, step):
        chunk = images[start : start + step].to(torch.int64)
        total += chunk.sum(dim=(0, 2, 3))
        squares += chunk.square().sum(dim=(0, 2, 3))
    count = n * height * width
    means = [t / (count * 255) for t in total.tolist()]
    stds = [
        max(math.sqrt(max(s / (count * 255 * 255) - m * m, 0.0)), 1 / 255)
        for s, m in zip(squares.tolist(), means, strict=True)
    ]
    return means, stds
