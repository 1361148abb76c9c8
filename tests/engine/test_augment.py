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
