"""Scanning dataset folders: layouts, splits, problem files and clear errors — on real files."""

from __future__ import annotations

import json
import os

import pytest

from workbench.engine.data import DatasetIndex, ScanCancelled, scan_dataset
from workbench.engine.errors import DatasetError


def make_class_folders(root, write_image, counts: dict[str, int], ext: str = ".png"):
    for name, n in counts.items():
        for i in range(n):
            write_image(root / name / f"img{i:03d}{ext}", size=(8, 8))
    return root


def by_split(index: DatasetIndex) -> dict[str, set[tuple[str, str]]]:
    """split -> {(class, file name)}"""
    return {
        split: {(index.classes[s.label], os.path.basename(s.path)) for s in index.split(split)}
        for split in ("train", "val", "test")
    }


def test_class_folders_include_nested_images_and_ignore_hidden_ones(tmp_path, write_image):
    write_image(tmp_path / "cats" / "a.png")
    write_image(tmp_path / "cats" / "2023" / "summer" / "b.jpg")
    write_image(tmp_path / "cats" / ".c.png")  # hidden file
    write_image(tmp_path / "cats" / ".thumbs" / "d.png")  # inside a hidden folder
    write_image(tmp_path / ".git" / "e.png")  # a hidden folder at the root is no class
    write_image(tmp_path / "dogs" / "f.PNG")  # extensions are case-insensitive
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")

    index = scan_dataset(tmp_path, val_fraction=0.0)

    assert index.layout == "class-folders"
    assert index.classes == ["cats", "dogs"]
    names = {(index.classes[s.label], os.path.basename(s.path)) for s in index.samples}
    assert names == {("cats", "a.png"), ("cats", "b.jpg"), ("dogs", "f.PNG")}
    assert all(os.path.isabs(s.path) and s.split == "train" for s in index.samples)
    assert index.counts() == {"train": [2, 1]}


def test_every_supported_extension_is_indexed(tmp_path, write_image):
    extensions = [".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"]
    for ext in extensions:
        write_image(tmp_path / "a" / f"x{ext}")
        write_image(tmp_path / "b" / f"y{ext.upper()}")
    index = scan_dataset(tmp_path, val_fraction=0.0)
    assert index.counts()["train"] == [len(extensions), len(extensions)]


def test_pre_split_folders_keep_their_splits(tmp_path, write_image):
    for split, n in (("train", 4), ("valid", 2), ("test", 3)):
        make_class_folders(tmp_path / split, write_image, {"ant": n, "bee": n})

    index = scan_dataset(tmp_path, val_fraction=0.5, test_fraction=0.5 - 1e-9, seed=3)

    assert index.layout == "pre-split"
    assert index.classes == ["ant", "bee"]
    assert index.counts() == {"train": [4, 4], "val": [2, 2], "test": [3, 3]}
    assert all(f"{os.sep}valid{os.sep}" in s.path for s in index.split("val"))


def test_pre_split_without_val_carves_a_stratified_val_split_from_train(tmp_path, write_image):
    make_class_folders(tmp_path / "train", write_image, {"ant": 20, "bee": 10})
    make_class_folders(tmp_path / "test", write_image, {"ant": 2, "bee": 2})

    index = scan_dataset(tmp_path, val_fraction=0.2, seed=0)

    assert index.counts() == {"train": [16, 8], "val": [4, 2], "test": [2, 2]}
    assert all(f"{os.sep}train{os.sep}" in s.path for s in index.split("val"))


def test_stratified_split_is_deterministic_per_seed_and_covers_every_file(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 30, "b": 20, "c": 10})

    first = scan_dataset(tmp_path, val_fraction=0.2, test_fraction=0.1, seed=5)
    again = scan_dataset(tmp_path, val_fraction=0.2, test_fraction=0.1, seed=5)
    other = scan_dataset(tmp_path, val_fraction=0.2, test_fraction=0.1, seed=6)

    assert first.samples == again.samples
    assert by_split(first) != by_split(other)
    assert first.counts() == {"train": [21, 14, 7], "val": [6, 4, 2], "test": [3, 2, 1]}
    assert sorted(s.path for s in first.samples) == sorted(s.path for s in other.samples)
    assert len({s.path for s in first.samples}) == 60


def test_adding_a_class_leaves_the_other_classes_split_alone(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 12, "b": 12})
    before = by_split(scan_dataset(tmp_path, val_fraction=0.25, seed=1))
    make_class_folders(tmp_path, write_image, {"c": 12})
    after = by_split(scan_dataset(tmp_path, val_fraction=0.25, seed=1))
    assert {x for x in after["val"] if x[0] != "c"} == before["val"]


def test_a_class_too_small_to_split_is_reported_and_kept_for_training(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"big": 20, "tiny": 1})

    index = scan_dataset(tmp_path, val_fraction=0.2)

    assert index.counts() == {"train": [16, 1], "val": [4, 0]}
    assert any("'tiny'" in w and "too few" in w for w in index.warnings), index.warnings


def test_unbalanced_classes_are_warned_about(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"many": 30, "few": 2})
    index = scan_dataset(tmp_path, val_fraction=0.0)
    assert any("unbalanced" in w and "'many'" in w and "'few'" in w for w in index.warnings), index.warnings


def test_several_folders_are_one_class_each(tmp_path, write_image):
    write_image(tmp_path / "shoot1" / "cats" / "a.png")
    write_image(tmp_path / "shoot1" / "cats" / "nested" / "b.png")
    write_image(tmp_path / "shoot2" / "dogs" / "c.png")

    index = scan_dataset([tmp_path / "shoot1" / "cats", str(tmp_path / "shoot2" / "dogs")], val_fraction=0.0)

    assert index.layout == "folders-as-classes"
    assert index.classes == ["cats", "dogs"]
    assert index.counts() == {"train": [2, 1]}
    assert len(index.roots) == 2


def test_several_folders_with_the_same_name_are_refused(tmp_path, write_image):
    write_image(tmp_path / "a" / "cats" / "1.png")
    write_image(tmp_path / "b" / "cats" / "2.png")
    with pytest.raises(DatasetError, match="both named 'cats'"):
        scan_dataset([tmp_path / "a" / "cats", tmp_path / "b" / "cats"])


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("missing", "folder not found"),
        ("empty", "the folder is empty"),
        ("file", "is a file"),
        ("single-class", "only one class"),
        ("no-images", "without an image extension"),
        ("loose-images", "lie directly in the folder"),
    ],
)
def test_unusable_folders_raise_a_dataset_error_naming_the_folder(tmp_path, write_image, setup, expected):
    root = tmp_path / "data"
    if setup == "empty":
        root.mkdir()
    elif setup == "file":
        root.write_text("hello")
    elif setup == "single-class":
        make_class_folders(root, write_image, {"only": 3})
    elif setup == "no-images":
        (root / "a").mkdir(parents=True)
        (root / "a" / "readme.txt").write_text("x")
        (root / "b").mkdir()
        (root / "b" / "data.csv").write_text("1,2")
    elif setup == "loose-images":
        write_image(root / "x.png")
        write_image(root / "y.png")

    with pytest.raises(DatasetError) as caught:
        scan_dataset(root)

    assert str(root) in str(caught.value)
    assert expected in str(caught.value)


def test_zero_byte_files_are_reported_not_indexed(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 2, "b": 2})
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")

    index = scan_dataset(tmp_path, val_fraction=0.0)

    assert [(os.path.basename(p.path), p.reason) for p in index.problems] == [("empty.jpg", "zero bytes")]
    assert all(not s.path.endswith("empty.jpg") for s in index.samples)


def test_links_loops_and_broken_links_never_hang_or_abort(tmp_path, write_image):
    make_class_folders(tmp_path / "data", write_image, {"a": 2, "b": 2})
    os.symlink(tmp_path / "data", tmp_path / "data" / "a" / "loop")  # a folder link back to the root
    os.symlink(tmp_path / "nowhere.png", tmp_path / "data" / "b" / "dangling.png")
    write_image(tmp_path / "elsewhere" / "c.png")
    os.symlink(tmp_path / "elsewhere", tmp_path / "data" / "b" / "linked")  # a legitimate folder link
    os.symlink(tmp_path / "data" / "b", tmp_path / "data" / "a" / "sibling")  # b's images are not a's

    index = scan_dataset(tmp_path / "data", val_fraction=0.0)

    assert index.counts() == {"train": [2, 3]}
    reasons = {os.path.basename(p.path): p.reason for p in index.problems}
    assert "broken link" in reasons["dangling.png"]
    assert "already scanned" in reasons["loop"] and "already scanned" in reasons["sibling"]


def test_non_utf8_file_names_are_indexed_and_survive_json(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 1, "b": 1})
    odd = os.fsdecode(os.path.join(os.fsencode(tmp_path / "a"), b"caf\xe9.png"))  # Latin-1 byte, not UTF-8
    write_image(odd)

    index = scan_dataset(tmp_path, val_fraction=0.0)
    stored = DatasetIndex.from_dict(json.loads(json.dumps(index.to_dict())))

    assert odd in [s.path for s in index.samples]
    assert stored == index
    assert os.path.exists(next(s.path for s in stored.samples if "caf" in s.path))


def test_a_file_where_a_class_folder_should_be_is_reported(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 2, "b": 2})
    (tmp_path / "c").write_text("I should have been a folder")

    index = scan_dataset(tmp_path, val_fraction=0.0)

    assert index.classes == ["a", "b"]
    assert any(str(tmp_path) in w and "(c)" in w for w in index.warnings), index.warnings


def test_index_round_trips_through_json(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 5, "b": 5})
    (tmp_path / "a" / "zero.png").write_bytes(b"")
    index = scan_dataset(tmp_path, val_fraction=0.2, seed=2)

    stored = DatasetIndex.from_dict(json.loads(json.dumps(index.to_dict())))

    assert stored == index
    assert stored.split("val") == index.split("val") and len(stored.split("val")) == 2


def test_damaged_stored_index_is_a_dataset_error():
    with pytest.raises(DatasetError, match="damaged"):
        DatasetIndex.from_dict({"roots": [], "layout": "class-folders", "classes": []})


def test_progress_is_reported_and_stop_cancels(tmp_path, write_image):
    make_class_folders(tmp_path, write_image, {"a": 600, "b": 600}, ext=".bmp")
    seen: list[int] = []

    index = scan_dataset(tmp_path, progress=seen.append)

    assert seen == sorted(seen) and seen[-1] == 1200 and len(seen) >= 3
    assert len(index.samples) == 1200
    with pytest.raises(ScanCancelled):
        scan_dataset(tmp_path, should_stop=lambda: True)
