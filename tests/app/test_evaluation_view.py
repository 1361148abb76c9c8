"""The evaluation view on a real trained model: clicking a confusion-matrix cell shows exactly the images the
engine puts in that cell; metrics, normalization and curation of a top-loss image through the curator, which is
off (and says why) for the bundled sample inside the installation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from tiny_run import train_tiny_run

from workbench.app.evaluation.view import EvaluationView
from workbench.app.qt import dialogs
from workbench.app.window.settings import sample_dataset_path
from workbench.engine.evaluation.interpretation import ClassificationInterpretation


@pytest.fixture(scope="module")
def trained(fmnist_folder, tmp_path_factory) -> dict[str, str]:
    """course_cnn trained 1 epoch on a private copy of the Fashion-MNIST PNGs (this module curates files)."""
    home = tmp_path_factory.mktemp("eval-home")
    data = Path(shutil.copytree(fmnist_folder, tmp_path_factory.mktemp("eval-data") / "fmnist"))
    run = train_tiny_run(data, home)
    return {**run, "data": str(data)}


@pytest.fixture(autouse=True)
def trained_home(trained, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", trained["home"])


@pytest.fixture(scope="module")
def engine_interpretation(trained) -> ClassificationInterpretation:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", trained["home"])
        return ClassificationInterpretation.from_run(trained["run_id"], trained["data"], split="test")


def _evaluated_view(qtbot, trained) -> EvaluationView:
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1300, 800)
    view.show()
    qtbot.waitExposed(view)
    view.set_run(trained["run_id"])
    qtbot.waitUntil(lambda: view.runs.current_run_id() == trained["run_id"], timeout=10_000)
    view.split.setCurrentText("test")
    with qtbot.waitSignal(view.evaluated, timeout=60_000):
        qtbot.mouseClick(view.evaluate_button, Qt.MouseButton.LeftButton)
    return view


def _click_cell(qtbot, view: EvaluationView, row: int, column: int) -> None:
    matrix = view.matrix
    rect = matrix.visualItemRect(matrix.item(row, column))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_clicking_a_cell_shows_the_engines_images_for_that_cell(qtbot, trained, engine_interpretation):
    view = _evaluated_view(qtbot, trained)
    engine = engine_interpretation
    classes = engine.classes
    counts = engine.confusion_matrix()
    assert [[view.matrix.count(i, j) for j in range(10)] for i in range(10)] == counts.tolist()
    assert view.report.accuracy == pytest.approx(engine.report().accuracy)
    assert f"accuracy {engine.report().accuracy:.1%}" in view.summary.text()
    matrix = view.matrix  # every predicted class's column on screen, none behind a scroll bar
    last = matrix.columnCount() - 1
    qtbot.waitUntil(
        lambda: (
            matrix.columnViewportPosition(last) + matrix.columnWidth(last) <= matrix.viewport().width()
            and matrix.columnViewportPosition(0) >= 0
        ),
        timeout=3_000,
    )

    pair = engine.most_confused()[0]  # an off-diagonal cell with images in it
    row, column = classes.index(pair.true_class), classes.index(pair.predicted_class)
    _click_cell(qtbot, view, row, column)
    expected = [outcome.path for outcome in engine.cell(row, column)]
    assert [outcome.path for outcome in view.cell_gallery.outcomes()] == expected
    assert len(expected) == pair.count
    assert all(
        o.true_class == pair.true_class and o.predicted_class == pair.predicted_class
        for o in view.cell_gallery.outcomes()
    )
    assert f"{pair.count} image(s)" in view.cell_title.text()

    diagonal = classes.index(pair.true_class)
    _click_cell(qtbot, view, diagonal, diagonal)
    assert [o.path for o in view.cell_gallery.outcomes()] == [o.path for o in engine.cell(diagonal, diagonal)]

    view.normalize.setChecked(True)
    share = counts[row, column].item() / counts[row].sum().item()
    assert view.matrix.cell_text(row, column) == f"{share:.2f}"
    view.normalize.setChecked(False)
    assert view.matrix.cell_text(row, column) == str(pair.count)

    assert view.metrics_table.rowCount() == len(classes)
    assert view.confused_list.item(0).text() == f"{pair.true_class} → {pair.predicted_class}: {pair.count}"
    top = engine.top_losses(3)
    assert [o.path for o in view.losses_gallery.outcomes()[:3]] == [o.path for o in top]


def test_a_top_loss_image_is_excluded_through_the_curator_after_confirmation(qtbot, trained, monkeypatch):
    view = _evaluated_view(qtbot, trained)
    questions: list[str] = []
    answers = iter([False, True])

    def confirm(_parent, _title, question, **_kwargs) -> bool:
        questions.append(question)
        return next(answers)

    monkeypatch.setattr(dialogs, "confirm", confirm)
    view.losses_gallery.setCurrentRow(0)
    worst = view.losses_gallery.selected_outcome()
    source = Path(worst.path)

    view.exclude_selected()  # the user says No: nothing moves
    assert source.is_file() and worst.path in [o.path for o in view.losses_gallery.outcomes()]
    view.exclude_selected()  # Yes
    assert len(questions) == 2 and worst.path in questions[0]
    assert not source.exists()
    assert (source.parent / ".excluded" / source.name).is_file()
    assert worst.path not in [o.path for o in view.losses_gallery.outcomes()]


def test_a_top_loss_image_is_relabeled_to_the_chosen_class(qtbot, trained, monkeypatch):
    from workbench.app.evaluation import view as evaluation_view

    view = _evaluated_view(qtbot, trained)
    monkeypatch.setattr(dialogs, "confirm", lambda *_args, **_kwargs: True)
    offered: list[list[str]] = []

    def choose(_parent, _title, _label, items, current, _editable):
        offered.append(list(items))
        return items[current], True  # the suggestion: the class the model predicted

    monkeypatch.setattr(evaluation_view.QInputDialog, "getItem", staticmethod(choose))
    view.losses_gallery.setCurrentRow(0)
    outcome = view.losses_gallery.selected_outcome()
    source = Path(outcome.path)
    view.relabel_selected()
    assert outcome.true_class not in offered[0] and outcome.predicted_class in offered[0]
    assert not source.exists()
    moved = source.parent.parent / outcome.predicted_class / source.name
    assert moved.is_file() or list((source.parent.parent / outcome.predicted_class).glob(f"{source.stem}*"))
    assert outcome.path not in [o.path for o in view.losses_gallery.outcomes()]


@pytest.fixture(scope="module")
def sample_run(trained) -> str:
    """A run on the bundled sample itself (inside the installation), in the same home as `trained`."""
    return train_tiny_run(sample_dataset_path(), trained["home"])["run_id"]


def _button(view: EvaluationView, text: str) -> QPushButton:
    return next(b for b in view.findChildren(QPushButton) if b.text() == text)


def test_the_installed_sample_cannot_be_curated_from_the_top_losses_and_says_why(qtbot, trained, sample_run):
    view = EvaluationView()
    qtbot.addWidget(view)
    view.resize(1300, 800)
    view.show()
    qtbot.waitExposed(view)
    view.set_run(sample_run)
    qtbot.waitUntil(lambda: view.runs.current_run_id() == sample_run, timeout=10_000)
    with qtbot.waitSignal(view.evaluated, timeout=120_000):
        qtbot.mouseClick(view.evaluate_button, Qt.MouseButton.LeftButton)
    view.details.setCurrentIndex(1)  # the Top losses page
    qtbot.waitUntil(lambda: view.losses_gallery.count() > 0, timeout=5_000)
    view.losses_gallery.setCurrentRow(0)
    worst = Path(view.losses_gallery.selected_outcome().path)
    assert sample_dataset_path() in worst.parents

    exclude, relabel = _button(view, "Exclude…"), _button(view, "Relabel…")
    for button in (exclude, relabel):
        assert not button.isEnabled()
        assert "installation" in button.toolTip()  # the reason, where the user points
    assert view.read_only_label.isVisible() and "copy the folder" in view.read_only_label.text()
    qtbot.mouseClick(exclude, Qt.MouseButton.LeftButton)
    assert worst.is_file()  # the installation's file stays

    # The user's own copy of a dataset is theirs to curate again.
    view.set_run(trained["run_id"])
    qtbot.waitUntil(lambda: view.runs.current_run_id() == trained["run_id"], timeout=10_000)
    with qtbot.waitSignal(view.evaluated, timeout=120_000):
        qtbot.mouseClick(view.evaluate_button, Qt.MouseButton.LeftButton)
    assert exclude.isEnabled() and relabel.isEnabled()
    assert not view.read_only_label.isVisible()
    assert "installation" not in exclude.toolTip()


def test_a_failed_evaluation_leaves_no_earlier_result_on_screen(qtbot, trained, monkeypatch):
    """Under "Evaluation failed", the previous run's matrix, metrics and images read as this one's."""
    from workbench.app.evaluation import view as view_module
    from workbench.engine.errors import DatasetError

    view = _evaluated_view(qtbot, trained)
    assert view.matrix.rowCount() == 10 and view.metrics_table.rowCount() == 10
    shown: list[str] = []
    monkeypatch.setattr(dialogs, "show_error", lambda _parent, title, *_: shown.append(title))

    def no_test_split(*_args):
        raise DatasetError(f"{trained['data']}: no images in the test split")

    monkeypatch.setattr(view_module, "interpret_run", no_test_split)
    qtbot.waitUntil(lambda: not view.busy, timeout=10_000)  # the first evaluation has wound down
    view.evaluate(trained["run_id"])
    qtbot.waitUntil(lambda: bool(shown) and not view.busy, timeout=10_000)
    assert shown == ["Evaluation failed"] and "no images in the test split" in view.summary.text()
    assert view.matrix.rowCount() == 0 and view.metrics_table.rowCount() == 0 and view.report is None
    assert view.losses_gallery.outcomes() == [] and view.confused_list.count() == 0


def test_the_run_picker_names_the_run_and_its_figure_and_tells_its_id_and_dataset(qtbot, trained):
    from workbench.engine.runs import RunRegistry

    view = _evaluated_view(qtbot, trained)
    record = RunRegistry().get(trained["run_id"])
    assert record.name.startswith(record.model)  # the default name: said once in the label
    assert view.runs.combo.currentText() == f"{record.name} · val {record.best_val_acc:.1%}"
    tip = view.runs.combo.toolTip()
    assert trained["run_id"] in tip and record.dataset in tip and "best validation accuracy" in tip
