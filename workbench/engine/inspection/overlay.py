"""Inspection results as pictures (NumPy arrays, no Qt): colour maps, a heatmap over its image, grids of tiles.

The app turns these arrays into images on screen; the CLI saves them as PNG files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

from workbench.engine.atomic import atomic_path

# Anchor colours at evenly spaced positions in [0, 1]; the 256-entry tables interpolate between them.
_ANCHORS: dict[str, Sequence[tuple[int, int, int]]] = {
    # the classic Grad-CAM look: blue (cold) → cyan → yellow → red (hot)
    "jet": [(0, 0, 128), (0, 0, 255), (0, 128, 255), (0, 255, 255), (128, 255, 128), (255, 255, 0),
            (255, 128, 0), (255, 0, 0), (128, 0, 0)],
    # perceptually uniform, readable in grey and by colour-blind users
    "viridis": [(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
                (92, 200, 99), (170, 220, 50), (253, 231, 37)],
    "inferno": [(0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85), (227, 89, 51),
                (249, 140, 10), (249, 201, 50), (252, 255, 164)],
    "gray": [(0, 0, 0), (255, 255, 255)],
}  # fmt: skip
COLORMAPS = tuple(_ANCHORS)


def colormap_table(name: str = "jet") -> np.ndarray:
    """(256, 3) uint8 lookup table of a colour map (one of COLORMAPS)."""
    if name not in _ANCHORS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    anchors = np.asarray(_ANCHORS[name], dtype=np.float64)
    positions = np.linspace(0, 1, len(anchors))
    levels = np.linspace(0, 1, 256)
    channels = [np.interp(levels, positions, anchors[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=1)).astype(np.uint8)


def colorize(values: np.ndarray | torch.Tensor, colormap: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] → (H, W, 3) uint8 RGB through a colour map (values outside are clipped)."""
    array = np.asarray(
        values.detach().cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float32
    )
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {array.shape}")
    index = np.rint(np.clip(np.nan_to_num(array), 0, 1) * 255).astype(np.uint8)
    return colormap_table(colormap)[index]


def as_rgb_array(image: Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
    """A PIL image, an (H, W) / (H, W, 3) uint8 array, or a (C, H, W) uint8 tensor → (H, W, 3) uint8."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.ndim != 3:
            raise ValueError(f"expected a (C, H, W) image tensor, got shape {list(tensor.shape)}")
        image = tensor.permute(1, 2, 0).numpy()
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got {array.shape}")
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def heatmap_overlay(
    image: Image.Image | np.ndarray | torch.Tensor,
    heatmap: np.ndarray | torch.Tensor,
    opacity: float = 0.5,
    colormap: str = "jet",
) -> np.ndarray:
    """(H, W, 4) uint8 RGBA: the image blended with the coloured heatmap (resized to the image, bilinear);
    opacity 0 shows only the image, 1 only the heatmap."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    rgb = as_rgb_array(image)
    heat = torch.as_tensor(
        np.asarray(heatmap, dtype=np.float32) if not isinstance(heatmap, torch.Tensor) else heatmap
    )
    heat = heat.detach().float().cpu()
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D heatmap, got shape {list(heat.shape)}")
    if heat.shape != rgb.shape[:2]:
        heat = F.interpolate(heat[None, None], size=rgb.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    colours = colorize(heat, colormap).astype(np.float32)
    blended = (1 - opacity) * rgb.astype(np.float32) + opacity * colours
    alpha = np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)
    return np.concatenate([np.rint(blended).clip(0, 255).astype(np.uint8), alpha], axis=2)


def tile_grid(
    tiles: torch.Tensor,
    *,
    columns: int | None = None,
    tile_size: int | None = None,
    padding: int = 1,
    colormap: str | None = None,
) -> np.ndarray:
    """(N, C, h, w) tiles with values in [0, 1] (C = 1 or 3) → one (H, W, 3) uint8 mosaic.

    columns: tiles per row (default: about square); tile_size: enlarge each tile to this side, nearest
    neighbour, so 3×3 kernels stay crisp; colormap: colour single-channel tiles (feature maps as heatmaps).
    """
    if tiles.ndim != 4 or tiles.shape[1] not in (1, 3) or len(tiles) == 0:
        raise ValueError(f"expected (N, 1 or 3, h, w) tiles, got shape {list(tiles.shape)}")
    tiles = tiles.detach().float().cpu().clamp(0, 1)
    if tile_size is not None and tile_size != tiles.shape[-1]:
        scale = tile_size / max(tiles.shape[-2:])
        size = (max(1, round(tiles.shape[-2] * scale)), max(1, round(tiles.shape[-1] * scale)))
        tiles = F.interpolate(tiles, size=size, mode="nearest")
    if colormap is not None and tiles.shape[1] == 1:
        table = torch.from_numpy(colormap_table(colormap)).float() / 255
        tiles = table[(tiles[:, 0] * 255).round().long()].permute(0, 3, 1, 2)
    columns = columns or max(1, int(np.ceil(np.sqrt(len(tiles)))))
    grid = make_grid(tiles, nrow=columns, padding=padding, pad_value=1.0)
    return (grid.mul(255).round().byte().permute(1, 2, 0).numpy()).copy()


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write an (H, W, 3) RGB or (H, W, 4) RGBA uint8 array as a PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
