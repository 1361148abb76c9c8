"""Feature maps through forward hooks: the shapes the summary promises, honest statistics, every zoo model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from workbench.engine.errors import ModelError
from workbench.engine.inspection import (
    Inspector,
    conv_feature_maps,
    conv_kernels,
    feature_maps,
    grad_cam,
    layer_tree,
)
from workbench.engine.models import build_model, list_models, summarize
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def inspector(fmnist_folder, tmp_path_factory) -> Inspector:
    """course_cnn trained one epoch on real Fashion-MNIST PNGs, loaded for inspection."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("maps-home")))
        config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32, seed=0)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return Inspector.load(Path(finished.checkpoint).parent.parent)  # the run folder


@pytest.fixture(scope="module")
def sneaker(fmnist_folder) -> Path:
    return sorted((Path(fmnist_folder) / "test" / "Sneaker").glob("*.png"))[0]


def test_tree_and_feature_maps_have_the_shapes_the_summary_promises(inspector, sneaker):
    summary = summarize(inspector.model, img_size=28, in_channels=1)
    tree = inspector.layer_tree()
    nodes = {node.name: node for node in tree.walk()}
    for layer in summary.layers:
        assert nodes[layer.name].output_shape == layer.output_shape, layer.name
        maps = inspector.feature_maps(sneaker, layer.name)
        assert maps.output_shape == layer.output_shape, layer.name
    assert [n.kind for n in tree.find("features").children] == ["conv", "norm", "activation", "pool"] * 2
    assert tree.find("classifier.2").kind == "dense" and tree.find("features").kind == "block"
    assert tree.params == sum(p.numel() for p in inspector.model.parameters())
    dense = inspector.feature_maps(sneaker, "classifier.2")
    assert dense.activation.shape == (10, 1, 1)  # ten class scores, shown as ten 1×1 channels


def test_conv_feature_maps_cover_every_convolution_in_one_pass(inspector, sneaker):
    maps = inspector.conv_feature_maps(sneaker)
    assert [m.layer for m in maps] == ["features.0", "features.4"]
    assert [list(m.activation.shape) for m in maps] == [[16, 28, 28], [32, 14, 14]]
    x = inspector.normalize(inspector.load_image(sneaker))
    with torch.no_grad():
        expected = inspector.model.features[0](x)[0]
    assert torch.allclose(maps[0].activation, expected, atol=1e-6)


def test_channel_statistics_and_ordering(inspector, sneaker):
    maps = inspector.feature_maps(sneaker, "features.2")  # after ReLU: many exact zeros
    flat = maps.activation.flatten(1)
    assert torch.equal(maps.min, flat.min(dim=1).values) and torch.equal(maps.max, flat.max(dim=1).values)
    assert torch.allclose(maps.mean, flat.mean(dim=1))
    assert torch.allclose(maps.fraction_zero, (flat == 0).sum(dim=1) / flat.shape[1])
    assert maps.fraction_zero.max() > 0
    order = maps.order()
    assert sorted(order) == list(range(16))
    means = maps.mean[order]
    assert torch.all(means[:-1] >= means[1:])
    info = maps.channel(order[0])
    assert info.mean == pytest.approx(maps.mean.max().item()) and info.map.shape == (28, 28)
    normalized = maps.normalized()
    assert normalized.min() >= 0 and normalized.max() <= 1
    live = maps.max > maps.min
    assert torch.allclose(normalized.flatten(1)[live].amax(dim=1), torch.ones(int(live.sum())))
    with pytest.raises(ModelError, match="16 channels, not channel 16"):
        maps.channel(16)


def test_maps_are_copied_before_an_in_place_activation_rewrites_them():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Conv2d(4, 2, 3), nn.ReLU(inplace=True)
    )
    x = torch.randn(1, 8, 8)
    maps = feature_maps(model, x, "0")
    with torch.no_grad():
        expected = model[0](x[None])[0]
    assert maps.min.min() < 0  # the convolution's own output, negative values and all
    assert torch.allclose(maps.activation, expected)


def test_flip_and_shift_move_the_image(inspector, sneaker):
    pixels = inspector.load_image(sneaker)
    assert pixels.dtype == torch.uint8 and pixels.shape == (1, 28, 28)
    assert torch.equal(inspector.load_image(sneaker, flip=True), pixels.flip(-1))
    shifted = inspector.load_image(sneaker, shift=(3, 2))
    assert torch.equal(shifted[:, 2:, 3:], pixels[:, :-2, :-3])
    assert shifted[:, :2, :].sum() == 0 and shifted[:, :, :3].sum() == 0
    moved = inspector.feature_maps(pixels.flip(-1), "features.0").activation
    assert not torch.allclose(moved, inspector.feature_maps(pixels, "features.0").activation)


def test_bad_layer_or_image_is_a_clear_error(inspector, sneaker):
    with pytest.raises(ModelError, match="no layer named 'features.99'"):
        inspector.feature_maps(sneaker, "features.99")
    with pytest.raises(ModelError, match=r"uint8 image tensor of shape \[1, 28, 28\]"):
        inspector.feature_maps(torch.zeros(3, 28, 28, dtype=torch.uint8), "features.0")


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_zoo_model_can_be_inspected_at_its_minimum_size(name):
    """Untrained weights suffice: the tree's shapes match the summary's, every convolution gives finite maps,
    the first kernels can be drawn and Grad-CAM returns a [0, 1] heatmap at the input's size."""
    torch.manual_seed(0)
    size = next(spec.min_size for spec in list_models() if spec.name == name)
    model = build_model(name, 4, 3).eval()
    x = torch.randn(3, size, size)

    tree = layer_tree(model, size, 3)
    shapes = {node.name: node.output_shape for node in tree.walk()}
    for layer in summarize(model, img_size=size, in_channels=3).layers:
        assert shapes[layer.name] == layer.output_shape, layer.name

    maps = conv_feature_maps(model, x)
    assert len(maps) == sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert all(torch.isfinite(m.activation).all() for m in maps)

    tiles = conv_kernels(model).color_tiles()
    assert tiles.shape[1] == 3 and tiles.min() >= 0 and tiles.max() <= 1

    cam = grad_cam(model, x)
    assert cam.heatmap.shape == (size, size)
    assert torch.isfinite(cam.heatmap).all() and cam.heatmap.min() >= 0 and cam.heatmap.max() <= 1
    assert not cam.layer.lower().startswith("aux")


def test_a_run_gives_its_best_or_with_latest_its_newest_checkpoint(inspector):
    run_dir = inspector.checkpoint.parent.parent
    assert inspector.checkpoint.name == "best.pt"
    newest = Inspector.load(run_dir, latest=True)
    assert newest.checkpoint == run_dir / "checkpoints" / "last.pt"
    assert newest.classes == inspector.classes
    assert (
        Inspector.load(inspector.checkpoint, latest=True).checkpoint == inspector.checkpoint
    )  # a file as given


def test_a_module_the_model_reuses_says_how_often_it_runs_and_lite_reuses_none():
    """torchvision's ResNet block runs one ReLU twice: its node counts the calls (the views say which call
    they show). EfficientNet-Lite has a module per use, so its `_act` is the head's 1280 maps and its
    `_avg_pooling` the head's pooling, not the stem's activation or the first tap's (as a user saw)."""
    resnet = layer_tree(build_model("resnet18", 10, 3), 64, 3)
    assert resnet.find("layer1.0.relu").calls == 2 and resnet.find("layer1.0.conv1").calls == 1
    lite = build_model("efficientnet_lite0", 10, 1, taps=[2, 4])
    tree = layer_tree(lite, 96, 1)
    assert all(node.calls <= 1 for node in tree.walk() if node.name)
    assert tree.find("_act").output_shape == [1280, 3, 3]
    assert tree.find("_avg_pooling").output_shape == [1280, 1, 1]
    assert tree.find("_stem_act").output_shape == [32, 48, 48]
    block = tree.find("_blocks.1")  # expands: its two activations are two modules
    assert block.find("_blocks.1._expand_act").output_shape[0] == block.find("_blocks.1._act").output_shape[0]
    assert [node.name for node in tree.walk() if node.name.endswith("_expand_act")][0] == "_blocks.1._expand_act"
