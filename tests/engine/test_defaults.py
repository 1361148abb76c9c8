from workbench.engine.training.config import AugmentConfig, TrainConfig
from workbench.engine.training.defaults import resolve_defaults


def test_small_grey_images_get_a_small_model_at_their_own_size():
    config, notes = resolve_defaults(
        TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=60000
    )
    assert config.img_size == 28 and config.channels == 1
    assert config.model is not None and config.epochs is not None and config.lr is not None
    assert any(config.model in note for note in notes)


def test_tiny_images_are_upscaled_to_the_model_minimum():
    config, notes = resolve_defaults(
        TrainConfig(data="x", model="resnet18"), typical_size=8, channels=3, num_train_images=100
    )
    from workbench.engine.models import get_spec

    assert config.img_size == get_spec("resnet18").min_size > 8
    assert any("upscaled" in note for note in notes)


def test_user_choices_are_kept():
    chosen = TrainConfig(
        data="x",
        model="course_cnn",
        img_size=40,
        channels=3,
        epochs=3,
        lr=0.01,
        augment=AugmentConfig(crop_padding=4, flip=False),
    )
    config, _ = resolve_defaults(chosen, typical_size=28, channels=1, num_train_images=1000)
    assert (config.model, config.img_size, config.channels, config.epochs, config.lr) == (
        "course_cnn",
        40,
        3,
        3,
        0.01,
    )
    assert config.augment == AugmentConfig(crop_padding=4, flip=False)
    assert chosen.model == "course_cnn" and TrainConfig().model is None  # the input was not mutated


def test_short_scratch_runs_skip_shift_augmentation():
    # 6,000 images train from scratch (the 2-epoch measurement's size); fewer would fine-tune a pretrained
    # network, whose augmentation is chosen from its input side instead (test_few_shot_policy.py)
    short, _ = resolve_defaults(
        TrainConfig(data="x", epochs=2), typical_size=28, channels=1, num_train_images=6_000
    )
    long, _ = resolve_defaults(
        TrainConfig(data="x", epochs=20), typical_size=28, channels=1, num_train_images=6_000
    )
    assert not short.pretrained and not long.pretrained
    assert short.augment.crop_padding == 0 and long.augment.crop_padding > 0
    assert short.augment.flip and long.augment.flip


def test_config_round_trips_through_toml(tmp_path):
    config = TrainConfig(
        data="/data/shoes",
        model="resnet18_small",
        epochs=7,
        lr=0.02,
        grad_clip=1.0,
        augment=AugmentConfig(crop_padding=4, flip=False, brightness=0.2),
        model_args={"width": 2},
    )
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml())
    assert TrainConfig.from_toml(path) == config


def test_bad_toml_names_the_file_and_the_problem(tmp_path):
    import pytest

    from workbench.engine.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('epochs = "many"\n')
    with pytest.raises(ConfigError, match="bad.toml"):
        TrainConfig.from_toml(bad)
    bad.write_text("epochs = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        TrainConfig.from_toml(bad)
    bad.write_text("epochz = 3\n")
    with pytest.raises(ConfigError, match="epochz"):
        TrainConfig.from_toml(bad)


def test_the_plan_counts_the_steps_the_trainer_takes():
    """9 training images in a batch of 16: one step an epoch (they fit in one batch), not "0 steps"."""
    import torch

    from workbench.engine.data import BatchIterator
    from workbench.engine.data.batches import drops_last_batch, training_steps

    images = torch.zeros(9, 1, 28, 28, dtype=torch.uint8)
    for count, batch in ((9, 16), (40, 16), (48, 16), (200, 128)):
        batches = BatchIterator(images[:1].expand(count, -1, -1, -1), torch.zeros(count, dtype=torch.long), batch,
                                shuffle=True, device="cpu", mean=[0.5], std=[0.5],
                                drop_last=drops_last_batch(count, batch))  # fmt: skip
        assert training_steps(count, batch) == len(batches) == sum(1 for _ in batches)
    config, notes = resolve_defaults(TrainConfig(data="x", epochs=10), typical_size=28, channels=1, num_train_images=9)
    assert any("10 epochs: 10 steps" in str(note) for note in notes), notes
