"""The hot loop's data source: every sample once per epoch, correct normalization, deterministic, sharded."""

from __future__ import annotations

import pytest
import torch

from workbench.engine.data import BatchIterator, channel_mean_std, load_decoded, scan_dataset
from workbench.engine.data import stats as stats_module
from workbench.engine.training.config import AugmentConfig


def numbered(n: int, channels: int = 1, size: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i (mod 256) and labelled i, so batches can be traced back."""
    images = (torch.arange(n, dtype=torch.int64) % 256).to(torch.uint8).view(n, 1, 1, 1)
    return images.expand(n, channels, size, size).contiguous(), torch.arange(n)


def iterate(**kwargs) -> BatchIterator:
    images, labels = numbered(kwargs.pop("n", 50), kwargs.pop("channels", 1))
    defaults = dict(shuffle=True, device="cpu", mean=[0.0], std=[1.0])
    return BatchIterator(images, labels, kwargs.pop("batch_size", 8), **{**defaults, **kwargs})


def seen(batches: BatchIterator) -> list[int]:
    return [int(label) for _, labels in batches for label in labels]


def test_every_sample_once_per_epoch_in_a_new_order_each_epoch():
    batches = iterate(n=50, batch_size=8)
    first = seen(batches)
    batches.set_epoch(1)
    second = seen(batches)

    assert len(batches) == 7
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second and first != list(range(50))


def test_same_seed_and_epoch_give_the_same_order():
    a, b = iterate(seed=3), iterate(seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert seen(a) == seen(b)
    assert seen(iterate(seed=4)) != seen(iterate(seed=3))


def test_without_shuffle_the_order_is_the_stored_order_and_drop_last_drops_the_tail():
    assert seen(iterate(n=20, shuffle=False, batch_size=6)) == list(range(20))
    dropped = iterate(n=20, shuffle=False, batch_size=6, drop_last=True)
    assert len(dropped) == 3 and seen(dropped) == list(range(18))


def test_images_are_normalized_and_match_their_labels():
    batches = iterate(n=30, channels=3, mean=[0.1, 0.2, 0.3], std=[0.5, 0.25, 2.0])
    for x, y in batches:
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        raw = (y.float() / 255).view(-1, 1, 1, 1)
        expected = torch.cat([(raw - m) / s for m, s in ((0.1, 0.5), (0.2, 0.25), (0.3, 2.0))], dim=1)
        assert torch.allclose(x, expected.expand_as(x), atol=1e-6)


def test_shards_of_all_ranks_cover_the_whole_set_with_equal_lengths():
    shards = [seen(iterate(n=50, batch_size=4, rank=r, world_size=3)) for r in range(3)]
    assert {len(s) for s in shards} == {17}  # 50 padded to 51, as DistributedSampler does
    assert set().union(*shards) == set(range(50))
    trimmed = [seen(iterate(n=50, batch_size=4, rank=r, world_size=3, drop_last=True)) for r in range(3)]
    assert {len(s) for s in trimmed} == {16} and len(set().union(*trimmed)) == 48


def test_augmentation_is_applied_and_reproducible_per_epoch():
    images = torch.zeros((16, 1, 6, 6), dtype=torch.uint8)
    images[:, :, :, :3] = 255  # left half white: a flip moves it to the right
    labels = torch.arange(16)
    flip_only = AugmentConfig(crop_padding=0, flip=True)

    def epoch_output(epoch: int) -> torch.Tensor:
        batches = BatchIterator(
            images, labels, 16, shuffle=False, device="cpu", mean=[0.0], std=[1.0], augment=flip_only, seed=1
        )
        batches.set_epoch(epoch)
        return next(iter(batches))[0]

    out = epoch_output(0)
    flipped = out[:, 0, 0, 0] == 0  # the top-left pixel went dark
    assert 0 < int(flipped.sum()) < 16
    assert torch.equal(out, epoch_output(0)) and not torch.equal(out, epoch_output(5))


def test_channels_last_output():
    x, _ = next(iter(iterate(channels=3, mean=[0, 0, 0], std=[1, 1, 1], channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_bad_arguments_are_refused():
    images, labels = numbered(4)
    with pytest.raises(ValueError, match="labels"):
        BatchIterator(images, labels[:3], 2, shuffle=False, device="cpu", mean=[0], std=[1])
    with pytest.raises(ValueError, match="mean/std"):
        BatchIterator(images, labels, 2, shuffle=False, device="cpu", mean=[0, 0, 0], std=[1, 1, 1])
    with pytest.raises(ValueError, match="rank"):
        BatchIterator(images, labels, 2, shuffle=False, device="cpu", mean=[0], std=[1], rank=2, world_size=2)


def test_channel_mean_std_is_exact_and_independent_of_chunking(monkeypatch):
    half = torch.zeros((4, 2, 2, 2), dtype=torch.uint8)
    half[:, :, 0] = 255
    means, stds = channel_mean_std(half)
    assert means == pytest.approx([0.5, 0.5]) and stds == pytest.approx([0.5, 0.5])

    images = torch.randint(
        0, 256, (37, 3, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    whole = channel_mean_std(images)
    monkeypatch.setattr(stats_module, "_CHUNK_ELEMENTS", 100)  # a few images per chunk
    floats = images.double() / 255
    assert channel_mean_std(images) == whole
    assert whole[0] == pytest.approx(floats.mean(dim=(0, 2, 3)).tolist())
    assert whole[1] == pytest.approx(floats.std(dim=(0, 2, 3), unbiased=False).tolist())


def test_constant_images_get_a_nonzero_std():
    _, stds = channel_mean_std(torch.full((3, 1, 4, 4), 9, dtype=torch.uint8))
    assert stds == [pytest.approx(1 / 255)]


def test_real_fashion_mnist_epoch(fmnist_folder):
    split = load_decoded(scan_dataset(fmnist_folder).split("test"), 28, 1)
    mean, std = channel_mean_std(split.images)
    batches = BatchIterator(
        split.images,
        split.labels,
        64,
        shuffle=True,
        device="cpu",
        mean=mean,
        std=std,
        augment=AugmentConfig(),
    )
    xs, ys = zip(*batches, strict=True)
    assert xs[0].shape == (64, 1, 28, 28)
    assert sorted(torch.cat(ys).tolist()) == sorted(split.labels.tolist()) and len(split.labels) == 200
    assert abs(torch.cat(xs).mean().item()) < 0.15  # normalized with its own statistics


def test_a_device_named_without_its_index_still_holds_the_images(monkeypatch):
    """torch.device("cuda") != torch.device("cuda:0"), though tensors on the former report the latter: every
    CUDA run's batches once took the path for images left on the CPU and failed there. The chosen device is
    kept with its index, as tensors report it."""
    from workbench.engine.device import canonical_device, pick_device

    assert iterate(device="cpu:0").images_on_device
    assert seen(iterate(n=20, device="cpu:0", shuffle=False, batch_size=6)) == list(range(20))
    assert canonical_device("cpu:0") == torch.empty(0, device="cpu:0").device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert pick_device("auto") == pick_device("cuda") == torch.device("cuda", 1)
    assert pick_device("cuda:0") == torch.device("cuda", 0)
