"""The Train tab as a newcomer meets it (issues #13 and #14), driven as a user: real clicks on the window,
the real engine training course_cnn on a few real Fashion-MNIST images.

Set WORKBENCH_SCREENSHOTS=DIR to keep pictures of the Train tab (before Train, after Continue)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from workbench.app.model.panel import SOURCE_PRETRAINED
from workbench.app.qt.dialogs import ERROR_DIALOG_NAME
from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings
from workbench.cli.main import main as cli_main
from workbench.engine.runs import RunRegistry


def _open_window(qtbot) -> MainWindow:
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    return win


def _close(qtbot, win: MainWindow) -> None:
    panel = win.training_panel
    if panel.is_training:
        panel.stop()
        qtbot.waitUntil(lambda: not panel.is_training, timeout=60_000)
    win.save_settings()
    win.shutdown_workers()
    win.hide()


@pytest.fixture
def window(qtbot):
    win = _open_window(qtbot)
    yield win
    _close(qtbot, win)


def _load(qtbot, win, drop, folders) -> None:
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000):
        assert drop(win, folders)


def _prepare(qtbot, win, drop, folder, *, epochs: int, batch_size: int = 16, model: str = "course_cnn"):
    _load(qtbot, win, drop, [folder])
    qtbot.waitUntil(lambda: win.model_panel.select_model(model), timeout=60_000)
    form = win.training_panel.form
    form.epochs.setValue(epochs)
    form.batch_size.setValue(batch_size)
    form.device.setCurrentText("cpu")
    win.tabs.setCurrentWidget(win.training_panel)
    return win.training_panel


def _click(widget) -> None:
    from pytestqt.qtbot import QtBot

    QtBot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _shot(widget, name: str) -> None:
    folder = os.environ.get("WORKBENCH_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / name))


def _train_once(qtbot, panel) -> str:
    """Press Train and wait for the run to finish; its id."""
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as finished:
        _click(panel.start_button)
    assert finished.args[0].status == "finished"
    return finished.args[0].run_id


def _state(run_id: str) -> tuple[str, int, list[int]]:
    record = RunRegistry().get(run_id)
    return record.status, record.config["epochs"], [row["epoch"] for row in record.metrics]


# ---- #13.2 / #14.3: Continue training continues the same run, like `train --resume RUN --epochs N` -----
def test_continue_training_continues_the_same_run_like_the_cli(qtbot, window, drop, fmnist_small, capsys):
    panel = _prepare(qtbot, window, drop, fmnist_small, epochs=1)
    run_id = _train_once(qtbot, panel)
    # #14.8: a finished run's bar says so, never "ETA 0:00" or a speed.
    assert panel.progress.format().startswith("finished") and "ETA" not in panel.progress.format()

    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as second:
        _click(panel.continue_button)
    assert second.args[0].status == "finished" and second.args[0].run_id == run_id
    assert list(panel.plots.series("val_acc")[0]) == [1, 2]  # the whole history, epoch 1 included
    assert len(panel.plots.series("val_loss")[1]) == 2
    assert panel.progress.format() == "finished · 2 epochs"
    _shot(window, "train-after-continue.png")

    # The CLI's `train --resume RUN --epochs 2` on a run trained the same way leaves the same state.
    code = cli_main(
        ["train", str(fmnist_small), "--model", "course_cnn", "--epochs", "1", "--batch-size", "16",
         "--device", "cpu", "--json"]
    )  # fmt: skip
    assert code == 0
    cli_run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_id"]
    assert cli_main(["train", "--resume", cli_run, "--epochs", "2", "--json"]) == 0
    capsys.readouterr()
    assert _state(run_id) == _state(cli_run) == ("finished", 2, [1, 2])


# ---- Continue training is offered only when it can train something; refused, it is no failed run ----------
def test_continue_is_offered_only_when_it_can_train_something(qtbot, window, drop, fmnist_small, class_folders):
    panel = _prepare(qtbot, window, drop, fmnist_small, epochs=1)
    run_id = _train_once(qtbot, panel)

    # Epochs on auto: the run finished all its epochs, so Continue has nothing to train; its tooltip says what to set.
    panel.form.epochs.setValue(panel.form.epochs.minimum())
    assert panel.form.values()["epochs"] is None
    assert not panel.continue_button.isEnabled()
    tip = panel.continue_button.toolTip()
    assert "already finished its 1 epoch; set Epochs to how many more epochs to train" in tip, tip
    panel.form.epochs.setValue(2)  # two more
    assert panel.continue_button.isEnabled() and "already finished" not in panel.continue_button.toolTip()
    panel.form.epochs.setValue(panel.form.epochs.minimum())
    assert not panel.continue_button.isEnabled()

    # Asked anyway (Training → Continue training, Ctrl+Shift+Return): the engine's reason in a dialog, before any
    # work; nothing says the run failed, and it stays finished.
    started: list[object] = []
    panel.run_started.connect(started.append)
    window.continue_action.trigger()
    boxes = [w for w in QApplication.topLevelWidgets() if w.objectName() == ERROR_DIALOG_NAME and w.isVisible()]
    assert boxes and "already finished its 1 epoch" in boxes[-1].text()
    assert boxes[-1].windowTitle() == "Cannot continue training"
    for box in boxes:
        box.close()
    qtbot.wait(200)
    assert not started and not panel.is_training and panel.state == "finished"
    assert "failed" not in window.run_label.text() and "failed" not in panel.status_label.text()
    assert panel.progress.format().startswith("finished")
    assert RunRegistry().get(run_id).status == "finished"

    # Another dataset: the Train tab no longer shows that run, and Continue no longer goes on with it.
    panel.form.epochs.setValue(1)
    assert panel.continue_button.isEnabled()
    _load(qtbot, window, drop, class_folders)
    assert not panel.continue_button.isEnabled() and panel.last_run_id is None
    assert run_id not in window.run_label.text() and len(panel.plots.series("val_acc")[1]) == 0


# ---- #14.8: the progress bar after Stop, and paused time ------------------------------------------------
def test_stop_leaves_a_bar_that_says_stopped(qtbot, window, drop, fmnist_small):
    panel = _prepare(qtbot, window, drop, fmnist_small, epochs=200, batch_size=8)
    _click(panel.start_button)
    qtbot.waitUntil(
        lambda: len(panel.plots.series("val_acc")[1]) >= 1 and "img/s" in panel.progress.format(), timeout=120_000
    )
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        _click(panel.stop_button)
    text = panel.progress.format()
    assert text.startswith("stopped") and "img/s" not in text and "ETA" not in text

    # Continue training resumes the stopped run: its curves start with the epochs it trained before.
    epochs_before = len(panel.plots.series("val_acc")[1])
    with qtbot.waitSignal(panel.run_started, timeout=120_000) as resumed:
        _click(panel.continue_button)
    assert resumed.args[0].start_epoch == epochs_before >= 1
    qtbot.waitUntil(lambda: len(panel.plots.series("val_acc")[1]) > epochs_before, timeout=120_000)
    assert list(panel.plots.series("val_acc")[0])[:epochs_before] == list(range(1, epochs_before + 1))
    _shot(window, "train-after-stop-and-continue.png")
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        _click(panel.stop_button)


def test_paused_time_counts_neither_into_the_eta():
    from workbench.app.training.progress import RunProgress

    class Step:
        def __init__(self, step):
            self.step, self.epoch, self.steps_per_epoch, self.step_in_epoch = step, 1, 100, step
            self.images_per_s, self.loss = 10.0, 1.0

    progress = RunProgress(epochs=1, steps_per_epoch=100)
    progress.step(Step(1), now=0.0)
    progress.step(Step(11), now=10.0)  # 1 s a step
    progress.paused(now=10.0)
    progress.resumed(now=1010.0)  # paused for 1000 s
    _, text = progress.step(Step(21), now=1020.0)
    assert text.endswith("ETA 1:19"), text  # 79 steps left at 1 s each, not at ~50 s each


# ---- #14.9: Train while the LR finder's tab shows switches back to the curves ----------------------------
def test_train_switches_from_the_lr_finder_tab_to_the_curves(qtbot, window, drop, fmnist_small):
    panel = _prepare(qtbot, window, drop, fmnist_small, epochs=1)
    bar = panel.views.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(1).center())
    assert panel.views.currentIndex() == 1
    with qtbot.waitSignal(panel.run_finished, timeout=120_000):
        _click(panel.start_button)
        shown_at_start = panel.views.currentIndex()
    assert shown_at_start == 0  # the curves, where the run is drawn
    assert panel.views.currentWidget() is not panel.lr_finder.plot_host


# ---- #14.4: Clone copies model, weights and image size; messages speak of the app's controls -------------
def test_clone_copies_model_and_image_size_and_errors_name_the_controls(qtbot, window, drop, fmnist_small):
    panel = _prepare(qtbot, window, drop, fmnist_small, epochs=1)
    panel.form.img_size.setValue(32)
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as done:
        _click(panel.start_button)
    run_id = done.args[0].run_id
    assert run_id in window.run_label.text()

    # The user moves on: another model, the image size back to auto, more epochs.
    qtbot.waitUntil(lambda: window.model_panel.select_model("lenet5"), timeout=10_000)
    panel.form.img_size.setValue(panel.form.img_size.minimum())
    panel.form.epochs.setValue(7)

    runs = window.runs_view
    window.tabs.setCurrentWidget(runs)
    qtbot.waitUntil(lambda: runs.table.rowCount() >= 1, timeout=10_000)
    runs.table.selectRow(0)
    assert runs.selected_run_ids() == [run_id]
    _click(runs.buttons["clone"])
    assert window.tabs.currentWidget() is panel
    assert panel.form.img_size.value() == 32 and panel.form.epochs.value() == 1
    assert window.model_panel.selected_model() == "course_cnn"
    assert run_id not in window.run_label.text()  # the status bar no longer names the previous run

    # A model that needs bigger images than the form gives: the message names the form's control.
    qtbot.waitUntil(lambda: window.model_panel.select_model("mobilenet_v3_small"), timeout=10_000)
    window.model_panel.set_weights_source(0)  # from scratch
    panel.form.img_size.setValue(28)
    window.tabs.setCurrentWidget(panel)
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as failed:
        _click(panel.start_button)
    assert failed.args[0].status == "failed"
    boxes = [w for w in QApplication.topLevelWidgets() if w.objectName() == ERROR_DIALOG_NAME and w.isVisible()]
    assert boxes, "no error shown"
    text = boxes[-1].text()
    assert "Image size 32" in text and "--" not in text, text
    for box in boxes:
        box.close()


# ---- #14.7: the curves keep their room after a relaunch ---------------------------------------------------
def test_curves_sizes_survive_a_relaunch_but_never_as_a_sliver(qtbot):
    from workbench.app.training.panel import CURVES_MIN_HEIGHT

    first = _open_window(qtbot)
    first.tabs.setCurrentWidget(first.training_panel)
    splitter = first.training_panel.curves_splitter
    qtbot.waitUntil(lambda: sum(splitter.sizes()) > 300, timeout=5_000)
    total = sum(splitter.sizes())
    splitter.setSizes([total - 250, 250])  # the user drags the log taller
    _close(qtbot, first)

    second = _open_window(qtbot)
    second.tabs.setCurrentWidget(second.training_panel)

    def log_share() -> float:
        sizes = second.training_panel.curves_splitter.sizes()
        return sizes[1] / max(1, sum(sizes))

    qtbot.waitUntil(lambda: abs(log_share() - 250 / total) < 0.05, timeout=5_000)  # as the user left it
    _close(qtbot, second)

    AppSettings().set_splitter_sizes("train_curves", [3, total])  # a collapsed layout, from an older version
    third = _open_window(qtbot)
    third.tabs.setCurrentWidget(third.training_panel)
    qtbot.wait(50)
    assert third.training_panel.views.height() >= CURVES_MIN_HEIGHT
    assert third.training_panel.curves_splitter.sizes()[0] >= CURVES_MIN_HEIGHT
    _close(qtbot, third)


# ---- #14.10: image size and model belong to their dataset ---------------------------------------------------
def test_image_size_belongs_to_its_dataset(qtbot, drop, fmnist_small, class_folders):
    first = _open_window(qtbot)
    _load(qtbot, first, drop, [fmnist_small])
    first.training_panel.form.img_size.setValue(40)
    _close(qtbot, first)

    second = _open_window(qtbot)  # reopens the last dataset with its own image size
    qtbot.waitUntil(lambda: second.dataset_panel.summary is not None, timeout=60_000)
    assert second.training_panel.form.img_size.value() == 40
    _load(qtbot, second, drop, class_folders)  # another dataset: its size is not the last one's
    form = second.training_panel.form
    assert form.values()["img_size"] is None
    assert "Image size set back to auto" in second.training_panel.status_label.text()
    _load(qtbot, second, drop, [fmnist_small])
    assert form.img_size.value() == 40
    _close(qtbot, second)


# ---- #14.13: one obvious path: what happens next, what Train will train, Advanced folded -----------------
def test_train_tab_says_what_will_be_trained_and_folds_the_details(qtbot, drop, fmnist_small):
    win = _open_window(qtbot)
    _load(qtbot, win, drop, [fmnist_small])
    panel = win.training_panel
    assert "Next:" in panel.status_label.text() and "press Train" in panel.status_label.text()
    qtbot.waitUntil(lambda: win.model_panel.select_model("course_cnn"), timeout=60_000)
    win.tabs.setCurrentWidget(panel)
    assert not panel.form.advanced.isVisible()  # the optimizer/augmentation/hardware groups are folded away
    panel.form.epochs.setValue(3)
    qtbot.waitUntil(lambda: panel.plan_label.isVisible() and "3 epochs" in panel.plan_label.text(), timeout=30_000)
    plan = panel.plan_label.text()
    assert "course_cnn" in plan and "random weights" in plan and "28 px" in plan, plan
    _shot(win, "train-before-train.png")
    # The starting weights set on the Model tab change the plan as well: ImageNet weights, a linear head first.
    qtbot.waitUntil(lambda: win.model_panel.select_model("efficientnet_lite0"), timeout=60_000)
    qtbot.waitUntil(lambda: "efficientnet_lite0 with random weights" in panel.plan_label.text(), timeout=30_000)
    win.model_panel.set_weights_source(SOURCE_PRETRAINED)
    qtbot.waitUntil(lambda: "efficientnet_lite0 with ImageNet weights" in panel.plan_label.text(), timeout=30_000)
    assert "(stage 1)" in panel.plan_label.text()
    # An image size set here is the side the Model tab's summary shows the network at, too.
    panel.form.img_size.setValue(96)
    qtbot.waitUntil(lambda: "at 96 px" in panel.plan_label.text(), timeout=30_000)
    qtbot.waitUntil(lambda: "input 1×96×96" in win.model_panel.totals.text(), timeout=60_000)

    _click(panel.form.advanced_button)
    assert panel.form.advanced.isVisible() and panel.form.batch_size.isVisible()
    _close(qtbot, win)

    again = _open_window(qtbot)
    again.tabs.setCurrentWidget(again.training_panel)
    assert again.training_panel.form.advanced.isVisible()  # remembered
    _close(qtbot, again)


# ---- #11.4: the user can stop after stage 1 (a "quick" choice) -----------------------------------------------
def test_stop_after_the_instant_model_is_offered_where_there_is_one_and_ends_the_run_there(qtbot, drop, fmnist_small):
    win = _open_window(qtbot)
    _load(qtbot, win, drop, [fmnist_small])
    panel, form = win.training_panel, win.training_panel.form
    qtbot.waitUntil(lambda: win.model_panel.select_model("course_cnn"), timeout=60_000)
    win.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: "course_cnn with random weights" in panel.plan_label.text(), timeout=30_000)
    assert form.quick.isVisible() and not form.quick.isEnabled()  # from scratch: nothing to stop after
    assert "no instant model" in form.quick.toolTip()

    qtbot.waitUntil(lambda: win.model_panel.select_model("efficientnet_lite0"), timeout=60_000)
    win.model_panel.set_weights_source(SOURCE_PRETRAINED)
    qtbot.waitUntil(lambda: "(stage 2)" in panel.plan_label.text() and form.quick.isEnabled(), timeout=30_000)
    # The greyed augmentation fields show what "automatic" will use for this run, as the plan's notes say it.
    said = re.search(r"augmentation: horizontal flip, shift ±(\d+)px, zoom in up to (\d+)%", panel.plan_label.toolTip())
    assert said, panel.plan_label.toolTip()
    assert form.augment_auto.isChecked() and not form.shift.isEnabled()
    assert (form.shift.value(), round(form.zoom.value() * 100)) == (int(said.group(1)), int(said.group(2))) != (2, 0)
    form.img_size.setValue(64)
    form.device.setCurrentText("cpu")
    _click(form.quick)
    assert form.quick.isChecked()
    qtbot.waitUntil(
        lambda: "at 64 px" in panel.plan_label.text() and "(stage 2)" not in panel.plan_label.text(), timeout=30_000
    )
    assert "(stage 1)" in panel.plan_label.text() and "stage 2 skipped (quick)" in panel.plan_label.toolTip()
    _shot(win, "train-quick.png")

    run_id = _train_once(qtbot, panel)
    status, _epochs, epochs = _state(run_id)
    assert status == "finished" and epochs == [0]  # the instant model, and no epoch of fine-tuning
    log = panel.log_text()
    assert "checkpoint saved (epoch 0)" in log and "the model the run keeps" in log and "test accuracy" in log, log

    # Later, Continue training fine-tunes that run (stage 2), its curves starting from stage 1's point.
    form.epochs.setValue(1)  # one more epoch
    qtbot.waitUntil(lambda: form.quick.isEnabled() and panel.continue_button.isEnabled(), timeout=30_000)
    assert "fine-tune the instant model (stage 2)" in panel.continue_button.toolTip()
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as finished:
        _click(panel.continue_button)
    assert finished.args[0].status == "finished" and finished.args[0].run_id == run_id
    status, _epochs, epochs = _state(run_id)
    assert status == "finished" and epochs == [0, 1]
    assert RunRegistry().get(run_id).config["quick"] is False
    assert "stage 2 starts from a head on the last layer's features alone" in panel.log_text()
    x, _y = panel.plots.series("val_acc")
    assert list(x) == [0, 1]  # stage 1's point stayed on the curve
    assert "stage 2" not in panel.continue_button.toolTip()  # fine-tuned now: going on trains more epochs
    _close(qtbot, win)
