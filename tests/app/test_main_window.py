"""The window as a whole: start-up without torch, first launch, settings across launches, dialogs, closing."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QListView, QMessageBox

from workbench.app.dataset.thumbnails import ThumbItem, ThumbnailModel
from workbench.app.qt.dialogs import ERROR_DIALOG_NAME
from workbench.app.training.panel import TrainingPanel
from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings, sample_dataset_path
from workbench.engine.runs import RunRegistry
from workbench.engine.training.config import TrainConfig


def _open_window(qtbot, **kwargs) -> MainWindow:
    win = MainWindow(AppSettings(), **kwargs)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)  # start-up work begun, as before a user acts
    return win


def _wait_idle(qtbot, win: MainWindow) -> None:
    """End a test's training (if any) and background work before the window goes."""
    if win.training_panel.is_training:
        win.training_panel.stop()
        qtbot.waitUntil(lambda: not win.training_panel.is_training, timeout=60_000)
    win.shutdown_workers()


def test_the_window_module_imports_no_torch_and_startup_is_reported(workbench_home):
    code = (
        "import sys, workbench.app.window.launch, workbench.app.window.main_window;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'pyqtgraph')))"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert imported.stdout.strip() == "[]"

    launched = subprocess.run(
        [sys.executable, "-m", "workbench", "app", "--startup-time", "--quit-after-show"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert launched.returncode == 0, launched.stderr
    assert "window shown" in launched.stdout and "ms after process start" in launched.stdout


def test_first_launch_offers_the_sample_dataset_and_the_next_launch_reopens_it(qtbot):
    assert sample_dataset_path().is_dir()
    win = _open_window(qtbot)
    qtbot.waitUntil(lambda: win.findChild(QMessageBox, "sampleOffer") is not None, timeout=10_000)
    offer = win.findChild(QMessageBox, "sampleOffer")
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000) as loaded:
        qtbot.mouseClick(offer.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    assert len(loaded.args[0].classes) == 10
    assert loaded.args[0].split_total("test") > 0
    _wait_idle(qtbot, win)
    win.close()

    again = _open_window(qtbot)
    with qtbot.waitSignal(again.dataset_panel.dataset_loaded, timeout=60_000):
        pass  # the last dataset reopens by itself
    assert again.dataset_panel.folders == [str(sample_dataset_path())]
    assert again.findChild(QMessageBox, "sampleOffer") is None  # offered once only
    _wait_idle(qtbot, again)


def test_geometry_model_and_hyperparameters_persist_between_launches(qtbot, drop, fmnist_small):
    win = _open_window(qtbot, offer_sample=False)
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000):
        drop(win, [fmnist_small])
    qtbot.waitUntil(lambda: win.model_panel.select_model("lenet5"), timeout=60_000)
    form = win.training_panel.form
    form.epochs.setValue(7)
    form.lr.setText("0.02")
    form.optimizer.setCurrentText("adamw")
    assert form.values()["augment"] is None  # by default the engine chooses from the run length
    form.augment_auto.setChecked(False)
    assert form.flip.isEnabled()
    form.flip.setChecked(False)
    assert form.zoom.isEnabled()
    form.zoom.setValue(0.2)
    win.resize(790, 610)  # within the offscreen screen (800×800); Qt keeps it at least the window's minimum
    qtbot.wait(50)
    size_at_close = win.size()
    _wait_idle(qtbot, win)
    win.close()

    again = _open_window(qtbot, offer_sample=False)
    with qtbot.waitSignal(again.dataset_panel.dataset_loaded, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: again.model_panel.selected_model() == "lenet5", timeout=60_000)
    values = again.training_panel.form.values()
    assert (values["epochs"], values["lr"], values["optimizer"]) == (7, 0.02, "adamw")
    assert values["augment"].flip is False and values["augment"].zoom == 0.2
    assert not again.training_panel.form.augment_auto.isChecked()
    assert again.size() == size_at_close
    assert size_at_close.height() == 610
    assert again.train_action.shortcut().toString() == "Ctrl+Return"
    assert again.stop_action.shortcut().toString() == "Ctrl+."
    _wait_idle(qtbot, again)


def test_lr_finder_plots_the_sweep_and_sets_the_suggestion(qtbot, drop, fmnist_small):
    win = _open_window(qtbot, offer_sample=False)
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000):
        drop(win, [fmnist_small])
    qtbot.waitUntil(lambda: win.model_panel.select_model("course_cnn"), timeout=60_000)
    panel = win.training_panel
    win.tabs.setCurrentWidget(panel)  # a user clicks what is on screen
    panel.form.batch_size.setValue(16)
    panel.form.device.setCurrentText("cpu")
    qtbot.mouseClick(panel.form.lr_find_button, Qt.MouseButton.LeftButton)
    assert not panel.start_button.isEnabled()  # one job at a time
    qtbot.waitUntil(lambda: panel.lr_plot.points() > 10, timeout=120_000)
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert panel.views.currentWidget().widget() is panel.lr_plot
    suggestion = panel.form.learning_rate()
    assert suggestion is not None and 1e-6 <= suggestion <= 1.0
    assert f"{suggestion:.3g}" in panel.log_text()
    _wait_idle(qtbot, win)


class CrashingTrainerDouble:
    """Stands in for the engine only to test the UI plumbing of an unexpected worker exception."""

    run_id = None

    def __init__(self, config, *, resume=None):
        self.config = config

    def run(self):
        yield from ()
        raise RuntimeError("boom in the worker")

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def stop(self) -> None: ...


def test_a_worker_exception_shows_an_error_dialog_with_details_and_the_panel_stays_usable(qtbot, monkeypatch):
    import workbench.engine.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "Trainer", CrashingTrainerDouble)
    panel = TrainingPanel(lambda: TrainConfig(data="/anywhere", model="course_cnn"))
    qtbot.addWidget(panel)
    panel.show()
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.findChild(QMessageBox, ERROR_DIALOG_NAME) is not None, timeout=30_000)
    box = panel.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert "RuntimeError: boom in the worker" in box.text()
    assert "Traceback" in box.detailedText()
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert panel.state == "failed" and not panel.is_training


def test_a_failed_run_shows_the_engine_reason(qtbot, fmnist_small):
    config = TrainConfig(
        data=str(fmnist_small),
        model="course_cnn",
        epochs=1,
        device="cpu",
        weights=str(fmnist_small / "no-such-weights.pth"),
    )
    panel = TrainingPanel(lambda: config)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].status == "failed"
    box = panel.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert box is not None and "no-such-weights.pth" in box.text()
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)


def test_closing_while_training_asks_then_stops_with_a_checkpoint(qtbot, drop, fmnist_small, monkeypatch):
    from workbench.app.qt import dialogs

    win = _open_window(qtbot, offer_sample=False)
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000):
        drop(win, [fmnist_small])
    qtbot.waitUntil(lambda: win.model_panel.select_model("course_cnn"), timeout=60_000)
    panel = win.training_panel
    win.tabs.setCurrentWidget(panel)
    panel.form.epochs.setValue(200)
    panel.form.batch_size.setValue(8)
    panel.form.device.setCurrentText("cpu")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.plots.series("train_loss")[1]) > 0, timeout=120_000)

    asked: list[str] = []
    monkeypatch.setattr(
        dialogs, "confirm", lambda parent, title, question, **kw: asked.append(question) is None
    )
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as finished:
        assert win.close() is False  # not yet: the run must stop and save first
    assert asked and "Stop it" in asked[0]
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=30_000)
    event = finished.args[0]
    assert event.status == "stopped" and os.path.isfile(event.checkpoint)
    assert RunRegistry().get(event.run_id).status == "stopped"


def test_the_thumbnail_grid_only_decodes_what_is_on_screen(qtbot, tmp_path):
    model = ThumbnailModel()
    requested: list[str] = []
    model.loader.request = requested.append  # count requests instead of decoding 70,000 files
    model.set_items([ThumbItem(str(tmp_path / f"{i:05d}.png"), "c", "train") for i in range(70_000)])
    view = QListView()
    qtbot.addWidget(view)
    view.setViewMode(QListView.ViewMode.IconMode)
    view.setUniformItemSizes(True)
    view.setGridSize(QSize(80, 80))
    view.setModel(model)
    view.resize(800, 600)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: len(requested) > 0, timeout=10_000)
    assert len(requested) < 300  # about one screenful of 70,000
    view.scrollToBottom()
    qtbot.waitUntil(lambda: any(path.endswith("69999.png") for path in requested), timeout=10_000)
    assert len(requested) < 600


def test_a_dataset_dropped_before_the_first_paint_is_not_replaced_by_the_last_one(
    qtbot, fmnist_small, class_folders
):
    AppSettings().set_last_dataset([str(f) for f in class_folders])
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.load_dataset([str(fmnist_small)])  # the user is quicker than the first paint
    win.show()
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    qtbot.waitUntil(lambda: win.dataset_panel.summary is not None, timeout=60_000)
    assert not win.dataset_panel.scanning
    assert win.dataset_panel.folders == [str(fmnist_small)]
    _wait_idle(qtbot, win)
