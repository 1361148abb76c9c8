"""Training from the window, as a user: drop a real folder, pick a model, press Train, watch, pause, stop.

Everything here runs the real engine (scan, decode, course_cnn, trainer, registry) on a few real
Fashion-MNIST images, so each run takes seconds.
"""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from workbench.app.qt.dialogs import ERROR_DIALOG_NAME
from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings
from workbench.engine.errors import ConfigError
from workbench.engine.runs import RunRegistry


@pytest.fixture
def window(qtbot):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)  # start-up work begun, as before a user acts
    yield win
    panel = win.training_panel
    if panel.is_training:  # never leave a trainer thread running past its test
        panel.stop()
        qtbot.waitUntil(lambda: not panel.is_training, timeout=60_000)
    win.shutdown_workers()


def _prepare(qtbot, window, drop, folder, *, epochs: int, batch_size: int = 16) -> None:
    with qtbot.waitSignal(window.dataset_panel.dataset_loaded, timeout=60_000):
        assert drop(window, [folder])
    models = window.model_panel
    qtbot.waitUntil(lambda: models.select_model("course_cnn"), timeout=60_000)
    assert models.selected_model() == "course_cnn"
    form = window.training_panel.form
    form.epochs.setValue(epochs)
    form.batch_size.setValue(batch_size)
    form.device.setCurrentText("cpu")
    window.tabs.setCurrentWidget(window.training_panel)


def test_train_shows_live_curves_and_records_the_run(qtbot, window, drop, fmnist_small):
    _prepare(qtbot, window, drop, fmnist_small, epochs=2)
    panel = window.training_panel
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as finished:
        qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
        assert panel.state in ("starting", "running")
        assert not panel.form.isEnabled()  # settings are locked while training
    event = finished.args[0]
    assert event.status == "finished", event.reason

    steps_x, losses = panel.plots.series("train_loss")
    epochs_x, val_acc = panel.plots.series("val_acc")
    assert len(losses) >= 2 and all(loss > 0 for loss in losses)
    assert list(epochs_x) == [1, 2]
    assert all(0 <= acc <= 1 for acc in val_acc)
    assert len(panel.plots.series("val_loss")[1]) == 2
    assert len(panel.plots.series("lr")[1]) == len(losses)

    record = RunRegistry().get(event.run_id)
    assert record.status == "finished"
    assert record.model == "course_cnn"
    assert len(record.metrics) == 2
    assert [m["val_acc"] for m in record.metrics] == pytest.approx(list(val_acc))
    assert "epoch 2" in panel.log_text()
    assert event.run_id in window.run_label.text()
    assert panel.continue_button.isEnabled() and panel.again_button.isEnabled()

    # The LR finder (the real sweep) locks "Train again with changes" as it locks Train and Continue; stopped at
    # once, it sets nothing in the form.
    rate = panel.form.lr.text()
    qtbot.mouseClick(panel.form.lr_find_button, Qt.MouseButton.LeftButton)
    assert panel.lr_finder.busy
    assert not any(b.isEnabled() for b in (panel.start_button, panel.continue_button, panel.again_button))
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.lr_finder.busy, timeout=60_000)
    assert panel.continue_button.isEnabled() and panel.again_button.isEnabled()
    assert panel.form.lr.text() == rate and "LR finder suggests" not in panel.log_text()

    # Continue training: the same run trains further (as many more epochs as the Epochs field), and the curves
    # show its whole history, the first two epochs included.
    with qtbot.waitSignal(panel.run_finished, timeout=120_000) as again:
        qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    assert again.args[0].status == "finished", again.args[0].reason
    assert again.args[0].run_id == event.run_id
    assert list(panel.plots.series("val_acc")[0]) == [1, 2, 3, 4]
    record = RunRegistry().get(event.run_id)
    assert record.status == "finished" and len(record.metrics) == 4

    qtbot.mouseClick(panel.again_button, Qt.MouseButton.LeftButton)
    assert panel.form.isEnabled() and panel.state == "idle"
    assert len(panel.plots.series("val_acc")[1]) == 0


def test_pause_resume_and_stop_leave_a_usable_checkpoint(qtbot, window, drop, fmnist_small):
    _prepare(qtbot, window, drop, fmnist_small, epochs=200, batch_size=8)
    panel = window.training_panel
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.plots.series("val_acc")[1]) >= 1, timeout=120_000)

    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert panel.pause_button.text() == "Resume"
    # Said once, when the trainer has paused (the engine's word), and the bar says so instead of an ETA.
    qtbot.waitUntil(lambda: "paused" in panel.log_text().lower(), timeout=30_000)
    assert panel.log_text().lower().count("paused") == 1
    assert panel.progress.format().startswith("paused at step")
    steps_when_paused = len(panel.plots.series("train_loss")[1])
    qtbot.wait(400)
    assert len(panel.plots.series("train_loss")[1]) == steps_when_paused  # nothing trains while paused
    assert "paused" in window.run_label.text()

    qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.plots.series("train_loss")[1]) > steps_when_paused, timeout=30_000)

    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as finished:
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    event = finished.args[0]
    assert event.status == "stopped"
    assert event.checkpoint

    # The checkpoint is usable: the engine loads it and the model it describes classifies an image.
    import torch

    from workbench.engine.models import build_model
    from workbench.engine.training.checkpoint import load_checkpoint

    payload = load_checkpoint(event.checkpoint)
    model = build_model(payload["model"], len(payload["classes"]), payload["preprocessing"]["channels"])
    model.load_state_dict(payload["model_state"])
    size = payload["preprocessing"]["size"]
    logits = model.eval()(torch.zeros(1, payload["preprocessing"]["channels"], size, size))
    assert logits.shape == (1, 10)
    assert RunRegistry().get(event.run_id).status == "stopped"

    # Continue training resumes the stopped run from its checkpoint.
    with qtbot.waitSignal(panel.run_started, timeout=120_000) as started:
        qtbot.mouseClick(panel.continue_button, Qt.MouseButton.LeftButton)
    assert started.args[0].run_id == event.run_id
    assert started.args[0].start_epoch == payload["epoch"]
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)


def test_a_stopped_run_is_evaluated_and_the_evaluate_tab_says_where_it_stopped(qtbot, window, drop, fmnist_small):
    """#14: a run stopped with a usable checkpoint is evaluated by itself, as a finished one is."""
    _prepare(qtbot, window, drop, fmnist_small, epochs=200, batch_size=8)
    panel = window.training_panel
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(panel.plots.series("val_acc")[1]) >= 1, timeout=120_000)  # a checkpoint saved
    evaluation = window.evaluation_view
    with qtbot.waitSignal(evaluation.evaluated, timeout=180_000):
        with qtbot.waitSignal(panel.run_finished, timeout=60_000) as finished:
            qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
        event = finished.args[0]
        assert event.status == "stopped" and event.checkpoint and event.epochs >= 1
    assert evaluation.evaluated_with.run_id == event.run_id
    tab_bar = window.tabs.tabBar()
    qtbot.mouseClick(tab_bar, Qt.MouseButton.LeftButton, pos=tab_bar.tabRect(window.tabs.indexOf(evaluation)).center())
    assert window.tabs.currentWidget() is evaluation
    assert f"stopped at epoch {event.epochs}" in evaluation.summary.text()
    assert "accuracy" in evaluation.summary.text()  # the figures follow the note


def test_an_option_the_engine_refuses_is_named_as_the_control_that_sets_it(qtbot, window, drop, fmnist_small, monkeypatch):
    """#13: the engine's OptionError carries the option and its value; the app names the form's control."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _prepare(qtbot, window, drop, fmnist_small, epochs=1)
    panel = window.training_panel
    panel.form.device.setCurrentText("cuda")
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.findChild(QMessageBox, ERROR_DIALOG_NAME) is not None, timeout=10_000)
    box = panel.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert box.text().startswith('Device "cuda": no CUDA GPU'), box.text()
    assert "--" not in box.text() and panel.state == "idle"
    box.close()


def test_the_curves_legends_sit_beside_the_titles_never_on_the_data(qtbot, window):
    panel = window.training_panel
    tab_bar = window.tabs.tabBar()
    qtbot.mouseClick(tab_bar, Qt.MouseButton.LeftButton, pos=tab_bar.tabRect(window.tabs.indexOf(panel)).center())
    plots = panel.plots
    for plot, names in ((plots.loss_plot, 3), (plots.acc_plot, 2)):
        qtbot.waitUntil(lambda plot=plot: plot.legend.sceneBoundingRect().width() > 0, timeout=5_000)
        assert len(plot.legend.items) == names
        assert not plot.legend.sceneBoundingRect().intersects(plot.vb.sceneBoundingRect())


# ---- the LR finder as a background job: progress, Stop, errors (the engine's sweep stood in for) ------------


def _lr_panel(qtbot, monkeypatch, fmnist_small, fake_sweep):
    """A training panel on screen whose LR finder runs `fake_sweep(config, should_stop=…)` in the engine's
    place, so that a sweep lasts as long as the test needs."""
    import workbench.engine.training.lr_find as lr_find_module
    from workbench.app.training.panel import TrainingPanel
    from workbench.engine.training.config import TrainConfig

    monkeypatch.setattr(lr_find_module, "sweep", fake_sweep)
    panel = TrainingPanel(lambda: TrainConfig(data=str(fmnist_small), model="course_cnn", device="cpu"))
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


def test_stopping_the_lr_finder_cancels_the_sweep_keeps_its_curve_so_far_and_sets_no_rate(
    qtbot, monkeypatch, fmnist_small
):
    """Stopped after 11 of 100 steps, the lowest loss so far is no minimum: the rule applied to that partial curve
    'suggested' the first rate, 1e-06, and set it in the form. A stopped sweep suggests and sets nothing."""
    from workbench.engine.training.events import StepEnded

    closed = threading.Event()
    stop_flags: list[object] = []
    growth = 1e6 ** (1 / 99)  # the engine's sweep: 1e-6 to 1 in 100 steps

    def sweep_paused_at_step_11(config, *, should_stop=None):
        stop_flags.append(should_stop)
        try:
            for step in range(1, 12):  # the loss still falling, as at the start of a real sweep
                yield StepEnded(step, 1, 2.3 - 0.01 * step, 1e-6 * growth ** (step - 1), 100.0, step, 100)
            while True:  # then the sweep waits for Stop (None: a bare chance to cancel)
                time.sleep(0.005)
                yield None
        finally:
            closed.set()

    panel = _lr_panel(qtbot, monkeypatch, fmnist_small, sweep_paused_at_step_11)
    panel.form.set_learning_rate(0.003)
    suggested: list[float] = []
    panel.lr_finder.suggested.connect(suggested.append)
    qtbot.mouseClick(panel.form.lr_find_button, Qt.MouseButton.LeftButton)
    assert panel.lr_finder.busy and not panel.start_button.isEnabled() and panel.stop_button.isEnabled()
    qtbot.waitUntil(lambda: panel.progress.value() == 11, timeout=10_000)  # the steps reach the progress bar
    assert "LR finder: step" in panel.progress.text()
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert closed.wait(5)  # the sweep was left at its next step
    assert stop_flags[0]()  # and the flag the engine's data loading checks is up
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert not panel.lr_finder.busy and panel.progress.text() == "ready"
    assert panel.lr_plot.points() == 11  # the curve so far
    assert panel.form.lr.text() == "0.003" and suggested == []  # the form keeps its rate
    log = panel.log_text()
    assert "stopped after 11 of 100 steps: nothing was set" in log and "left as it was" in log
    assert "LR finder suggests" not in log and "set in the form" not in log and "1e-06" not in log
    assert panel.findChild(QMessageBox, ERROR_DIALOG_NAME) is None


@pytest.mark.parametrize(
    ("error", "title"),
    [
        (ConfigError("lr: must be in (0, 10]"), "LR finder failed"),
        (RuntimeError("shape mismatch in the sweep"), "LR finder failed"),  # a bug too: named after the job
    ],
)
def test_a_failing_lr_finder_shows_an_error_and_the_panel_stays_usable(
    qtbot, monkeypatch, fmnist_small, error, title
):
    from workbench.engine.training.events import DataProgress

    def failing_sweep(config, *, should_stop=None):
        yield DataProgress("decode", 1, 2)
        raise error

    panel = _lr_panel(qtbot, monkeypatch, fmnist_small, failing_sweep)
    qtbot.mouseClick(panel.form.lr_find_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.findChild(QMessageBox, ERROR_DIALOG_NAME) is not None, timeout=10_000)
    box = panel.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert box.windowTitle() == title and str(error) in box.text()
    assert ("Traceback" in box.detailedText()) == isinstance(error, RuntimeError)  # a bug's details only
    assert "LR finder failed: " in panel.log_text()
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10_000)
    assert panel.form.lr_find_button.isEnabled() and panel.progress.text() == "ready"


def test_curve_axes_show_losses_and_rates_as_they_are_not_in_thousandths(qtbot):
    from workbench.app.qt.plots import TrainingPlots
    from workbench.engine.training.events import EpochEnded, StepEnded

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.show()
    events = [StepEnded(s, 1, 0.5 + 0.04 * s, 0.003 * s / 10, 30.0, s, 10) for s in range(1, 11)]
    events.append(
        EpochEnded(epoch=1, train_loss=0.7, train_acc=0.9, val_loss=0.45, val_acc=0.85, seconds=1.0)
    )
    plots.add_events(events)
    qtbot.wait(50)
    for plot, label in ((plots.loss_plot, "cross-entropy"), (plots.acc_plot, "accuracy"), (plots.lr_plot, "lr")):
        axis = plot.getAxis("left")
        assert axis.autoSIPrefixScale == 1.0  # ticks read 0.5, 0.003: the values themselves
        assert "x0.001" not in axis.labelString() and label in axis.labelString()
    # The linked x axes line up: every plot's data area starts at the same place, whatever its tick text.
    lefts = {round(p.vb.sceneBoundingRect().left()) for p in (plots.loss_plot, plots.acc_plot, plots.lr_plot)}
    assert len(lefts) == 1, lefts
    # An accuracy of 100% (stage 1's train accuracy, often) shows its whole marker, not half of it.
    low, high = plots.acc_plot.viewRange()[1]
    assert high >= 1.05 and low <= -0.05, (low, high)
