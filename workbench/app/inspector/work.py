"""The inspector's worker-thread half: calls the engine's `Inspector` and turns its answers into ready-made
pictures (NumPy RGB arrays), so the UI thread only wraps them in pixmaps. Nothing here touches a widget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MAX_TILES = 1024  # a dense layer can have thousands of outputs; more tiles than this only slow the grid
KERNEL_TILE = 36
DEEP_KERNELS_SHOWN = 16
COLORMAP = "viridis"


@dataclass(frozen=True)
class ImageRequest:
    """Which image, augmented how: the same for every question the inspector asks."""

    path: str
    flip: bool = False
    shift: tuple[int, int] = (0, 0)


@dataclass
class LayerPictures:
    layer: str
    type: str
    output_shape: list[int]
    channels: int  # all channels of the layer
    order: list[int]  # channel indices, largest mean activation first (the tiles' order)
    tiles: list[np.ndarray]  # (h, w, 3) uint8, per-channel normalized heatmaps in `order`, at most MAX_TILES
    stats: dict[int, tuple[float, float, float, float]]  # channel → min, max, mean, fraction zero
    input_rgb: np.ndarray  # the image as the model sees it
    maps: Any  # the FeatureMaps
    normalized: Any  # (C, H, W) tensor in [0, 1] as the tiles show it, for enlarging a channel


@dataclass(frozen=True)
class LoadedRun:
    """What the inspector needs of a run to show something at once: the model, its layer tree, an image of the
    run's own dataset to look at until the user picks one, and that dataset's folder (for the image dialog)."""

    inspector: Any
    tree: Any
    sample_image: str | None
    dataset_folder: str | None


def load_inspector(run_ref: str, latest: bool) -> LoadedRun:
    from workbench.engine.inspection.inspector import Inspector

    inspector = Inspector.load(run_ref, latest=latest)
    sample, folder = run_sample_image(inspector.checkpoint)
    return LoadedRun(inspector, inspector.layer_tree(), sample, folder)


def run_sample_image(checkpoint: Any) -> tuple[str | None, str | None]:
    """(the first test image of the run's dataset, else its first validation or training image; the dataset's
    first root), read from the run's dataset.json; (None, None) for a bare checkpoint file or an older run."""
    import json
    import os
    from pathlib import Path

    if checkpoint is None:
        return None, None
    try:
        index = json.loads((Path(checkpoint).parent.parent / "dataset.json").read_text())
        paths, splits, roots = index["paths"], index["splits"], index.get("roots") or [None]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None
    for wanted in ("test", "val", "train"):
        for path, split in zip(paths, splits, strict=False):
            if split == wanted and os.path.isfile(path):
                return path, roots[0]
    return None, roots[0]


def input_rgb(inspector: Any, request: ImageRequest) -> np.ndarray:
    from workbench.engine.inspection.overlay import as_rgb_array

    return as_rgb_array(inspector.load_image(request.path, flip=request.flip, shift=request.shift))


def layer_pictures(inspector: Any, request: ImageRequest, layer: str) -> LayerPictures:
    from workbench.engine.inspection.overlay import colorize

    maps = inspector.feature_maps(request.path, layer, flip=request.flip, shift=request.shift)
    order = maps.order("mean")
    normalized = display_normalized(maps)
    tiles = [colorize(normalized[index], COLORMAP) for index in order[:MAX_TILES]]
    stats = {
        index: (
            maps.min[index].item(),
            maps.max[index].item(),
            maps.mean[index].item(),
            maps.fraction_zero[index].item(),
        )
        for index in order
    }
    return LayerPictures(
        layer=layer,
        type=maps.type,
        output_shape=list(maps.output_shape),
        channels=maps.num_channels,
        order=order,
        tiles=tiles,
        stats=stats,
        input_rgb=input_rgb(inspector, request),
        maps=maps,
        normalized=normalized,
    )


def display_normalized(maps: Any) -> Any:
    """Per-channel min..max for spatial maps; a dense layer's 1×1 "maps" are constant, so they share one
    scale across the layer instead (otherwise every tile would be the same colour)."""
    if maps.activation.shape[-2:] != (1, 1):
        return maps.normalized()
    low, high = maps.activation.min(), maps.activation.max()
    if high <= low:
        return maps.activation * 0
    return (maps.activation - low) / (high - low)


def channel_picture(pictures: LayerPictures, channel: int) -> np.ndarray:
    from workbench.engine.inspection.overlay import colorize

    return colorize(pictures.normalized[channel], COLORMAP)


@dataclass
class FilterPictures:
    first_layer: str
    first_tiles: np.ndarray  # mosaic of the first convolution's kernels, RGB (or grey) tiles
    first_count: int
    layer: str | None  # a deeper convolution, one row per kernel, one tile per input channel
    deep_tiles: np.ndarray | None
    deep_shape: tuple[int, int] | None  # kernels shown, input channels per kernel


def filter_pictures(inspector: Any, layer: str | None) -> FilterPictures:
    from workbench.engine.errors import ModelError
    from workbench.engine.inspection.overlay import tile_grid

    first = inspector.kernels()
    first_tiles = tile_grid(first.color_tiles(), tile_size=KERNEL_TILE, padding=2)
    deep = deep_tiles = deep_shape = None
    if layer and layer != first.layer:
        try:
            deep = inspector.kernels(layer)
        except ModelError:
            deep = None  # not a convolution: only the first layer's filters apply
    if deep is not None:
        shown = min(deep.num_kernels, DEEP_KERNELS_SHOWN)
        inputs = min(deep.in_channels, 32)
        tiles = deep.channel_tiles()[:shown, :inputs].reshape(shown * inputs, 1, *deep.weight.shape[-2:])
        deep_tiles = tile_grid(tiles, columns=inputs, tile_size=KERNEL_TILE // 2, padding=1, colormap="gray")
        deep_shape = (shown, inputs)
    return FilterPictures(
        first.layer, first_tiles, first.num_kernels, deep.layer if deep else None, deep_tiles, deep_shape
    )


@dataclass
class CamResult:
    class_index: int
    class_name: str
    probability: float
    layer: str
    heatmap: Any  # (H, W) tensor in [0, 1]
    input_rgb: np.ndarray


def grad_cam(inspector: Any, request: ImageRequest, class_index: int | None) -> CamResult:
    cam = inspector.grad_cam(request.path, class_index, flip=request.flip, shift=request.shift)
    return CamResult(
        class_index=cam.class_index,
        class_name=inspector.classes[cam.class_index],
        probability=cam.probabilities[cam.class_index].item(),
        layer=cam.layer,
        heatmap=cam.heatmap,
        input_rgb=input_rgb(inspector, request),
    )


def cam_overlay(result: CamResult, opacity: float) -> np.ndarray:
    from workbench.engine.inspection.overlay import heatmap_overlay

    return heatmap_overlay(result.input_rgb, result.heatmap, opacity, "jet")
