"""Decode once: the decoded-image cache on real files — reuse across calls and processes, refresh on change."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.engine.data import DecodeCancelled, guess_image_geometry, load_decoded, scan_dataset
from workbench.engine.data import cache as cache_module


@pytest.fixture
def counting_decoder(monkeypatch):
    """Counts the files the cache loader actually decodes (the real decoder still does the work)."""
    calls: list[str] = []
    real = cache_module.decode_array

    def counted(path, size, channels):
        calls.append(path)
        return real(path, size, channels)

    monkeypatch.setattr(cache_module, "decode_array", counted)
    return calls


def grey_dataset(root, per_class: int = 6):
    """Class folders of 12×12 grey PNGs whose value encodes class and index: value = 10 * class + i."""
    for c, name in enumerate(("a", "b")):
        for i in range(per_class):
            folder = root / name / ("nested" if i % 3 == 0 else "")
            folder.mkdir(parents=True, exist_ok=True)
            Image.new("L", (12, 12), 10 * c + i + 1).save(folder / f"{i}.png")
    return root


def values(split) -> list[int]:
    return [int(img.float().mean().round()) for img in split.images]


def test_first_load_decodes_every_file_and_the_second_none(tmp_path, counting_decoder):
    samples = scan_dataset(grey_dataset(tmp_path / "data"), val_fraction=0.0).samples

    first = load_decoded(samples, 8, 1)
    assert len(counting_decoder) == len(samples) == 12
    counting_decoder.clear()
    second = load_decoded(samples, 8, 1)

    assert counting_decoder == []
    assert first.images.dtype == torch.uint8 and tuple(first.images.shape) == (12, 1, 8, 8)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.paths == [s.path for s in samples] == second.paths
    assert values(first) == [
        int(os.path.basename(p)[0]) + 1 + 10 * lab
        for p, lab in zip(first.paths, first.labels.tolist(), strict=True)
    ]
    assert first.labels.tolist() == [s.label for s in samples]


def test_cache_is_reused_by_a_new_process(tmp_path, counting_decoder):
    data = grey_dataset(tmp_path / "data")
    program = (
        "import sys; from workbench.engine.data import scan_dataset, load_decoded; "
        "s = scan_dataset(sys.argv[1], val_fraction=0.0).samples; print(len(load_decoded(s, 8, 1).labels))"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, str(data)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "12"

    split = load_decoded(scan_dataset(data, val_fraction=0.0).samples, 8, 1)

    assert counting_decoder == []  # everything came from the other process's cache
    assert len(split.labels) == 12


def test_a_changed_file_is_decoded_again_and_only_it(tmp_path, counting_decoder):
    data = grey_dataset(tmp_path / "data")
    samples = scan_dataset(data, val_fraction=0.0).samples
    load_decoded(samples, 8, 1)
    counting_decoder.clear()
    changed = data / "b" / "4.png"
    Image.new("L", (12, 12), 222).save(changed)
    os.utime(changed, ns=(os.stat(changed).st_atime_ns, os.stat(changed).st_mtime_ns + 10**9))

    split = load_decoded(samples, 8, 1)

    assert counting_decoder == [str(changed)]
    assert values(split)[split.paths.index(str(changed))] == 222


def test_other_sizes_and_channel_counts_are_cached_separately(tmp_path, counting_decoder):
    samples = scan_dataset(grey_dataset(tmp_path / "data"), val_fraction=0.0).samples
    load_decoded(samples, 8, 1)
    counting_decoder.clear()
    rgb = load_decoded(samples, 6, 3)
    assert len(counting_decoder) == 12 and tuple(rgb.images.shape) == (12, 3, 6, 6)


def test_splits_sharing_folders_do_not_evict_each_other(tmp_path, counting_decoder):
    index = scan_dataset(grey_dataset(tmp_path / "data", per_class=10), val_fraction=0.3, seed=1)
    assert index.split("val") and {os.path.dirname(s.path) for s in index.split("val")} & {
        os.path.dirname(s.path) for s in index.split("train")
    }
    load_decoded(index.split("train"), 8, 1)
    load_decoded(index.split("val"), 8, 1)
    counting_decoder.clear()

    load_decoded(index.split("train"), 8, 1)
    load_decoded(index.split("val"), 8, 1)

    assert counting_decoder == []


def test_bad_files_are_dropped_and_reported_not_fatal(tmp_path, counting_decoder):
    data = grey_dataset(tmp_path / "data")
    (data / "a" / "notes.png").write_text("not an image")
    good = data / "b" / "2.png"
    (data / "b" / "cut.png").write_bytes(good.read_bytes()[:40])
    samples = scan_dataset(data, val_fraction=0.0).samples
    assert len(samples) == 14

    split = load_decoded(samples, 8, 1)
    counting_decoder.clear()
    again = load_decoded(samples, 8, 1)

    assert len(split.labels) == len(split.paths) == len(split.images) == 12
    reasons = {os.path.basename(p.path): p.reason for p in split.problems}
    assert set(reasons) == {"notes.png", "cut.png"}
    assert "not an image" in reasons["notes.png"] and "truncated" in reasons["cut.png"]
    assert not any(p.endswith(("notes.png", "cut.png")) for p in split.paths)
    expected = [s.label for s in samples if not s.path.endswith(("notes.png", "cut.png"))]
    assert split.labels.tolist() == expected
    assert counting_decoder == []  # failures are remembered too
    assert again.problems == split.problems and torch.equal(again.images, split.images)


def test_a_file_deleted_after_the_scan_is_a_problem(tmp_path):
    data = grey_dataset(tmp_path / "data")
    samples = scan_dataset(data, val_fraction=0.0).samples
    os.remove(data / "a" / "1.png")
    split = load_decoded(samples, 8, 1)
    assert [(os.path.basename(p.path), p.reason) for p in split.problems] == [("1.png", "file not found")]
    assert len(split.labels) == 11


def test_split_larger_than_memory_is_backed_by_a_file(tmp_path, monkeypatch):
    data = grey_dataset(tmp_path / "data")
    (data / "a" / "broken.png").write_text("nope")
    samples = scan_dataset(data, val_fraction=0.0).samples
    in_ram = load_decoded(samples, 8, 1, cache_root=tmp_path / "ram-cache")
    monkeypatch.setattr(cache_module, "memory_budget", lambda: 0)

    on_disk = load_decoded(samples, 8, 1, cache_root=tmp_path / "disk-cache")

    assert on_disk.on_disk and not in_ram.on_disk
    assert torch.equal(on_disk.images, in_ram.images)  # including the gap closed where broken.png was
    assert on_disk.paths == in_ram.paths and len(on_disk.problems) == 1


def test_damaged_cache_is_ignored_and_rebuilt(tmp_path, counting_decoder):
    samples = scan_dataset(grey_dataset(tmp_path / "data"), val_fraction=0.0).samples
    first = load_decoded(samples, 8, 1, cache_root=tmp_path / "cache")
    for index_file in (tmp_path / "cache").rglob("*.json"):
        index_file.write_text("{ not json")
    counting_decoder.clear()

    second = load_decoded(samples, 8, 1, cache_root=tmp_path / "cache")

    assert len(counting_decoder) == 12 and torch.equal(first.images, second.images)
    assert all(isinstance(json.loads(p.read_text()), dict) for p in (tmp_path / "cache").rglob("*.json"))


def test_progress_and_cancel_and_resume(tmp_path, counting_decoder):
    samples = scan_dataset(grey_dataset(tmp_path / "data", per_class=100), val_fraction=0.0).samples
    reports: list[tuple[int, int]] = []

    with pytest.raises(DecodeCancelled):
        load_decoded(samples, 8, 1, workers=1, should_stop=lambda: len(counting_decoder) > 0)
    decoded_before_stop = len(counting_decoder)
    counting_decoder.clear()
    split = load_decoded(samples, 8, 1, progress=lambda done, total: reports.append((done, total)))

    assert 0 < decoded_before_stop < 200
    assert len(counting_decoder) == 200 - decoded_before_stop  # the cancelled run's work was kept
    assert reports[-1] == (200, 200) and [d for d, _ in reports] == sorted(d for d, _ in reports)
    assert len(split.labels) == 200


def test_guess_image_geometry_reads_headers(tmp_path, fmnist_folder):
    assert guess_image_geometry(scan_dataset(fmnist_folder).split("train")) == (28, 1)
    for name in ("a", "b"):
        for i in range(3):
            folder = tmp_path / "photos" / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((30 + i, 40, 3), 90, np.uint8)).save(folder / f"{i}.jpg")
    assert guess_image_geometry(scan_dataset(tmp_path / "photos", val_fraction=0.0).samples) == (31, 3)
