"""Issue 14, the result views as a newcomer meets them, on real trained runs and real clicks: Add images… opens
a dialog in the dataset's folder, an exception in any slot reaches the user as an error dialog, the inspector
opens on the selected run showing the first convolution, Compare names and tells the runs apart off the data
on the app's white theme, the Runs table's test accuracy equals Evaluate's figure (same checkpoint, same
procedure, both said), runs can be renamed, sorted and filtered, small validation sets are called out, the
galleries' order matches the number they show, and the confusion matrix's column names are readable."""

from __future__ import annotations

import json
import re
import shutil
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QLineEdit, QMessageBox, QPushButton, QWidget
from tiny_run import train_tiny_run

from workbench.app.evaluation.view import EvaluationView
from workbench.app.inspector.view import InspectorView
from workbench.app.predictions.view import PredictionsView
from workbench.app.qt import dialogs
from workbench.app.runs.table import COLUMNS, NAME_COLUMN
from workbench.app.runs.view import RunsView
from workbench.engine.runs import RunRegistry


@pytest.fixture(scope="module")
def runs(fmnist_folder, tmp_path_factory) -> dict[str, object]:
    """Two course_cnn runs (1 epoch each) on a private copy of the Fashion-MNIST PNGs (60 train = 54 + 6
    validation, 20 test per class), in their own WORKBENCH_HOME."""
    home = tmp_path_factory.mktemp("newcomer-home")
    data = Path(shutil.copytree(fmnist_folder, tmp_path_factory.mktemp("newcomer-data") / "fmnist"))
    first = train_tiny_run(data, home)
    second = train_tiny_run(data, home)
    return {"home": first["home"], "data": str(data), "run_ids": [first["run_id"], second["run_id"]]}


@pytest.fixture(autouse=True)
def runs_home(runs, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", runs["home"])


def _shown(qtbot, widget: QWidget, size: tuple[int, int] = (1300, 800)) -> QWidget:
    qtbot.addWidget(widget)
    widget.resize(*size)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _click(qtbot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


# ---- 1: a failing slot is an error dialog; Add images… opens its dialog ------------------------------


@pytest.mark.qt_no_exception_capture
def test_an_exception_raised_in_a_slot_shows_an_error_dialog_with_the_traceback(qtbot, monkeypatch, caplog):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    dialogs.install_exception_hook()
    shown: list[tuple[str, str, str]] = []
    boxes: list[QMessageBox] = []
    real = dialogs.show_error

    def record(parent, title, message, details=""):
        shown.append((title, message, details))
        boxes.append(real(parent, title, message, details))
        return boxes[-1]

    monkeypatch.setattr(dialogs, "show_error", record)
    button = _shown(qtbot, QPushButton("Break"), (120, 40))

    def broken_slot() -> None:
        raise ValueError("the slot failed")

    button.clicked.connect(broken_slot)
    _click(qtbot, button)
    qtbot.waitUntil(lambda: bool(shown), timeout=5_000)
    title, message, details = shown[0]
    assert "the slot failed" in message and "ValueError" in message
    assert "broken_slot" in details and "Traceback" in details
    box = boxes[0]
    qtbot.waitUntil(box.isVisible, timeout=5_000)
    assert box.objectName() == dialogs.ERROR_DIALOG_NAME
    assert "the slot failed" in box.text() and "broken_slot" in box.detailedText()
    assert any("the slot failed" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")  # logged
    box.close()

    # an exception reported from another thread reaches the dialog on the UI thread
    error = RuntimeError("failed off the UI thread")
    thread = threading.Thread(target=lambda: sys.excepthook(RuntimeError, error, None))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: len(boxes) == 2, timeout=5_000)
    assert "failed off the UI thread" in boxes[1].text() and boxes[1].thread() is QApplication.instance().thread()
    boxes[1].close()


def test_add_images_opens_the_dialog_in_the_dataset_folder_and_predicts(qtbot, runs, monkeypatch):
    dataset = str(Path(runs["data"]) / "test")
    image = sorted((Path(dataset) / "Sneaker").glob("*.png"))[0]
    asked: list[tuple] = []

    def pick(parent, caption, start, file_filter):
        asked.append((caption, start, file_filter))
        return [str(image)], file_filter

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(pick))
    view = _shown(qtbot, PredictionsView(dataset_folder_source=lambda: dataset))
    view.set_run(runs["run_ids"][0])
    qtbot.waitUntil(lambda: view.runs.current_run_id() == runs["run_ids"][0], timeout=10_000)
    _click(qtbot, view.add_button)
    assert asked and asked[0][1] == dataset  # the dataset's folder, not the button's `checked` (False)
    qtbot.waitUntil(lambda: view.table.rowCount() == 1 and view.table.cellWidget(0, 1) is not None, timeout=30_000)
    assert view.shown_top(0)

    saved: list[str] = []
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", staticmethod(lambda p, c, start, f: (saved.append(start), ("", ""))[1])
    )
    qtbot.waitUntil(view.export_button.isEnabled, timeout=5_000)
    _click(qtbot, view.export_button)
    assert saved == [str(Path(dataset) / "predictions.csv")]


def test_start_folder_is_the_dataset_else_the_last_used_else_home(tmp_path, monkeypatch):
    monkeypatch.setattr(dialogs, "_start_folders", {"dataset": None, "last": None})
    assert dialogs.start_folder() == str(Path.home())
    dialogs.remember_folder(tmp_path / "nowhere.png")
    assert dialogs.start_folder() == str(tmp_path)
    dataset = tmp_path / "data"
    dataset.mkdir()
    dialogs.set_dataset_folder(str(dataset))
    assert dialogs.start_folder() == str(dataset)
    assert dialogs.start_folder(file_name="x.csv") == str(dataset / "x.csv")


# ---- 2: the inspector opens on the selected run and shows the first convolution -----------------------


def test_the_inspector_opens_on_the_selected_run_and_shows_the_first_convolution(qtbot, runs, monkeypatch):
    view = _shown(qtbot, InspectorView())
    run_id = runs["run_ids"][0]
    view.runs.refresh(select=run_id)  # what the window does when a run is opened or finished: no Reload
    qtbot.waitUntil(lambda: view.tile_count() > 0, timeout=30_000)
    first_conv = next(node.name for node in view.inspector.layer_tree().walk() if node.kind == "conv")
    assert view.current_layer() == first_conv
    assert view.pictures.layer == first_conv and view.tile_count() == view.pictures.channels
    assert f"{view.pictures.channels} channels" in view.status.text()
    assert view.image_path and Path(view.image_path).is_file()  # an image of the run's own dataset

    asked: list[str] = []
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", staticmethod(lambda p, c, start, f: (asked.append(start), ("", ""))[1])
    )
    view.image_chooser.path = None
    _click(qtbot, view.image_chooser.image_button)
    assert asked and Path(asked[0]) == Path(runs["data"])  # the run's dataset folder, not the working folder


# ---- 5, 14: compare, names, columns, sorting, filtering ---------------------------------------------


def _listed_runs_view(qtbot, count: int = 2) -> RunsView:
    view = _shown(qtbot, RunsView())
    with qtbot.waitSignal(view.runs_listed, timeout=10_000):
        view.refresh()
    assert view.table.rowCount() == count
    return view


def test_compare_names_each_run_with_its_own_colour_and_marker_beside_the_data(qtbot, runs):
    view = _listed_runs_view(qtbot)
    view.table.selectAll()
    _click(qtbot, view.buttons["compare"])
    plot = view.comparison
    qtbot.waitUntil(lambda: len(plot.run_ids()) == 2, timeout=5_000)
    records = {run_id: RunRegistry().get(run_id) for run_id in plot.run_ids()}
    assert plot.legend_labels() == [f"{records[r].name} ({r})" for r in plot.run_ids()]
    colours = {plot.styles[r][0] for r in plot.run_ids()}
    markers = {plot.styles[r][1] for r in plot.run_ids()}
    assert len(colours) == 2 and len(markers) == 2
    for run_id in plot.run_ids():
        curve = plot.curves[run_id][0]
        assert curve.opts["symbol"] == plot.styles[run_id][1]
        assert curve.opts["symbolBrush"].color().name() == plot.styles[run_id][0]
    qtbot.waitUntil(lambda: plot.legend.sceneBoundingRect().width() > 0, timeout=5_000)
    legend = plot.legend.sceneBoundingRect()
    for data_area in (plot.acc_plot.vb.sceneBoundingRect(), plot.loss_plot.vb.sceneBoundingRect()):
        assert not legend.intersects(data_area)
    assert plot.view.backgroundBrush().color().name() == "#ffffff"  # the app's plots' theme, not black


def test_runs_are_named_described_renamed_sorted_and_filtered(qtbot, runs):
    view = _listed_runs_view(qtbot)
    first, second = runs["run_ids"]
    record = RunRegistry().get(first)
    row = view.row_of(first)
    cells = {name: view.table.item(row, column).text() for column, name in enumerate(COLUMNS)}
    assert cells["name"] == record.name
    assert cells["image size"] == f"{record.config['img_size']} px"
    assert cells["weights"] == "scratch" and cells["epochs"] == "1/1"
    assert cells["strategy"] and cells["duration"]

    # rename by editing the name cell, as a user does: double-click, type, Enter
    rect = view.table.visualItemRect(view.table.item(row, NAME_COLUMN))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: view.table.state() == view.table.State.EditingState, timeout=5_000)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit)
    editor.selectAll()
    qtbot.keyClicks(editor, "baseline sneakers")
    with qtbot.waitSignal(view.run_renamed, timeout=10_000):
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    renamed = RunRegistry().get(first)
    assert renamed.name == "baseline sneakers"
    assert renamed.updated == record.updated  # a rename is no training: the duration stays
    assert json.loads((Path(renamed.run_dir) / "run.json").read_text())["name"] == "baseline sneakers"
    assert view.table.item(view.row_of(first), NAME_COLUMN).text() == "baseline sneakers"

    # sorting by a clicked header
    header = view.table.horizontalHeader()
    x = header.sectionViewportPosition(NAME_COLUMN) + header.sectionSize(NAME_COLUMN) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, header.height() // 2))
    names = [view.table.item(r, NAME_COLUMN).text() for r in range(view.table.rowCount())]
    assert names in (sorted(names, key=str.lower), sorted(names, key=str.lower, reverse=True))

    # filtering with the filter box
    qtbot.keyClicks(view.filter, "baseline")
    assert view.visible_run_ids() == [first]
    view.filter.clear()
    assert sorted(view.visible_run_ids()) == sorted([first, second])


# ---- 6, 16, 11: one test figure everywhere, small validation sets, galleries, headers ------------------


def _evaluated(qtbot, run_id: str) -> EvaluationView:
    view = _shown(qtbot, EvaluationView())
    view.set_run(run_id)
    qtbot.waitUntil(lambda: view.runs.current_run_id() == run_id, timeout=10_000)
    with qtbot.waitSignal(view.evaluated, timeout=60_000):
        _click(qtbot, view.evaluate_button)  # default split and checkpoint
    return view


def _percent(text: str) -> str:
    return re.search(r"\d+\.\d%", text).group(0)


def test_the_runs_table_test_accuracy_equals_evaluates_figure_and_both_say_how(qtbot, runs):
    run_id = runs["run_ids"][0]
    table = _listed_runs_view(qtbot)
    test_cell = table.table.item(table.row_of(run_id), COLUMNS.index("test acc (best.pt)"))
    assert "best.pt" in COLUMNS[COLUMNS.index("test acc (best.pt)")]
    assert re.search(r"single view|mirror-averaged", test_cell.text())
    assert "best.pt" in test_cell.toolTip()

    view = _evaluated(qtbot, run_id)
    summary = view.summary.text()
    assert _percent(summary) == _percent(test_cell.text())
    assert view.report.accuracy == pytest.approx(RunRegistry().get(run_id).test_acc, abs=1e-9)
    assert "best.pt" in summary and "the model the run keeps" in summary
    assert ("mirror" in summary) == ("mirror" in test_cell.text())
    assert "the run's own test accuracy" in summary

    view.checkpoint.setCurrentIndex(view.checkpoint.findData("last"))
    qtbot.waitUntil(view.evaluate_button.isEnabled, timeout=10_000)
    with qtbot.waitSignal(view.evaluated, timeout=60_000):
        _click(qtbot, view.evaluate_button)
    assert "last.pt" in view.summary.text() and "the last epoch" in view.summary.text()


def test_a_small_validation_set_is_called_out_beside_the_accuracy(qtbot, runs):
    run_id = runs["run_ids"][0]
    view = _evaluated(qtbot, run_id)
    assert "too small to pick the best epoch" in view.summary.text()  # 6 validation images per class

    table = _listed_runs_view(qtbot)
    rect = table.table.visualItemRect(table.table.item(table.row_of(run_id), 0))
    qtbot.mouseClick(table.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(table.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: "too small to pick the best epoch" in table.details.text(), timeout=10_000)


def _caption_losses(gallery) -> list[float]:
    return [
        float(re.search(r"loss (\d+\.\d+)", gallery.item(row).text()).group(1)) for row in range(gallery.count())
    ]


def test_galleries_show_the_loss_they_are_ordered_by_and_column_names_are_readable(qtbot, runs):
    view = _evaluated(qtbot, runs["run_ids"][0])
    losses = _caption_losses(view.losses_gallery)
    assert losses and losses == sorted(losses, reverse=True)

    matrix = view.matrix
    cells = [(i, j) for i in range(matrix.rowCount()) for j in range(matrix.columnCount()) if matrix.count(i, j) > 1]
    i, j = max(cells, key=lambda cell: matrix.count(*cell))
    rect = matrix.visualItemRect(matrix.item(i, j))
    qtbot.mouseClick(matrix.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: view.cell_gallery.count() == matrix.count(i, j), timeout=5_000)
    cell_losses = _caption_losses(view.cell_gallery)
    assert cell_losses == sorted(cell_losses, reverse=True) and "highest loss first" in view.cell_title.text()

    header = matrix.horizontalHeader()
    metrics = header.fontMetrics()
    for column, name in enumerate(view.report.classes):
        item = matrix.horizontalHeaderItem(column)
        assert item.text().replace("\n", " ") == name and name in item.toolTip()
        widest = max(metrics.horizontalAdvance(line) for line in item.text().split("\n"))
        assert header.sectionSize(column) >= widest  # "Ankle boot" whole, not "nkle boot"
