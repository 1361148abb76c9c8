"""ClassificationInterpretation on a real trained model: its numbers against predictions made independently."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.engine.errors import WorkbenchError
from workbench.engine.evaluation.evaluate import Predictions
from workbench.engine.evaluation.interpretation import ClassificationInterpretation
from workbench.engine.training.checkpoint import load_model
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def checkpoint(fmnist_folder, tmp_path_factory) -> Path:
    """course_cnn trained one epoch on real Fashion-MNIST PNGs (in its own WORKBENCH_HOME)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("interp-home")))
        config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32, seed=0)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return Path(finished.checkpoint)


@pytest.fixture(scope="module")
def interp(checkpoint, fmnist_folder) -> ClassificationInterpretation:
    return ClassificationInterpretation.from_run(checkpoint, fmnist_folder, split="test")


@pytest.fixture(scope="module")
def independent(checkpoint, fmnist_folder) -> dict[str, tuple[str, str]]:
    """path -> (true class from its folder, predicted class), computed without the engine's data path:
    Pillow + NumPy decode (the images are already 28×28), the checkpoint's normalization, and — as the run
    trained with flips — the image and its NumPy mirror, their logits summed."""
    model, meta = load_model(checkpoint)
    mean, std = meta["preprocessing"]["mean"][0], meta["preprocessing"]["std"][0]
    outcome = {}
    for path in sorted((Path(fmnist_folder) / "test").glob("*/*.png")):
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
        x = torch.from_numpy((pixels - mean) / std)[None, None]
        mirror = torch.from_numpy(np.ascontiguousarray((pixels[:, ::-1] - mean) / std))[None, None]
        with torch.no_grad():
            predicted = meta["classes"][int((model(x) + model(mirror)).argmax())]
        outcome[str(path)] = (path.parent.name, predicted)
    return outcome


def test_confusion_matrix_agrees_with_independent_predictions(interp, independent):
    assert len(interp) == len(independent) == 200
    pairs = Counter(independent.values())
    counts = interp.confusion_matrix()
    for i, true in enumerate(interp.classes):
        for j, predicted in enumerate(interp.classes):
            assert counts[i, j].item() == pairs[(true, predicted)], (true, predicted)
    rows = interp.confusion_matrix(normalize=True)
    assert torch.allclose(rows.sum(dim=1), torch.ones(len(interp.classes), dtype=rows.dtype))
    assert rows[0, 0].item() == pytest.approx(counts[0, 0].item() / counts[0].sum().item())


def test_per_class_metrics_agree_with_independent_predictions(interp, independent):
    report = interp.report()
    outcomes = list(independent.values())
    correct = sum(true == predicted for true, predicted in outcomes)
    assert report.accuracy == pytest.approx(correct / len(outcomes))
    for metrics in report.per_class:
        name = metrics.name
        tp = sum(t == name and p == name for t, p in outcomes)
        fp = sum(t != name and p == name for t, p in outcomes)
        fn = sum(t == name and p != name for t, p in outcomes)
        assert metrics.support == tp + fn == 20
        assert metrics.precision == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
        assert metrics.recall == pytest.approx(tp / (tp + fn))
        assert metrics.f1 == pytest.approx(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    assert report.loss == pytest.approx(interp.losses.mean().item())


def test_cell_lists_exactly_the_images_of_that_cell(interp, independent):
    errors = Counter((t, p) for t, p in independent.values() if t != p)
    (true, predicted), count = errors.most_common(1)[0]
    cell = interp.cell(true, predicted)
    assert {item.path for item in cell} == {
        path for path, outcome in independent.items() if outcome == (true, predicted)
    }
    assert len(cell) == count
    assert all(item.true_class == true and item.predicted_class == predicted for item in cell)
    assert [item.loss for item in cell] == sorted((item.loss for item in cell), reverse=True)
    diagonal = interp.cell(0, 0)  # by index too
    assert all(item.true_class == item.predicted_class == interp.classes[0] for item in diagonal)


def test_most_confused_pairs_are_the_largest_off_diagonal_cells(interp, independent):
    errors = Counter((t, p) for t, p in independent.values() if t != p)
    pairs = interp.most_confused()
    assert {(p.true_class, p.predicted_class): p.count for p in pairs} == dict(errors)
    assert [p.count for p in pairs] == sorted(errors.values(), reverse=True)
    top = pairs[0].count
    assert all(p.count >= top for p in interp.most_confused(min_count=top))


def test_top_losses_are_the_most_wrong_images(interp):
    top = interp.top_losses(9)
    assert len(top) == 9
    losses = [item.loss for item in top]
    assert losses == sorted(losses, reverse=True)
    assert losses[0] == pytest.approx(interp.losses.max().item())
    for item in top:
        assert item.loss == pytest.approx(-math.log(item.true_probability), rel=1e-4)
        assert item.probability >= item.true_probability
    surest = interp.top_losses(3, largest=False)
    assert [item.loss for item in surest] == sorted(item.loss for item in surest)
    assert surest[0].loss == pytest.approx(interp.losses.min().item())
    assert len(interp.top_losses()) == len(interp)


def test_hand_made_predictions_give_the_expected_galleries():
    logits = torch.tensor(
        [[4.0, 0.0, 0.0], [0.0, 3.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 5.0, 0.0]]
    )
    targets = torch.tensor([0, 1, 1, 2, 2])  # image 2: true b, predicted a; image 4: true c, predicted b
    paths = [f"img{i}.png" for i in range(5)]
    interp = ClassificationInterpretation(Predictions(paths, targets, logits, ["a", "b", "c"], []))
    assert interp.confusion_matrix().tolist() == [[1, 0, 0], [1, 1, 0], [0, 1, 1]]
    assert [item.path for item in interp.top_losses(2)] == ["img4.png", "img2.png"]
    assert interp.top_losses(1)[0].predicted_class == "b" and interp.top_losses(1)[0].true_class == "c"
    assert [item.path for item in interp.cell("b", "a")] == ["img2.png"]
    assert [(p.true_class, p.predicted_class, p.count) for p in interp.most_confused()] == [
        ("b", "a", 1),
        ("c", "b", 1),
    ]


def test_unknown_class_names_the_value(interp):
    with pytest.raises(WorkbenchError, match="unknown class 'Hat'"):
        interp.cell("Hat", interp.classes[0])
    with pytest.raises(WorkbenchError, match="class index 10 is out of range"):
        interp.cell(10, 0)
