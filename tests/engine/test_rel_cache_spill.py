"""The decoded-image cache spills to disk instead of exhausting RAM: a split larger than the memory budget
lives in a memory-mapped file (the page cache keeps what fits), training on it works, and the pixels are
the same as in RAM. The budget is monkeypatched: no test can afford to fill this machine's memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.engine.data import cache as cache_module
from workbench.engine.data import load_decoded, scan_dataset
from workbench.engine.data import memory as memory_module
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import RunFinished
from workbench.engine.training.trainer import Trainer


def photos(root: Path, per_class: int = 16) -> Path:
    rng = np.random.default_rng(5)
    for c, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (10, 10, 3)) + 150 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def mapped_deleted_files(folder: Path) -> list[str]:
    """Files under `folder` this process has memory-mapped although their names are gone (Linux)."""
    with open("/proc/self/maps") as maps:
        return [line.split(maxsplit=5)[-1] for line in maps if str(folder) in line and "(deleted)" in line]


def test_the_budget_is_half_of_the_memory_available_now(monkeypatch):
    monkeypatch.setattr(memory_module, "_available_memory", lambda: 10_000)
    assert memory_module.memory_budget() == 5_000
    monkeypatch.setattr(memory_module, "_available_memory", lambda: None)  # unknown: never spill
    assert memory_module.memory_budget() > 1 << 60


@pytest.mark.parametrize("available, on_disk", [(2 * 32 * 3 * 8 * 8, False), (2 * 32 * 3 * 8 * 8 - 2, True)])
def test_a_split_spills_exactly_when_it_exceeds_the_budget(tmp_path, monkeypatch, available, on_disk):
    samples = scan_dataset(photos(tmp_path / "data"), val_fraction=0.0).samples
    monkeypatch.setattr(memory_module, "_available_memory", lambda: available)

    split = load_decoded(samples, 8, 3, cache_root=tmp_path / "cache")

    assert split.on_disk is on_disk and tuple(split.images.shape) == (32, 3, 8, 8)
    assert bool(mapped_deleted_files(tmp_path / "cache")) is on_disk
    reference = load_decoded(samples, 8, 3, cache_root=tmp_path / "other-cache")  # RAM, fresh decode
    assert torch.equal(split.images, reference.images)


def test_the_spill_file_lives_only_as_long_as_the_split(tmp_path, monkeypatch):
    samples = scan_dataset(photos(tmp_path / "data"), val_fraction=0.0).samples
    monkeypatch.setattr(cache_module, "memory_budget", lambda: 0)
    split = load_decoded(samples, 8, 3, cache_root=tmp_path / "cache")
    assert len(mapped_deleted_files(tmp_path / "cache")) == 1
    assert list((tmp_path / "cache" / "memmap").iterdir()) == []  # no name on disk, nothing left behind
    del split
    assert mapped_deleted_files(tmp_path / "cache") == []  # unmapped: its disk space is back


def test_the_trainer_trains_on_splits_spilled_to_disk(tmp_path, monkeypatch):
    allocated: list[bool] = []
    allocate = cache_module.allocate_images

    def spy(shape, disk_folder):
        allocated.append(disk_folder is not None)
        return allocate(shape, disk_folder)

    monkeypatch.setattr(cache_module, "memory_budget", lambda: 0)
    monkeypatch.setattr(cache_module, "allocate_images", spy)
    config = TrainConfig(
        data=str(photos(tmp_path / "data")), model="course_cnn", epochs=2, batch_size=8, seed=0
    )

    events = list(Trainer(config).run())

    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "finished", finished
    assert allocated == [True, True]  # train and val both went to disk
    assert finished.val_accuracy is not None and finished.val_accuracy >= 0.5
