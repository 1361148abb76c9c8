"""Kernels as pictures: first-layer tiles, deeper kernels per input channel, and the mosaic they are drawn in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.inspection import Inspector, conv_kernels, save_png, tile_grid
from workbench.engine.models import build_model
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(fmnist_folder, tmp_path_factory) -> nn.Module:
    """course_cnn trained one epoch on real Fashion-MNIST PNGs (one grey input channel)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("filters-home")))
        config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32, seed=0)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return Inspector.load(finished.checkpoint).model


def test_first_layer_kernels_are_the_trained_weights_as_grey_tiles(trained):
    kernels = conv_kernels(trained)
    assert kernels.layer == "features.0" and kernels.groups == 1
    assert torch.equal(kernels.weight, trained.features[0].weight.detach())
    tiles = kernels.color_tiles()
    assert tiles.shape == (16, 1, 5, 5)
    flat = tiles.flatten(1)
    assert torch.allclose(flat.amin(dim=1), torch.zeros(16)) and torch.allclose(
        flat.amax(dim=1), torch.ones(16)
    )
    # Stretching keeps each kernel's ordering: its largest weight is its brightest pixel.
    weights = kernels.weight.flatten(1)
    assert torch.equal(weights.argmax(dim=1), flat.argmax(dim=1))


def test_rgb_first_layer_gives_colour_tiles():
    torch.manual_seed(0)
    kernels = conv_kernels(build_model("resnet18_small", 10, 3))
    tiles = kernels.color_tiles()
    assert kernels.layer == "conv1" and tiles.shape == (64, 3, 3, 3)
    assert tiles.min() == 0 and tiles.max() == 1
    assert not torch.allclose(tiles[:, 0], tiles[:, 1])  # the channels differ: a real colour image


def test_deeper_kernels_per_input_channel_on_a_shared_symmetric_scale(trained):
    kernels = conv_kernels(trained, "features.4")
    assert kernels.weight.shape == (32, 16, 5, 5) and kernels.in_channels == 16
    tiles = kernels.channel_tiles()
    largest = kernels.weight.abs().max()
    assert torch.allclose(tiles, kernels.weight / (2 * largest) + 0.5)
    assert tiles.min() >= 0 and tiles.max() <= 1
    extreme = tiles.flatten()[kernels.weight.abs().flatten().argmax()].item()
    assert min(abs(extreme), abs(extreme - 1)) < 1e-6  # the largest |weight| is black or white
    assert torch.equal(kernels.channel_tiles(kernel=3), tiles[3])
    with pytest.raises(ModelError, match="32 kernels, not kernel 32"):
        kernels.channel_tiles(kernel=32)


def test_zero_weight_is_mid_grey():
    conv = nn.Conv2d(2, 1, 3)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = -2.0
    tiles = conv_kernels(nn.Sequential(conv)).channel_tiles()
    assert tiles[0, 1].unique().tolist() == [0.5] and tiles[0, 0, 1, 1] == 0.0


def test_not_a_convolution_is_a_clear_error(trained):
    with pytest.raises(ModelError, match="features.1 is a BatchNorm2d, not a 2-D convolution"):
        conv_kernels(trained, "features.1")
    with pytest.raises(ModelError, match="no layer named 'conv9'"):
        conv_kernels(trained, "conv9")


def test_tile_grid_lays_out_and_saves_a_real_png(trained, tmp_path):
    tiles = conv_kernels(trained).color_tiles()
    grid = tile_grid(tiles, columns=4, tile_size=10, padding=1)
    assert grid.shape == (4 * 10 + 5, 4 * 10 + 5, 3) and grid.dtype == np.uint8
    # The first tile, enlarged ×2 (nearest), sits one padding pixel in from the corner.
    first = (tiles[0, 0] * 255).round().byte().numpy()
    assert np.array_equal(grid[1:11:2, 1:11:2, 0], first)
    coloured = tile_grid(tiles, columns=4, colormap="viridis")
    assert not np.array_equal(coloured[..., 0], coloured[..., 2])
    path = tmp_path / "filters.png"
    save_png(grid, path)
    assert np.array_equal(np.asarray(Image.open(path)), grid)
    with pytest.raises(ValueError, match="expected"):
        tile_grid(torch.zeros(4, 2, 3, 3))
