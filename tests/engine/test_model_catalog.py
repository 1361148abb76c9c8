"""The engine's model catalog: published ImageNet figures, depth, weights on disk, trainable vs frozen
parameters per strategy, the default model for a dataset and the measured, cached speed."""

from __future__ import annotations

import torch

from workbench.engine.models import build_model, catalog
from workbench.engine.training.defaults import FEW_IMAGES, PRETRAINED_SIZES, offline_weights_installed


def test_published_metrics_come_from_the_weights_metadata():
    resnet = catalog.published_metrics("resnet18")
    assert resnet.top1 == 69.758 and resnet.top5 == 89.078  # torchvision's ResNet18_Weights.IMAGENET1K_V1
    assert 40 < resnet.weights_mb < 50
    assert catalog.published_metrics("lenet5") == catalog.PublishedMetrics(None, None, None, "")
    lite = catalog.published_metrics("efficientnet_lite0")
    assert lite.top1 == 75.1 and lite.top5 is None and "TensorFlow" in lite.source


def test_depth_counts_layers_with_weights():
    with torch.device("meta"):
        assert catalog.depth(build_model("resnet18", 10, 3)) == 21  # 20 convolutions + the classifier
        assert catalog.depth(build_model("lenet5", 10, 1)) == 5  # 2 convolutions + 3 fully connected


def test_weights_location_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert catalog.weights_location("lenet5") is None  # no ImageNet weights at all
    assert catalog.weights_location("resnet18") is None  # would need a download: not on disk
    assert not (tmp_path / "torch").exists()
    if offline_weights_installed():
        assert catalog.weights_location("efficientnet_lite0").is_file()  # shipped in a package


def test_parameter_split_follows_the_strategy():
    total = 3_383_242  # efficientnet_lite0 for 10 classes, 1 channel
    trainable, frozen, text = catalog.parameter_split(
        "efficientnet_lite0", 1, 10, strategy="feature-extractor", pretrained=True
    )
    assert trainable + frozen == total and 0 < trainable < 20_000 and "feature extractor" in text
    trainable, frozen, _ = catalog.parameter_split("efficientnet_lite0", 1, 10, strategy="fine-tune-all")
    assert (trainable, frozen) == (total, 0)
    top, _frozen, _ = catalog.parameter_split(
        "efficientnet_lite0", 1, 10, strategy="fine-tune-top", pretrained=True, unfreeze=2
    )
    assert 12_810 < top < total
    stage1, _frozen, text = catalog.parameter_split("efficientnet_lite0", 1, 10, linear_probe=True)
    # The head reads 1280 features, the average and maximum of every block (2 × 1808), the last maximum and
    # the maximum of every block's inner features (8,960 = 32 + 6 × the 15 other blocks' 1,488 inputs).
    assert stage1 == (1280 + 2 * 1808 + 1280 + 8960) * 10 + 10 and "stage 1" in text
    # Stage 2 keeps the 13,856 tap columns of the 10-class head at zero: the count the run's log gives too.
    assert "stage 2 then fine-tunes 3,383,242 of 3,521,802 (the head's 138,560 tap weights stay at zero)" in text


def test_default_choice_is_the_one_resolve_defaults_makes():
    many = catalog.default_choice(28, 1, 60_000)
    assert many.model == "compact_vgg" and not many.pretrained
    few = catalog.default_choice(28, 1, FEW_IMAGES - 1)
    if offline_weights_installed():
        assert few.model == "efficientnet_lite0" and few.pretrained and few.linear_probe
    assert any(note.startswith(f"model {few.model}") for note in few.notes)


def test_speed_is_measured_once_and_cached_on_disk():
    assert catalog.cached_ms_per_image("lenet5", 28, 1) is None
    ms = catalog.ms_per_image("lenet5", 28, 1)
    assert ms > 0
    assert catalog.cached_ms_per_image("lenet5", 28, 1) == ms
    assert (catalog._speed_cache_path()).is_file()


def test_a_users_own_pick_trains_at_the_side_its_spec_gives_or_a_pretrained_side():
    """The model picker's Input column (ModelSpec.input_size_for) is the side resolve_defaults picks for a
    model the user chose from scratch; ImageNet weights make it a pretrained side instead (never 28 px)."""
    from workbench.engine.models import get_spec

    for name, side in (("efficientnet_lite0", 28), ("lenet5", 28), ("vgg11", 300), ("compact_vgg", 48)):
        chosen = catalog.default_choice(side, 1, 200, model=name, pretrained=False)
        assert chosen.img_size == get_spec(name).input_size_for(side) and not chosen.linear_probe
    assert catalog.default_choice(28, 1, 200, model="efficientnet_lite0").img_size == 32  # its minimum
    assert catalog.default_choice(48, 3, 200, model="compact_vgg").img_size == 28  # what it is made for
    assert catalog.default_choice(48, 3, 200).img_size != 28  # the engine's own choice: not capped so
    pretrained = catalog.default_choice(28, 1, 200, model="efficientnet_lite0", pretrained=True)
    assert pretrained.img_size in PRETRAINED_SIZES and pretrained.model_args["taps"]
