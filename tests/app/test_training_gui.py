"""Training from the window, as a user: drop a real folder, pick a model, press Train, watch, pause, stop.

Everything here runs the real engine (scan, decode, course_cnn, trainer, registry) on a few real
Fashion-MNIST images, so each run takes seconds.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings
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
    qtbot.waitUntil(
        lambda: "paused" in panel.log_text().split("Paused")[-1], timeout=30_000
    )  # the engine's word
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
