"""Batched augmentation: shapes, each transform really happens, identity when off, reproducible per seed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from workbench.engine.data import BatchAugmenter
from workbench.engine.training.config import AugmentConfig

OFF = dict(crop_padding=0, flip=False, brightness=0.0, contrast=0.0)


def batch(n: int = 32, channels: int = 3, size: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, channels, size, size), generator=torch.Generator().manual_seed(seed))


def seeded(config: AugmentConfig, seed: int = 0) -> BatchAugmenter:
    return BatchAugmenter(config, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "config",
    [
        AugmentConfig(),
        AugmentConfig(crop_padding=4, flip=True, brightness=0.3, contrast=0.3),
        AugmentConfig.parse("none"),
    ],
)
def test_shape_dtype_and_range_are_kept(config):
    x = batch()
    out = seeded(config)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert out.min() >= 0 and out.max() <= 1


def test_no_augmentation_is_the_identity():
    x = batch()
    augmenter = seeded(AugmentConfig.parse("none"))
    assert not augmenter.active
    assert augmenter(x) is x


def test_flip_really_flips_about_half_the_images():
    x = batch(n=64)
    out = seeded(AugmentConfig(**{**OFF, "flip": True}))(x)
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 <= sum(flipped) <= 48


def test_translate_shifts_each_image_within_the_padding():
    x = batch(n=16, size=10)
    pad = 2
    out = seeded(AugmentConfig(**{**OFF, "crop_padding": pad}))(x)
    padded = F.pad(x, (pad,) * 4, mode="reflect")
    shifts = []
    for k in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(out[k], padded[k, :, dy : dy + 10, dx : dx + 10])
        ]
        assert len(found) == 1, f"image {k} is not a shifted crop of its input"
        shifts.append(found[0])
    assert len(set(shifts)) > 3  # different images get different shifts


def test_brightness_scales_each_image_by_one_factor_in_range():
    x = batch() * 0.5  # low values: no clamping at 1 hides the factor
    out = seeded(AugmentConfig(**{**OFF, "brightness": 0.4}))(x)
    ratios = out.flatten(1) / x.flatten(1).clamp_min(1e-6)
    factors = ratios[:, 0]
    assert torch.allclose(ratios, factors[:, None].expand_as(ratios), atol=1e-4)
    assert (factors >= 0.6 - 1e-5).all() and (factors <= 1.4 + 1e-5).all()
    assert factors.std() > 0.05


def test_contrast_keeps_the_mean_and_changes_the_spread():
    x = 0.4 + batch() * 0.2  # mid-grey with little spread: no clamping
    out = seeded(AugmentConfig(**{**OFF, "contrast": 0.5}))(x)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5)
    spread = out.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert (spread >= 0.5 - 1e-4).all() and (spread <= 1.5 + 1e-4).all() and spread.std() > 0.05


def test_same_seed_same_augmentation_other_seed_other():
    config = AugmentConfig(crop_padding=3, flip=True, brightness=0.2, contrast=0.2)
    x = batch()
    assert torch.equal(seeded(config, 7)(x), seeded(config, 7)(x))
    assert not torch.equal(seeded(config, 7)(x), seeded(config, 8)(x))


def test_padding_larger_than_the_image_is_limited_not_an_error():
    x = batch(n=4, size=3)
    out = seeded(AugmentConfig(**{**OFF, "crop_padding": 10}))(x)
    assert out.shape == x.shape


def test_integer_batches_are_refused():
    with pytest.raises(ValueError, match="float"):
        seeded(AugmentConfig())(torch.zeros((2, 1, 4, 4), dtype=torch.uint8))


def test_zoom_enlarges_each_image_within_the_range_and_keeps_it_centred():
    # A bright square in the middle of a dark image: zoom in by s ∈ [1, 1/(1 - zoom)] makes it s² times
    # larger; without shifts it stays centred, and no image comes out smaller than it went in.
    size, side = 64, 16
    x = torch.zeros(64, 1, size, size)
    x[:, :, 24:40, 24:40] = 1.0
    out = seeded(AugmentConfig(**{**OFF, "zoom": 0.3}))(x)
    area = out.sum(dim=(1, 2, 3)) / side**2  # bilinear edges keep the mass: area ratio = s²
    assert area.min() >= 0.99 and area.max() <= 1 / 0.7**2 + 0.02
    assert area.max() > 1.5 and area.std() > 0.1  # zoomed, each by its own factor
    columns = torch.arange(size, dtype=torch.float32)
    centre = (out.sum(dim=(1, 2)) * columns).sum(1) / out.sum(dim=(1, 2, 3))
    assert torch.allclose(centre, torch.full_like(centre, (size - 1) / 2), atol=0.05)


def test_zoom_with_shift_moves_each_image_by_at_most_the_padding():
    size, padding = 64, 6
    x = torch.zeros(200, 1, size, size)
    x[:, :, 28:36, 28:36] = 1.0
    out = seeded(AugmentConfig(**{**OFF, "zoom": 0.1, "crop_padding": padding}))(x)
    columns = torch.arange(size, dtype=torch.float32)
    centre = (out.sum(dim=(1, 2)) * columns).sum(1) / out.sum(dim=(1, 2, 3))
    moved = (centre - (size - 1) / 2).abs()
    # A shift of t pixels of the sampled area moves the content t / s pixels on screen (s ≥ 0.9).
    assert moved.max() <= padding / 0.9 + 0.05 and moved.max() > padding / 2


def test_zoom_is_parsed_validated_and_described():
    from workbench.engine.errors import ConfigError
    from workbench.engine.training.config import TrainConfig
    from workbench.engine.training.defaults import describe_augment

    parsed = AugmentConfig.parse("flip,crop=4,zoom=0.2")
    assert (parsed.flip, parsed.crop_padding, parsed.zoom) == (True, 4, 0.2)
    assert "zoom in up to 20%" in describe_augment(parsed)
    with pytest.raises(ConfigError, match="augment.zoom"):
        TrainConfig(data=["x"], augment=AugmentConfig(zoom=1.5)).validate()
