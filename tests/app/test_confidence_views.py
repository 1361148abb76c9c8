"""Calibrated confidence and the out-of-domain warning in the app, on a real trained run: the Evaluate tab's
Confidence page draws the engine's reliability bins with the ECE before and after; the Predict tab marks real
foreign images (the app's own screenshots) dropped among clothing as unlike the training images and says the
probabilities are calibrated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from workbench.app.evaluation.view import EvaluationView
from workbench.app.predictions import view as predictions_module
from workbench.app.predictions.view import PredictionsView
from workbench.engine.evaluation.evaluate import evaluate
from workbench.engine.evaluation.out_of_domain import WARNING

SCREENSHOTS = Path(__file__).resolve().parents[2] / "resources" / "screenshots"
SHOTS = os.environ.get("WORKBENCH_TEST_SCREENSHOTS")  # a folder: the views are saved there as PNGs to look at


@pytest.fixture(scope="module")
def trained(course_cnn_run) -> dict[str, str]:
    return course_cnn_run


@pytest.fixture(autouse=True)
def trained_home(trained, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", trained["home"])


def _shown(qtbot, widget, trained):
    qtbot.addWidget(widget)
    widget.resize(1300, 800)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_run(trained["run_id"])
    qtbot.waitUntil(lambda: widget.runs.current_run_id() == trained["run_id"], timeout=10_000)
    return widget


def test_the_confidence_page_draws_the_engines_reliability_bins(qtbot, trained, fmnist_folder):
    view = _shown(qtbot, EvaluationView(), trained)
    view.split.setCurrentText("test")
    with qtbot.waitSignal(view.evaluated, timeout=60_000):
        qtbot.mouseClick(view.evaluate_button, Qt.MouseButton.LeftButton)
    report, _ = evaluate(trained["checkpoint"], fmnist_folder, split="test")
    expected = report.extra["calibration"]
    for name in ("before", "after"):
        x, y = view.reliability.points(name)
        filled = [b for b in expected[f"reliability_{name}"] if b["count"]]
        assert list(x) == pytest.approx([b["confidence"] for b in filled])
        assert list(y) == pytest.approx([b["accuracy"] for b in filled])
    text = view.reliability.summary.text()
    assert f"{expected['ece_before']:.1%}" in text
    if expected["fitted"]:
        assert f"<b>{expected['ece_after']:.1%}</b>" in text and f"temperature {expected['temperature']:.2f}" in text
        assert "confidence calibrated" in view.summary.text()
    else:
        assert "Not calibrated" in text
    # The page's tab is in sight at this width (not behind a scroll arrow) and a click opens it.
    bar = view.details.tabBar()
    index = [bar.tabText(i) for i in range(bar.count())].index("Confidence")
    assert bar.tabRect(index).right() <= bar.width()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    assert view.details.currentIndex() == index
    qtbot.waitUntil(view.reliability.isVisible, timeout=5_000)
    if SHOTS:
        view.grab().save(str(Path(SHOTS) / "evaluation-confidence.png"))


def test_foreign_images_dropped_on_predict_are_marked_unlike_the_training_images(
    qtbot, trained, fmnist_folder, drop
):
    view = _shown(qtbot, PredictionsView(), trained)
    shots = sorted(SCREENSHOTS.glob("*.png"))[:4]
    clothes = sorted((fmnist_folder / "test" / "Trouser").glob("*.png"))[:3]
    with qtbot.waitSignal(view.predicted, timeout=30_000):
        assert drop(view, [*shots, *clothes])
    by_path = {result.path: row for row, result in enumerate(view.results)}
    for shot in shots:
        assert view.shown_warning(by_path[str(shot)]), shot
    assert sum(view.shown_warning(by_path[str(c)]) for c in clothes) <= 1
    assert f"{len(shots) + sum(view.shown_warning(by_path[str(c)]) for c in clothes)} {WARNING}" in view.status.text()
    note = view.confidence_note.text()
    assert note.startswith("Probabilities") and "calibrated" in note and "flagged" in note
    assert view.confidence_note.isVisible()
    if SHOTS:
        view.grab().save(str(Path(SHOTS) / "predictions-ood.png"))


def test_the_apps_warning_is_the_engines():
    assert predictions_module.WARNING == WARNING
