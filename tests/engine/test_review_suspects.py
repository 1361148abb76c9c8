"""Near-duplicates, leaks and outliers (issue 15, items 2 and 3): a real pre-split Fashion-MNIST PNG folder
with a re-encoded copy within a class, a resized copy under another label, a cropped copy in the test split
and a blank scan; the review pairs and classifies each copy, ranks the blank first, and moves nothing."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.cli import main
from workbench.engine.review import (
    DatasetEmbeddings,
    duplicate_groups,
    embed_dataset,
    find_near_duplicates,
    rank_outliers,
    review_dataset,
)
from workbench.engine.review import neighbours as neighbours_module
from workbench.engine.review.near_duplicates import thumbnails

CLASSES = ("Trouser", "Bag", "Sneaker", "Dress")


def _jpeg70(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return Image.open(buffer)


def _resized(image: Image.Image) -> Image.Image:
    return image.resize((22, 22), Image.BILINEAR).resize((28, 28), Image.BILINEAR)


def _cropped(image: Image.Image) -> Image.Image:  # 8% of the side, then back to 28 px
    return image.resize((28, 28), Image.BILINEAR, box=(1.12, 1.12, 26.88, 26.88))


@pytest.fixture(scope="module")
def planted_folder(fmnist_folder_factory, tmp_path_factory):
    """train/<4 classes>/20 + test/<4 classes>/2 images, plus three changed copies and one blank scan."""
    source = fmnist_folder_factory(20, 2)
    root = tmp_path_factory.mktemp("planted")
    for split in ("train", "test"):
        for name in CLASSES:
            shutil.copytree(source / split / name, root / split / name)
    plan = {}
    for kind, (cls, target, change, suffix) in {
        "copy": ("Trouser", "train/Trouser", _jpeg70, ".jpg"),
        "label": ("Bag", "train/Dress", _resized, ".png"),
        "leak": ("Sneaker", "test/Sneaker", _cropped, ".png"),
    }.items():
        original = sorted((root / "train" / cls).glob("*.png"))[3]
        copy = root / target / f"copy-{kind}{suffix}"
        change(Image.open(original).convert("L")).save(copy)
        plan[kind] = (str(original), str(copy))
    blank = root / "train" / "Bag" / "blank-scan.png"
    Image.new("L", (28, 28), 235).save(blank)
    plan["blank"] = str(blank)
    return root, plan


@pytest.fixture(scope="module")
def planted_embeddings(planted_folder, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:  # module scope: the autouse home fixture is not there yet
        patch.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("review-home")))
        return embed_dataset(str(planted_folder[0]), size=96)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_changed_copies_are_paired_and_classified(planted_folder, planted_embeddings):
    _, plan = planted_folder
    e = planted_embeddings
    pairs = {
        (e.paths[p.first], e.paths[p.second]): p
        for p in find_near_duplicates(e.thumbnails, e.labels, e.splits)
    }
    for kind in ("copy", "label", "leak"):
        original, copy = plan[kind]
        assert (original, copy) in pairs, (kind, sorted(pairs))
        assert pairs[original, copy].kind == kind  # the train image is the one kept; the copy is the suspect


def test_unchanged_originals_are_not_paired_at_a_strict_threshold(planted_embeddings):
    """The threshold matters: distinct Fashion-MNIST images of one class correlate too, but less than copies."""
    e = planted_embeddings
    loose = find_near_duplicates(e.thumbnails, e.labels, e.splits, threshold=0.5)
    strict = find_near_duplicates(e.thumbnails, e.labels, e.splits)
    assert len(loose) > 3 * len(strict) and len(strict) >= 3


def test_a_blank_scan_is_the_top_outlier(planted_folder, planted_embeddings):
    _, plan = planted_folder
    e = planted_embeddings
    ranked = rank_outliers(e.features, e.labels, len(e.classes))  # by embeddings alone, no blank flag
    assert e.paths[ranked[0].index] == plan["blank"]
    assert ranked[0].score > 1.5 > ranked[len(ranked) // 2].score
    review = review_dataset(e, ("outliers",))
    assert e.paths[review.outliers[0].index] == plan["blank"] and review.outliers[0].blank


def test_cli_review_json_lists_each_kind_and_moves_nothing(planted_folder, capsys):
    root, plan = planted_folder
    before = _listing(root)
    assert main(["data", "review", str(root), "--top", "10", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"label_issues", "duplicates", "outliers"} <= set(result)
    listed = {(d["keep"], d["copy"]): d for d in result["duplicates"]["listed"]}
    assert listed[plan["leak"]]["kind"] == "leak" and listed[plan["leak"]]["splits"] == ["train", "test"]
    assert (
        listed[plan["label"]]["labels"] == ["Bag", "Dress"]
        and "two labels" in listed[plan["label"]]["suggestion"]
    )
    assert result["outliers"][0]["path"] == plan["blank"] and result["outliers"][0]["blank"]
    assert _listing(root) == before

    assert main(["data", "review", str(root), "--kind", "duplicates", "--json"]) == 0
    only = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "duplicates" in only and "label_issues" not in only and "outliers" not in only


def test_blockwise_search_equals_the_full_matrix(monkeypatch):
    monkeypatch.setattr(neighbours_module, "BLOCK_ELEMENTS", 7 * 50)  # 7 rows at a time
    generator = torch.Generator().manual_seed(0)
    unit = neighbours_module.unit_rows(torch.randn(50, 6, generator=generator))
    labels = torch.randint(0, 3, (50,), generator=generator)
    full = unit @ unit.T
    full.fill_diagonal_(float("-inf"))
    similarities, indices = neighbours_module.top_neighbours(unit, 4)
    assert torch.allclose(similarities, full.topk(4, dim=1).values) and torch.equal(
        indices, full.topk(4, dim=1).indices
    )
    distances = neighbours_module.class_neighbour_distances(unit, labels, 3, 5)
    for c in range(3):
        expected = (1 - full[:, labels == c].topk(5, dim=1).values).mean(1)
        assert torch.allclose(distances[:, c], expected, atol=1e-6)


def test_thousands_of_copies_are_one_group_with_bounded_pairs():
    generator = torch.Generator().manual_seed(1)
    picture = torch.rand(1, 1, 28, 28, generator=generator) * 255
    images = torch.cat(
        [picture.expand(3000, 1, 28, 28), torch.rand(40, 1, 28, 28, generator=generator) * 255]
    )
    thumbs = thumbnails(images.to(torch.uint8))
    labels = torch.zeros(3040, dtype=torch.long)
    pairs = find_near_duplicates(thumbs, labels, ["train"] * 3040)
    groups = duplicate_groups(pairs)
    assert len(groups[0]) == 3000 and len(pairs) <= 3000 * 8
    assert all(len(g) < 3 for g in groups[1:])


def _synthetic(features: torch.Tensor, labels: list[int], classes: list[str]) -> DatasetEmbeddings:
    n = len(labels)
    images = (torch.arange(n)[:, None, None, None] * 7 % 255).expand(n, 1, 8, 8).to(torch.uint8)
    return DatasetEmbeddings(
        paths=[f"/data/{i}.png" for i in range(n)], labels=torch.tensor(labels), splits=["train"] * n,
        classes=classes, features=features, mirrored=features, size=96, thumbnails=thumbnails(images),
    )  # fmt: skip


def test_a_class_with_one_image_gets_a_note_not_a_crash():
    features = torch.randn(9, 16, generator=torch.Generator().manual_seed(2))
    review = review_dataset(_synthetic(features, [0, 0, 0, 0, 1, 1, 1, 1, 2], ["a", "b", "lonely"]))
    assert any("single image" in note and "'lonely'" in note for note in review.notes)
    assert len(review.label_issues) == 9
    assert all(
        not np.isnan(o.score) for o in review.outliers
    )  # the lonely image is not scored against nothing


def test_all_identical_images_are_a_clear_note(tmp_path, fmnist_folder_factory, capsys):
    image = sorted((fmnist_folder_factory(20, 2) / "train" / "Bag").glob("*.png"))[0]
    for name in ("cats", "dogs"):
        (tmp_path / name).mkdir()
        for i in range(4):
            shutil.copy(image, tmp_path / name / f"{i}.png")
    assert main(["data", "review", str(tmp_path), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert any("look the same" in note for note in result["notes"])
    assert result["duplicates"]["largest_groups"][0]["size"] == 8
    assert "Traceback" not in captured.err


def test_one_class_is_a_clear_error_from_the_cli(tmp_path, fmnist_folder_factory, capsys):
    shutil.copytree(fmnist_folder_factory(20, 2) / "train" / "Bag", tmp_path / "only" / "Bag")
    assert main(["data", "review", str(tmp_path / "only")]) == 2
    err = capsys.readouterr().err
    assert "only one class" in err and "Traceback" not in err
