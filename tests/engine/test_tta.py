"""Flip test-time augmentation: a run trained with flips is judged on each image and its mirror."""

from __future__ import annotations

import shutil

import pytest
import torch
from PIL import Image, ImageOps

from workbench.engine.evaluation.evaluate import predict_folder
from workbench.engine.evaluation.predict import Predictor
from workbench.engine.evaluation.tta import FlipAveraged, for_evaluation
from workbench.engine.training.config import AugmentConfig, TrainConfig
from workbench.engine.training.events import Message, RunFinished
from workbench.engine.training.trainer import Trainer


def test_flip_averaged_logits_do_not_change_when_the_image_is_mirrored():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    x = torch.randn(5, 1, 9, 9)
    model(x)  # materialize the lazy layer
    averaged = FlipAveraged(model)
    assert not torch.allclose(model(x), model(x.flip(-1)))  # the bare model does tell them apart
    torch.testing.assert_close(averaged(x), averaged(x.flip(-1)))
    torch.testing.assert_close(averaged(x), (model(x) + model(x.flip(-1))) / 2)


def test_only_runs_trained_with_flips_that_asked_for_it_are_flip_averaged():
    model = torch.nn.Identity()
    flips = TrainConfig(augment=AugmentConfig(flip=True)).to_dict()
    assert isinstance(for_evaluation(model, flips), FlipAveraged)
    assert for_evaluation(model, flips, tta=False) is model
    assert for_evaluation(model, {**flips, "tta": False}) is model
    assert for_evaluation(model, TrainConfig(augment=AugmentConfig(flip=False)).to_dict()) is model
    assert for_evaluation(model, {}) is model  # a checkpoint without a config (made elsewhere)


def test_run_with_flips_reports_and_predicts_mirror_invariant(fmnist_folder, tmp_path):
    """Real PNGs: the test accuracy is flip-averaged (and says so), and a mirrored copy of the test folder
    gets the same logits from `eval` and `predict`, which a single view would not."""
    config = TrainConfig(
        data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32, augment=AugmentConfig(flip=True)
    )
    events = list(Trainer(config).run())
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "finished", finished
    assert any("mirror" in e.text for e in events if isinstance(e, Message))

    mirrored = tmp_path / "mirrored"
    shutil.copytree(fmnist_folder / "test", mirrored)
    for png in mirrored.rglob("*.png"):
        with Image.open(png) as image:
            ImageOps.mirror(image).save(png)

    original = predict_folder(finished.run_id, fmnist_folder / "test", split="all")
    flipped = predict_folder(finished.run_id, mirrored, split="all")
    torch.testing.assert_close(original.logits, flipped.logits, atol=1e-4, rtol=1e-4)
    single = predict_folder(finished.run_id, fmnist_folder / "test", split="all", tta=False)
    single_flipped = predict_folder(finished.run_id, mirrored, split="all", tta=False)
    assert (single.logits - single_flipped.logits).abs().max() > 1e-2

    some = sorted((fmnist_folder / "test").rglob("*.png"))[:4]
    twins = [mirrored / path.relative_to(fmnist_folder / "test") for path in some]
    predictor = Predictor(finished.run_id)
    for a, b in zip(predictor.predict(some), predictor.predict(twins), strict=True):
        assert a.top[0][0] == b.top[0][0]
        assert [p for _, p in a.top] == pytest.approx([p for _, p in b.top], abs=1e-4)
