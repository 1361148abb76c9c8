"""The whole story a newcomer lives in the app (issue 14), in one real window driven by clicks and keys, with the
real engine on real Fashion-MNIST PNGs: open a folder → pick a small model → train one epoch → the evaluation
appears by itself → predict an image → inspect the run's layers → train a second run → compare the two in Runs →
export. At each step it checks what the user would see on screen, and the files written."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QWidget

from workbench.app.window.main_window import WINDOW_TITLE, MainWindow
from workbench.app.window.menus import TAB_NAMES
from workbench.app.window.settings import AppSettings

MODEL = "course_cnn"  # the zoo's smallest convolutional network: one epoch on 108 images takes seconds
CLASSES = 10
TEST_PER_CLASS = 3  # conftest's fmnist_small: 12 train + 3 test images per class
CTRL = Qt.KeyboardModifier.ControlModifier
DEFAULT_NAME = re.compile(rf"{MODEL} on fmnist-small\d* · [A-Z][a-z]{{2}} \d{{1,2}} \d\d:\d\d")


def _click(qtbot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _click_tab(qtbot, win: MainWindow, index: int) -> None:
    bar = win.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    qtbot.waitUntil(lambda: win.tabs.currentIndex() == index, timeout=5_000)


def _click_row(qtbot, view, row: int, column: int = 0, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A click on a cell of a table (or the zoo's view) as the user aims at it."""
    index = view.model().index(row, column)
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier, view.visualRect(index).center())


def _train(qtbot, win: MainWindow) -> str:
    """Press Train in the Train tab and wait for the run to finish; its run id."""
    panel = win.training_panel
    with qtbot.waitSignal(panel.run_finished, timeout=180_000) as finished:
        _click(qtbot, panel.start_button)
    event = finished.args[0]
    assert event.status == "finished", event
    assert Path(event.checkpoint).is_file()
    return event.run_id


def test_a_newcomer_goes_from_a_folder_to_an_exported_model(qtbot, fmnist_small, monkeypatch, tmp_path):
    # ---- launch ---------------------------------------------------------------------------------------------
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.resize(1400, 880)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    assert win.windowTitle() == WINDOW_TITLE
    assert [win.tabs.tabText(i) for i in range(win.tabs.count())] == [
        f"{i + 1}  {name}" for i, name in enumerate(TAB_NAMES)
    ]

    # ---- File → Open dataset folder (Ctrl+O), the folder picked in the dialog --------------------------------
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *_args: str(fmnist_small)))
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000) as loaded:
        qtbot.keyClick(win, Qt.Key.Key_O, CTRL)
    summary = loaded.args[0]
    assert len(summary.classes) == CLASSES and summary.split_total("test") == CLASSES * TEST_PER_CLASS
    assert win.tabs.currentWidget() is win.dataset_panel
    assert f"{CLASSES} classes" in win.training_panel.status_label.text()
    qtbot.waitUntil(lambda: "Next:" in win.statusBar().currentMessage(), timeout=5_000)  # what to do next

    # ---- Model tab: the user picks a small model in the zoo table ---------------------------------------------
    _click_tab(qtbot, win, 1)
    models = win.model_panel
    qtbot.waitUntil(lambda: MODEL in models.model_names(), timeout=60_000)
    _click_row(qtbot, models.table, models.model_names().index(MODEL))
    qtbot.waitUntil(lambda: models.selected_model() == MODEL, timeout=5_000)
    assert not models.automatic.isChecked()  # their own pick: "Let the workbench choose" is off
    qtbot.waitUntil(lambda: "parameters" in models.totals.text(), timeout=60_000)  # its layer summary

    # ---- Train tab: one epoch, the plan sentence, Train --------------------------------------------------------
    _click_tab(qtbot, win, 2)
    panel = win.training_panel
    panel.form.epochs.selectAll()
    qtbot.keyClicks(panel.form.epochs, "1")
    assert panel.form.values()["epochs"] == 1
    qtbot.waitUntil(lambda: MODEL in panel.plan_label.text() and panel.plan_label.isVisible(), timeout=30_000)
    first = _train(qtbot, win)
    assert first in win.run_label.text()  # the status bar names the run
    assert len(panel.plots.series("val_acc")[1]) >= 1  # the curves got their epoch

    # ---- Evaluate: it runs by itself once the run has finished ------------------------------------------------
    evaluation = win.evaluation_view
    qtbot.waitUntil(lambda: evaluation.report is not None and not evaluation.busy, timeout=120_000)
    _click_tab(qtbot, win, 3)
    assert evaluation.runs.current_run_id() == first
    assert "accuracy" in evaluation.summary.text() and "(test split)" in evaluation.summary.text()
    assert evaluation.matrix.rowCount() == CLASSES
    counts = [[evaluation.matrix.count(i, j) for j in range(CLASSES)] for i in range(CLASSES)]
    assert sum(map(sum, counts)) == CLASSES * TEST_PER_CLASS  # every test image in the matrix once
    assert evaluation.losses_gallery.count() > 0
    assert evaluation.exclude_button.isEnabled()  # the user's own folder: theirs to curate

    # ---- Predict: Add images… (the file dialog answers with one test image) ----------------------------------
    _click_tab(qtbot, win, 4)
    predictions = win.predictions_view
    image = sorted((fmnist_small / "test" / "Sneaker").glob("*.png"))[0]
    monkeypatch.setattr(
        QFileDialog, "getOpenFileNames", staticmethod(lambda *_args: ([str(image)], "Images (*.png)"))
    )
    qtbot.waitUntil(lambda: predictions.runs.current_run_id() == first, timeout=10_000)
    with qtbot.waitSignal(predictions.predicted, timeout=60_000):
        _click(qtbot, predictions.add_button)
    assert predictions.table.rowCount() == 1 and predictions.table.item(0, 0).text() == image.name
    top = predictions.shown_top(0)
    assert top and all(name in summary.classes for name, _ in top)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True) and 0 < sum(
        p for _, p in top
    ) <= 1.0001
    assert predictions.status.text().startswith("1 image(s) classified")

    # ---- Inspect: the run is open, a first layer shown without a click ----------------------------------------
    _click_tab(qtbot, win, 5)
    inspector = win.inspector_view
    qtbot.waitUntil(lambda: inspector.tile_count() > 0, timeout=60_000)
    assert inspector.runs.current_run_id() == first
    layer = inspector.current_layer()
    assert (
        layer and inspector.pictures.layer == layer and inspector.tile_count() == inspector.pictures.channels
    )
    assert f"{inspector.pictures.channels} channels" in inspector.status.text()

    # ---- A second run to compare with (Ctrl+Return: Train) ----------------------------------------------------
    _click_tab(qtbot, win, 2)
    with qtbot.waitSignal(panel.run_finished, timeout=180_000) as finished:
        qtbot.keyClick(win, Qt.Key.Key_Return, CTRL)
    second = finished.args[0].run_id
    assert finished.args[0].status == "finished" and second != first
    qtbot.waitUntil(
        lambda: evaluation.runs.current_run_id() == second and not evaluation.busy, timeout=120_000
    )

    # ---- Runs: both listed with readable names; select both, Compare -----------------------------------------
    _click_tab(qtbot, win, 6)
    runs = win.runs_view
    qtbot.waitUntil(lambda: sorted(runs.run_ids()) == sorted([first, second]), timeout=30_000)
    names = [runs.records[run_id].name for run_id in (first, second)]
    assert all(DEFAULT_NAME.fullmatch(name) for name in names), names  # model, dataset and time
    _click_row(qtbot, runs.table, 0, column=2)
    _click_row(qtbot, runs.table, 1, column=2, modifier=CTRL)
    assert sorted(runs.selected_run_ids()) == sorted([first, second])
    _click(qtbot, runs.buttons["compare"])
    plot = runs.comparison
    qtbot.waitUntil(lambda: sorted(plot.run_ids()) == sorted([first, second]), timeout=10_000)
    assert plot.legend_labels() == [f"{runs.records[r].name} ({r})" for r in plot.run_ids()]
    assert runs.charts.tabText(runs.charts.currentIndex()) == "Compare"

    # ---- File → Export… (Ctrl+E) of the run selected in Runs, as ONNX ---------------------------------------
    _click_row(qtbot, runs.table, runs.row_of(first), column=2)
    assert runs.selected_run_ids() == [first]
    qtbot.keyClick(win, Qt.Key.Key_E, CTRL)
    dialog = win.export_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.runs.current_run_id() == first, timeout=10_000)
    dialog.format.setCurrentIndex(dialog.format.findData("onnx"))
    dialog.out.setText(str(tmp_path))
    with qtbot.waitSignal(dialog.exported, timeout=120_000, raising=False) as exported:
        _click(qtbot, dialog.export_button)
    assert exported.signal_triggered, dialog.message.text()  # why it failed, or that it was still at work
    result = exported.args[0]
    assert result.path == tmp_path / f"{MODEL}.onnx" and result.path.is_file()
    metadata = json.loads(Path(f"{result.path}.json").read_text())  # its metadata, beside it
    assert sorted(metadata["classes"]) == sorted(summary.classes)
    assert result.max_abs_diff < 1e-4
    assert str(result.path) in dialog.message.text()
    dialog.close()
    win.shutdown_workers()
