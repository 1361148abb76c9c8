"""Curation moves real files only when asked, never overwrites, and every move can be undone."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from workbench.engine.data.curation import EXCLUDED_FOLDER, Curator
from workbench.engine.errors import DatasetError


def _png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), value).save(path)
    return path


def test_exclude_moves_into_a_hidden_folder_and_undo_restores(tmp_path):
    image = _png(tmp_path / "train" / "cat" / "sub" / "a.png")
    curator = Curator()
    move = curator.exclude(image, "cat")
    assert not image.exists()
    assert move.destination == tmp_path / "train" / "cat" / EXCLUDED_FOLDER / "sub" / "a.png"
    assert move.destination.is_file()

    undone = curator.undo()
    assert undone == move
    assert image.is_file()
    assert not (tmp_path / "train" / "cat" / EXCLUDED_FOLDER).exists()  # no empty hidden folder left behind
    assert curator.undo() is None


def test_relabel_moves_to_the_sibling_class_without_overwriting(tmp_path):
    image = _png(tmp_path / "cat" / "a.png", 10)
    existing = _png(tmp_path / "dog" / "a.png", 200)
    curator = Curator()
    move = curator.relabel(image, "cat", "dog")
    assert move.destination == tmp_path / "dog" / "a-1.png"
    assert Image.open(existing).getpixel((0, 0)) == 200  # the dog image already there is untouched
    assert Image.open(move.destination).getpixel((0, 0)) == 10
    curator.undo()
    assert Image.open(image).getpixel((0, 0)) == 10
    assert not move.destination.exists()


def test_relabel_between_dropped_class_folders(tmp_path):
    cats, dogs = tmp_path / "my cats", tmp_path / "elsewhere" / "dogs"
    image = _png(cats / "a.png")
    dogs.mkdir(parents=True)
    curator = Curator({"my cats": cats, "dogs": dogs})
    move = curator.relabel(image, "my cats", "dogs")
    assert move.destination == dogs / "a.png"


def test_bad_requests_raise_clear_errors(tmp_path):
    image = _png(tmp_path / "cat" / "a.png")
    curator = Curator()
    with pytest.raises(DatasetError, match="already in class 'cat'"):
        curator.relabel(image, "cat", "cat")
    with pytest.raises(DatasetError, match="not inside a folder named 'dog'"):
        curator.exclude(image, "dog")
    image.unlink()
    with pytest.raises(DatasetError, match="the file is gone"):
        curator.exclude(image, "cat")
