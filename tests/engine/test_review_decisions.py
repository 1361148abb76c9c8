"""The review as questions and answers (issue 15, item 5, engine side): a real Fashion-MNIST PNG folder with an
image planted in the wrong class, a copy under another label and a blank scan; each is listed as a suspect with
the right suggestion, `analyse_dataset` maps and flags them, and answers are kept per dataset (atomically, in
the data folder, not among the images) so a new review does not ask again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.engine import paths
from workbench.engine.errors import DatasetError
from workbench.engine.review.analysis import analyse_dataset
from workbench.engine.review.decisions import ReviewDecisions, record_path
from workbench.engine.review.kinds import SUSPICION

CLASSES = ("Trouser", "Bag", "Sneaker", "Dress")


@pytest.fixture(scope="module")
def planted(fmnist_folder_factory, tmp_path_factory):
    source = fmnist_folder_factory(20, 2) / "train"
    root = tmp_path_factory.mktemp("review-planted")
    for name in CLASSES:
        shutil.copytree(source / name, root / name)
    wrong = root / "Bag" / "planted-Trouser.png"
    sorted((root / "Trouser").glob("*.png"))[0].rename(wrong)
    original = sorted((root / "Sneaker").glob("*.png"))[3]
    copy = root / "Dress" / "copy-of-sneaker.png"
    Image.open(original).resize((22, 22), Image.BILINEAR).resize((28, 28), Image.BILINEAR).save(copy)
    blank = root / "Dress" / "blank-scan.png"
    Image.new("L", (28, 28), 235).save(blank)
    return root, {"wrong": str(wrong), "original": str(original), "copy": str(copy), "blank": str(blank)}


@pytest.fixture(scope="module")
def analysis(planted, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("review-home")))
        return analyse_dataset(str(planted[0]), size=96)


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_each_planted_problem_is_a_suspect_with_the_right_suggestion(planted, analysis):
    _root, plan = planted
    by_kind = {(s.kind, s.path): s for s in analysis.suspects}
    label = by_kind[("label", plan["wrong"])]
    assert label.label == "Bag" and label.suggested == "Trouser" and label.action == "relabel"
    copy = by_kind[("duplicate", plan["copy"])]
    assert copy.other == plan["original"] and copy.label == "Dress" and copy.suggested == "Sneaker"
    assert "labels is wrong" in copy.reason
    blank = by_kind[("outlier", plan["blank"])]
    assert blank.action == "exclude" and not blank.suggested and "blank" in blank.reason
    # few suspects among 80 typical images: the list is a short worklist, not the whole dataset
    assert len(analysis.suspects) <= 12, [(s.kind, s.path) for s in analysis.suspects]


def test_the_analysis_maps_every_image_and_flags_the_suspects(planted, analysis):
    _root, plan = planted
    n = len(analysis.paths)
    assert n == 4 * 20 + 2 and analysis.xy.shape == (n, 2) and np.isfinite(analysis.xy).all()
    flag = {p: SUSPICION[int(k)] for p, k in zip(analysis.paths, analysis.suspicion, strict=True)}
    assert flag[plan["wrong"]] == "label" and flag[plan["blank"]] == "outlier"
    assert flag[plan["copy"]] in ("label", "duplicate")
    assert sum(k != "none" for k in flag.values()) <= 12
    # the same class's images are mostly each other's neighbours on the map
    labels, xy = analysis.labels, analysis.xy
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[np.argmin(d, axis=1)] == labels).mean() > 0.8


def test_answers_are_kept_per_dataset_outside_it_and_survive_a_restart(planted, analysis):
    root, plan = planted
    before = _listing(root)
    decisions = ReviewDecisions([str(root)])
    suspect = next(s for s in analysis.suspects if s.path == plan["blank"])
    assert not decisions.decided(suspect.key)
    decisions.set(suspect.key, "keep")
    again = ReviewDecisions([str(root)])  # a later session
    assert again.get(suspect.key) == "keep" and len(again) == 1
    assert record_path([str(root)]).is_relative_to(paths.data_dir_path())
    assert _listing(root) == before  # nothing written among the images
    leftovers = [p.name for p in record_path([str(root)]).parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert ReviewDecisions([str(root / "Bag")]).get(suspect.key) is None  # another dataset, other answers
    assert again.forget(suspect.key) and ReviewDecisions([str(root)]).get(suspect.key) is None
    with pytest.raises(ValueError):
        again.set(suspect.key, "delete")


def test_an_unreadable_answers_file_is_a_note_not_a_crash(tmp_path):
    record = record_path([str(tmp_path)])
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("{not json")
    decisions = ReviewDecisions([str(tmp_path)])
    assert len(decisions) == 0 and "could not be read" in decisions.notes[0]
    decisions.set("outlier\t/x.png", "keep")
    assert json.loads(record.read_text())["decisions"]["outlier\t/x.png"]["decision"] == "keep"


def test_bad_folders_give_clear_notes_or_errors(tmp_path, fmnist_folder_factory):
    source = fmnist_folder_factory(20, 2) / "train"
    # one class: a clear error (a review compares classes)
    shutil.copytree(source / "Bag", tmp_path / "one" / "Bag")
    with pytest.raises(DatasetError, match="only one class"):
        analyse_dataset(str(tmp_path / "one"), size=64)
    # classes with one image: mapped, with a note
    for name in ("Bag", "Sneaker"):
        (tmp_path / "lonely" / name).mkdir(parents=True)
        shutil.copy(sorted((source / name).glob("*.png"))[0], tmp_path / "lonely" / name / "only.png")
    lonely = analyse_dataset(str(tmp_path / "lonely"), size=64)
    assert lonely.xy.shape == (2, 2) and any("single image" in n for n in lonely.notes)
    # all images identical: one spot on the map, a note, no suspects ranked as label errors
    image = sorted((source / "Bag").glob("*.png"))[0]
    for name in ("cats", "dogs"):
        (tmp_path / "same" / name).mkdir(parents=True)
        for i in range(20):
            shutil.copy(image, tmp_path / "same" / name / f"{i}.png")
    same = analyse_dataset(str(tmp_path / "same"), size=64)
    assert np.allclose(same.xy, 0) and any("look the same" in n for n in same.notes)
    assert not [s for s in same.suspects if s.kind == "label"]
