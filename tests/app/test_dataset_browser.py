"""The dataset browser, driven like a user: real drops of real folders, clicks, the preview, curation."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from workbench.app.qt import dialogs
from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings


@pytest.fixture
def window(qtbot):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)  # start-up work begun, as before a user acts
    yield win
    win.shutdown_workers()


def test_dropping_a_presplit_folder_shows_classes_counts_and_thumbnails(qtbot, window, drop, fmnist_small):
    panel = window.dataset_panel
    chart = panel.balance_chart
    # Before any dataset the chart says what it will show: no bars, no axes from 0 to 1.
    assert chart.placeholder_shown() and chart.bar_count() == 0
    assert not chart.getPlotItem().getAxis("left").isVisible()
    with qtbot.waitSignal(panel.dataset_loaded, timeout=30_000):
        assert drop(window, [fmnist_small])
    assert not chart.placeholder_shown() and chart.getPlotItem().getAxis("left").isVisible()

    counts = panel.class_counts()
    assert sorted(counts) == sorted(p.name for p in (fmnist_small / "train").iterdir())
    assert len(counts) == 10 and "Trouser" in counts
    for per_split in counts.values():
        # 12 training images per class, some held out for validation (there is no val folder), 3 test images
        assert per_split["train"] + per_split.get("val", 0) == 12
        assert per_split["test"] == 3
    assert "10 classes" in window.dataset_label.text()
    assert panel.balance_chart.bar_count() == len(panel.summary.present_splits)
    assert panel.thumbnails.rowCount() == 150
    assert window.settings.last_dataset() == [str(fmnist_small)]

    # Filter by class and split, then select an image: the preview gives its pixel size and mode.
    panel.class_filter.setCurrentText("Trouser")
    panel.split_filter.setCurrentText("test")
    assert panel.filter_model.rowCount() == 3
    assert "3 of 150" in panel.shown_label.text()
    panel.select_row(0)
    qtbot.waitUntil(lambda: "28 × 28 px" in panel.preview_text(), timeout=10_000)
    assert "mode L" in panel.preview_text()
    assert "Trouser" in panel.preview_text()
    assert panel.preview.pixmap() is not None and not panel.preview.pixmap().isNull()
    # Another class filter hides that image: the preview no longer shows it, nor can curation act on it.
    panel.class_filter.setCurrentText("Coat")
    assert panel.selected_item() is None
    assert "Trouser" not in panel.preview_text() and panel.preview.text() == "Select an image"
    assert not panel.curation.exclude_button.isEnabled()


def test_dropping_several_folders_makes_each_one_class(qtbot, window, drop, class_folders):
    with qtbot.waitSignal(window.dataset_panel.dataset_loaded, timeout=30_000) as loaded:
        assert drop(window, class_folders)
    summary = loaded.args[0]
    assert summary.classes == sorted(folder.name for folder in class_folders)
    assert summary.total == 36
    assert window.dataset_panel.folders == [str(f) for f in class_folders]


def test_dropping_an_empty_folder_shows_an_error_and_keeps_the_app_usable(
    qtbot, window, drop, tmp_path, fmnist_small
):
    empty = tmp_path / "empty"
    empty.mkdir()
    panel = window.dataset_panel
    with qtbot.waitSignal(panel.scan_failed, timeout=30_000) as failed:
        assert drop(window, [empty])
    assert str(empty) in panel.error_label.text()
    assert panel.error_label.isVisible()
    assert failed.args[0]  # the engine's message, shown as is
    assert panel.summary is None

    # Still usable: a good folder loads afterwards and clears the error.
    with qtbot.waitSignal(panel.dataset_loaded, timeout=30_000):
        drop(window, [fmnist_small])
    assert not panel.error_label.isVisible()


def test_dropping_files_instead_of_folders_is_refused(qtbot, window, drop, fmnist_small):
    a_file = next((fmnist_small / "train" / "Bag").iterdir())
    assert drop(window, [a_file]) is False
    assert not window.dataset_panel.scanning


def test_cancelled_scan_leaves_no_dataset(qtbot, window, drop, fmnist_small):
    panel = window.dataset_panel
    window.load_dataset([str(fmnist_small)])
    assert panel.scanning and panel.cancel_button.isVisibleTo(panel)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.scanning
    qtbot.wait(300)  # the worker's late result, if any, must be ignored
    assert panel.summary is None


def test_exclude_and_relabel_move_files_after_confirmation_and_undo(
    qtbot, window, drop, fmnist_small, tmp_path, monkeypatch
):
    data = tmp_path / "data"
    shutil.copytree(fmnist_small, data)
    panel = window.dataset_panel
    with qtbot.waitSignal(panel.dataset_loaded, timeout=30_000):
        drop(window, [data])
    panel.class_filter.setCurrentText("Bag")
    panel.split_filter.setCurrentText("test")

    # Declining the confirmation changes nothing on disk.
    monkeypatch.setattr(dialogs, "confirm", lambda *args, **kwargs: False)
    panel.select_row(0)
    first = panel.selected_item()
    qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)
    assert (data / "test" / "Bag" / first.path.split("/")[-1]).exists()

    monkeypatch.setattr(dialogs, "confirm", lambda *args, **kwargs: True)
    qtbot.mouseClick(panel.exclude_button, Qt.MouseButton.LeftButton)
    name = first.path.split("/")[-1]
    assert not (data / "test" / "Bag" / name).exists()
    assert (data / "test" / "Bag" / ".excluded" / name).is_file()
    assert panel.class_counts()["Bag"]["test"] == 2

    panel.select_row(1)
    second = panel.selected_item()
    panel.move_target.setCurrentText("Sneaker")
    qtbot.mouseClick(panel.move_button, Qt.MouseButton.LeftButton)
    moved = data / "test" / "Sneaker" / second.path.split("/")[-1]
    assert moved.is_file() or any((data / "test" / "Sneaker").glob(moved.stem + "-*.png"))
    assert panel.class_counts()["Bag"]["test"] == 1
    assert panel.class_counts()["Sneaker"]["test"] == 4

    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert sorted(p.name for p in (data / "test" / "Bag").glob("*.png")) == sorted(
        p.name for p in (fmnist_small / "test" / "Bag").glob("*.png")
    )
    assert panel.class_counts()["Bag"]["test"] == 3
    assert not panel.undo_button.isEnabled()


def test_bad_files_appear_in_the_problem_list_with_path_and_reason(
    qtbot, window, drop, fmnist_small, tmp_path
):
    data = tmp_path / "mixed"
    for name in ("Bag", "Trouser"):
        shutil.copytree(fmnist_small / "train" / name, data / name)
    (data / "Bag" / "empty.png").write_bytes(b"")
    (data / "Trouser" / "notes.png").write_text("this is not a picture")
    panel = window.dataset_panel
    with qtbot.waitSignal(panel.dataset_loaded, timeout=30_000):
        drop(window, [data])
    problems = dict(panel.problems_shown())
    assert problems[str(data / "Bag" / "empty.png")] == "zero bytes"  # found by the scan itself
    # The text file passes the scan (it is not decoded there); its thumbnail meets it and reports it.
    qtbot.waitUntil(
        lambda: str(data / "Trouser" / "notes.png") in dict(panel.problems_shown()), timeout=20_000
    )
    assert panel.problems_box.title() == "Problems (2)"
    tree = panel.problems_box.tree  # every row, the scan's and the late one, says itself whole on hover
    rows = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert all(row.toolTip(0) == row.text(0) and row.toolTip(1) == row.text(1) != "" for row in rows)
    assert panel.class_counts()["Bag"]["train"] + panel.class_counts()["Bag"].get("val", 0) == 12


# ---- the scan as a background job: progress, Cancel, errors (the engine's scan stood in for) --------------


def _scanning_panel(qtbot, monkeypatch, fake_scan):
    """A dataset panel on screen whose scans run `fake_scan(folders, should_stop, progress, …)` in the engine's
    place, so that a scan lasts as long as the test needs."""
    import workbench.app.dataset.scan as scan_module
    from workbench.app.dataset.panel import DatasetPanel

    monkeypatch.setattr(scan_module, "scan_for_browser", fake_scan)
    panel = DatasetPanel()
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_cancel_stops_the_scan_itself_and_nothing_it_finds_arrives(qtbot, monkeypatch):
    stopped = threading.Event()

    def endless_scan(folders, should_stop, progress, val_fraction=0.1, seed=0):
        seen = 0
        while not should_stop():
            seen += 50
            progress(seen)
            time.sleep(0.01)
        stopped.set()
        raise RuntimeError("what the engine raises when stopped; must not be shown")

    panel = _scanning_panel(qtbot, monkeypatch, endless_scan)
    loaded: list[object] = []
    panel.dataset_loaded.connect(loaded.append)
    panel.load(["/data/anywhere"])
    qtbot.waitUntil(lambda: panel.scan_progress.value() >= 100, timeout=10_000)  # progress reaches the bar
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert not panel.scanning and not panel.cancel_button.isVisible()
    assert stopped.wait(5)  # the cancel reached the scan, which stopped
    qtbot.wait(300)
    assert loaded == [] and panel.summary is None
    assert not panel.error_label.isVisible()
    assert panel.findChild(QMessageBox, dialogs.ERROR_DIALOG_NAME) is None


def test_a_scan_that_crashes_says_so_with_details_and_the_panel_stays_usable(qtbot, monkeypatch):
    def crashing_scan(folders, should_stop, progress, val_fraction=0.1, seed=0):
        raise RuntimeError("boom in the scan")

    panel = _scanning_panel(qtbot, monkeypatch, crashing_scan)
    with qtbot.waitSignal(panel.scan_failed, timeout=10_000) as failed:
        panel.load(["/data/anywhere"])
    assert "RuntimeError: boom in the scan" in failed.args[0]
    assert panel.error_label.isVisible() and "/data/anywhere" in panel.error_label.text()
    box = panel.findChild(QMessageBox, dialogs.ERROR_DIALOG_NAME)
    assert box is not None and box.windowTitle() == "Scanning failed" != dialogs.UNEXPECTED_TITLE  # the job, #14
    assert "boom in the scan" in box.text() and "Traceback" in box.detailedText()
    assert not panel.scanning and not panel.cancel_button.isVisible()


def test_a_file_that_is_no_image_is_previewed_with_the_engines_reason(qtbot, window, drop, class_folders, tmp_path):
    """Text saved as x.png: the preview says why it cannot be shown, in words, not Pillow's exception."""
    folders = [shutil.copytree(folder, tmp_path / folder.name) for folder in class_folders]
    (folders[0] / "x.png").write_text("this is not a picture")
    with qtbot.waitSignal(window.dataset_panel.dataset_loaded, timeout=30_000):
        assert drop(window, folders)
    panel = window.dataset_panel
    for row in range(panel.filter_model.rowCount()):
        panel.select_row(row)
        if panel.selected_item().path.endswith("x.png"):
            break
    qtbot.waitUntil(lambda: "⚠" in panel.preview_text(), timeout=10_000)
    assert "not an image" in panel.preview_text() and "Error" not in panel.preview_text()
    assert panel.preview_text().count("x.png") == 1  # the path once, then the reason
