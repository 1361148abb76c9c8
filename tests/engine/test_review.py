"""Suspected label errors (issue 15, item 1): real Fashion-MNIST PNG folders with images planted in the wrong
class folder; the review finds them, ranks them first, and never moves a file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from workbench.cli import main
from workbench.engine.errors import DatasetError
from workbench.engine.review import embed_dataset, out_of_fold_probabilities, rank_label_issues

# Four classes a person tells apart at a glance, so a planted image is unambiguously in the wrong folder.
CLASSES = ("Trouser", "Bag", "Sneaker", "Dress")
PLANTED = {("Trouser", "Bag"), ("Sneaker", "Dress"), ("Bag", "Trouser")}  # (true class, folder it is put in)


@pytest.fixture(scope="module")
def mislabeled_folder(fmnist_folder_factory, tmp_path_factory):
    source = fmnist_folder_factory(20, 2) / "train"
    root = tmp_path_factory.mktemp("mislabeled")
    for name in CLASSES:
        shutil.copytree(source / name, root / name)
    planted = []
    for true, wrong in sorted(PLANTED):
        image = sorted((root / true).glob("*.png"))[0]
        target = root / wrong / f"planted-{true}.png"
        image.rename(target)
        planted.append(str(target))
    return root, planted


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_planted_label_errors_are_ranked_first_with_their_true_class(mislabeled_folder):
    root, planted = mislabeled_folder
    embedded = embed_dataset(str(root), size=96)
    assert len(embedded.paths) == 4 * 20 and embedded.classes == sorted(CLASSES)
    probabilities = out_of_fold_probabilities(
        embedded.features, embedded.labels, len(embedded.classes), mirrored=embedded.mirrored
    )
    issues = rank_label_issues(probabilities, embedded.labels)
    top = issues[: 2 * len(planted)]
    found = {embedded.paths[i.index]: i for i in top}
    assert set(planted) <= set(found), [embedded.paths[i.index] for i in top]
    for path in planted:  # and each is said to look like the class it really is
        true = Path(path).stem.removeprefix("planted-")
        assert embedded.classes[found[path].suggested] == true
        assert found[path].score < 0.5


def test_scores_are_relative_to_each_class_typical_confidence():
    """A hard class (typical self-confidence 0.5) is not flagged wholesale against an easy one (0.9)."""
    probabilities = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.95, 0.05]])
    labels = torch.tensor([0, 0, 1, 1, 1, 1])
    issues = rank_label_issues(probabilities, labels)
    assert issues[0].index == 5  # labelled 1 but sure it is 0
    assert issues[0].suggested == 0 and issues[0].score < 0.2
    assert {i.index for i in issues[-5:]} == {0, 1, 2, 3, 4}  # typical members of either class


def test_a_single_image_class_is_judged_without_folds():
    features = torch.randn(7, 5)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    probabilities = out_of_fold_probabilities(features, labels, 3)
    assert probabilities.shape == (7, 3) and torch.allclose(probabilities.sum(1), torch.ones(7))


def test_a_folder_with_one_class_is_a_clear_error(tmp_path, fmnist_folder_factory):
    shutil.copytree(fmnist_folder_factory(20, 2) / "train" / "Bag", tmp_path / "only" / "Bag")
    with pytest.raises(DatasetError, match="only one class"):
        embed_dataset(str(tmp_path / "only"), size=96)


def test_cli_review_lists_suspects_as_json_and_moves_nothing(mislabeled_folder, capsys):
    root, planted = mislabeled_folder
    before = _listing(root)
    code = main(["data", "review", str(root), "--top", "6", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["images"] == 80 and len(result["label_issues"]) == 6
    listed = {issue["path"]: issue for issue in result["label_issues"]}
    assert set(planted) <= set(listed)
    assert listed[planted[0]]["label"] != listed[planted[0]]["suggested"]
    assert _listing(root) == before  # a review never moves or deletes a file
