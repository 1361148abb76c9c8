"""Batched data augmentation: one vectorized pass over a whole batch, on whatever device holds it.

The course's (AlexNet's) augmentations — shifts, zoom, horizontal flips, lighting — applied per image with
random parameters drawn for the whole batch at once; no Python loop over images. Random numbers are drawn
on the CPU from the given generator, so a seed gives the same augmentation on the CPU and on a GPU.
Input and output are float batches (N, C, H, W) with values in [0, 1] (before normalization).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.engine.training.config import AugmentConfig


class BatchAugmenter:
    def __init__(self, config: AugmentConfig, generator: torch.Generator | None = None):
        self.config = config
        self.generator = generator  # None: torch's global generator

    @property
    def active(self) -> bool:
        c = self.config
        return c.crop_padding > 0 or c.zoom > 0 or c.flip or c.brightness > 0 or c.contrast > 0

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return batch
        if batch.ndim != 4 or not batch.is_floating_point():
            raise ValueError(f"expected a float (N, C, H, W) batch, got {batch.dtype} {tuple(batch.shape)}")
        c = self.config
        if c.zoom > 0:
            batch = self._zoom_and_shift(batch, c.zoom, c.crop_padding)
        elif c.crop_padding > 0:
            batch = self._translate(batch, c.crop_padding)
        if c.flip:
            flip = self._uniform(len(batch), batch.device) < 0.5
            batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(3), batch)
        if c.brightness > 0:
            factor = self._factors(len(batch), c.brightness, batch.device)
            batch = (batch * factor).clamp_(0, 1)
        if c.contrast > 0:
            # Like torchvision's adjust_contrast: blend each image with its mean grey level.
            factor = self._factors(len(batch), c.contrast, batch.device)
            mean = batch.mean(dim=(1, 2, 3), keepdim=True)
            batch = ((batch - mean) * factor + mean).clamp_(0, 1)
        return batch

    def _translate(self, batch: torch.Tensor, padding: int) -> torch.Tensor:
        """Random crop of the reflect-padded batch: shifts each image by up to `padding` pixels."""
        n, channels, height, width = batch.shape
        padding = min(padding, height - 1, width - 1)  # reflection needs a border smaller than the image
        if padding < 1:
            return batch
        padded = F.pad(batch, (padding, padding, padding, padding), mode="reflect")
        shifts = torch.randint(0, 2 * padding + 1, (2, n), generator=self.generator).to(batch.device)
        rows = shifts[0].view(n, 1, 1, 1) + torch.arange(height, device=batch.device).view(1, 1, height, 1)
        cols = shifts[1].view(n, 1, 1, 1) + torch.arange(width, device=batch.device).view(1, 1, 1, width)
        # Two gathers with broadcast (expanded, copy-free) index tensors: rows, then columns.
        picked_rows = padded.gather(2, rows.expand(n, channels, height, width + 2 * padding))
        return picked_rows.gather(3, cols.expand(n, channels, height, width))

    def _zoom_and_shift(self, batch: torch.Tensor, zoom: float, padding: int) -> torch.Tensor:
        """Zoom each image in by a random factor in [1, 1/(1 - zoom)] and shift it by up to `padding` pixels:
        one bilinear resampling (the rare samples past the border reflect back in)."""
        n, _, height, width = batch.shape
        scale = 1 - self._uniform(n, batch.device) * zoom  # < 1: the image samples a smaller area: zoom in
        # affine_grid's coordinates span [-1, 1] over the image, so one pixel is 2 / side.
        shift_x = (self._uniform(n, batch.device) * 2 - 1) * (2 * padding / width)
        shift_y = (self._uniform(n, batch.device) * 2 - 1) * (2 * padding / height)
        theta = torch.zeros(n, 2, 3, device=batch.device, dtype=batch.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = scale
        theta[:, 0, 2], theta[:, 1, 2] = shift_x, shift_y
        grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _uniform(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.rand(n, generator=self.generator).to(device, non_blocking=True)

    def _factors(self, n: int, strength: float, device: torch.device) -> torch.Tensor:
        """Per-image factors uniform in [1 - strength, 1 + strength], shaped to broadcast over a batch."""
        return (1 + (self._uniform(n, device) * 2 - 1) * strength).view(n, 1, 1, 1)
