"""Byte-identical images found by the scan: leakage between splits, one picture under two classes, copies
within a class — reported as warnings, found cheaply (only files that share a size are read)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from workbench.engine.data import DatasetIndex, ScanCancelled, scan_dataset
from workbench.engine.data import duplicates as duplicates_module
from workbench.engine.data.duplicates import describe_duplicates, find_identical_files


def write_noise(path, seed: int, size: int = 8):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def distinct_folder(root, per_class: int = 4, split_root: str = "", seed: int = 0):
    for c, name in enumerate(("ants", "bees")):
        for i in range(per_class):
            write_noise(root / split_root / name / f"{i}.png", seed=seed + 100 * c + i)
    return root


@pytest.fixture
def read_files(monkeypatch):
    """Paths whose bytes the duplicate search actually read."""
    seen: list[str] = []
    digest = duplicates_module._digest

    def counting(path):
        seen.append(path)
        return digest(path)

    monkeypatch.setattr(duplicates_module, "_digest", counting)
    return seen


def test_a_folder_without_copies_has_no_duplicates_and_reads_no_file_of_unique_size(tmp_path, read_files):
    root = distinct_folder(tmp_path / "data")
    write_noise(root / "ants" / "big.png", seed=9, size=40)  # a size no other file has

    index = scan_dataset(root, val_fraction=0.0)

    assert index.duplicates == [] and not any("identical" in w or "duplicate" in w for w in index.warnings)
    assert str(root / "ants" / "big.png") not in read_files


def test_test_images_that_are_training_images_are_reported_as_leakage(tmp_path):
    root = distinct_folder(tmp_path / "data", split_root="train")
    distinct_folder(tmp_path / "data", per_class=2, split_root="test", seed=1000)
    shutil.copyfile(root / "train" / "ants" / "3.png", root / "test" / "ants" / "copy.png")
    shutil.copyfile(root / "train" / "bees" / "0.png", root / "test" / "bees" / "zzz.png")

    index = scan_dataset(root, val_fraction=0.0)

    leak = [w for w in index.warnings if "identical to train images" in w]
    assert len(leak) == 1 and leak[0].startswith("2 test image(s)")
    assert "train/ants/3.png = test/ants/copy.png" in leak[0]


def test_a_copy_carved_into_val_from_the_same_class_is_leakage_too(tmp_path):
    root = distinct_folder(tmp_path / "data", per_class=10)
    for i in range(10):  # every ant twice: whatever the split draws, some copies land on both sides
        shutil.copyfile(root / "ants" / f"{i}.png", root / "ants" / f"again{i}.png")

    index = scan_dataset(root, val_fraction=0.3, seed=0)

    assert len(index.duplicates) == 10
    assert any("val image(s) are identical to train images" in w for w in index.warnings), index.warnings
    assert any("duplicate image(s) within class 'ants'" in w for w in index.warnings), index.warnings


def test_one_picture_under_two_classes_is_a_label_conflict(tmp_path):
    root = distinct_folder(tmp_path / "data")
    shutil.copyfile(root / "ants" / "1.png", root / "bees" / "mystery.png")

    index = scan_dataset(root, val_fraction=0.0)

    assert index.duplicates == [[str(root / "ants" / "1.png"), str(root / "bees" / "mystery.png")]]
    assert any("under two different classes" in w and "bees/mystery.png" in w for w in index.warnings)


def test_duplicates_survive_the_stored_index_and_can_be_turned_off(tmp_path):
    root = distinct_folder(tmp_path / "data")
    shutil.copyfile(root / "bees" / "2.png", root / "bees" / "2 (1).png")

    index = scan_dataset(root, val_fraction=0.0)
    stored = DatasetIndex.from_dict(json.loads(json.dumps(index.to_dict())))

    assert stored == index and len(stored.duplicates) == 1
    assert scan_dataset(root, val_fraction=0.0, find_duplicates=False).duplicates == []
    old = {k: v for k, v in index.to_dict().items() if k != "duplicates"}  # an index stored before duplicates
    assert DatasetIndex.from_dict(old).duplicates == []


def test_identical_files_groups_and_skips_empty_or_unreadable_files(tmp_path):
    a = write_noise(tmp_path / "a.png", seed=1)
    b = tmp_path / "b.png"
    shutil.copyfile(a, b)
    c = tmp_path / "c.png"
    shutil.copyfile(a, c)
    other = write_noise(tmp_path / "d.png", seed=2)
    (tmp_path / "e.png").write_bytes(b"")
    (tmp_path / "f.png").write_bytes(b"")
    gone = str(tmp_path / "deleted.png")
    paths = [str(p) for p in (c, a, other, b, tmp_path / "e.png", tmp_path / "f.png")] + [gone]

    assert find_identical_files(paths) == [[str(a), str(b), str(c)]]
    assert find_identical_files(paths, should_stop=lambda: True) == []


def test_warnings_quote_a_few_examples_and_count_all(tmp_path):
    groups = [[f"/r/train/x/{i}.png", f"/r/test/x/{i}.png"] for i in range(5)]
    split_of = {p: p.split("/")[2] for g in groups for p in g}
    class_of = {p: "x" for g in groups for p in g}

    (warning,) = describe_duplicates(groups, split_of, class_of, root="/r")

    assert warning.startswith("5 test image(s) are identical to train images")
    assert warning.count(" = ") == 2  # two examples, not five


def test_stopping_during_the_duplicate_search_cancels_the_scan(tmp_path):
    root = distinct_folder(tmp_path / "data")
    shutil.copyfile(root / "ants" / "1.png", root / "ants" / "1b.png")
    calls = []

    def stop_once_hashing() -> bool:
        calls.append(1)
        return len(calls) > 1  # the walk's final check passes; the first check while hashing stops

    with pytest.raises(ScanCancelled):
        scan_dataset(root, val_fraction=0.0, should_stop=stop_once_hashing)
