"""The training panel: hyperparameters, Start/Pause/Resume/Stop, live curves, progress with ETA, a log.

The panel runs one `TrainingSession` at a time and only ever reads the engine's events; the full
TrainConfig comes from `config_source` (the window merges dataset, model and this form).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app import dialogs
from workbench.app.hyperparameters import HyperparameterForm
from workbench.app.lazy import LazyWidget
from workbench.app.workers import Failure, TrainingSession, run_in_background
from workbench.engine.errors import WorkbenchError
from workbench.engine.training.config import TrainConfig

if TYPE_CHECKING:
    from workbench.app.plots import LRFinderPlot, TrainingPlots

LOG_LIMIT = 5000  # lines kept in the log pane

ConfigSource = Callable[[], TrainConfig]  # raises WorkbenchError when something is missing


def _format_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


class TrainingPanel(QWidget):
    """States: idle → running ⇄ paused → stopping → finished|stopped|failed (then idle-like again)."""

    state_changed = Signal(str)  # human-readable run state for the status bar
    run_finished = Signal(object)  # the RunFinished event
    run_started = Signal(object)  # the RunStarted event
    session_ended = Signal()  # the worker thread is done (after RunFinished, or after a crash)

    def __init__(self, config_source: ConfigSource, parent: QWidget | None = None):
        super().__init__(parent)
        self._config_source = config_source
        self.session: TrainingSession | None = None
        self.state = "idle"
        self.last_run_id: str | None = None
        self.last_status: str | None = None
        self.last_checkpoint: str | None = None
        self.last_config: TrainConfig | None = None
        self._lr_worker: Any = None
        self._lr_stop = False
        self._run_info: dict[str, Any] = {}

        self.form = HyperparameterForm()
        self.form.lr_find_requested.connect(self.find_learning_rate)
        form_scroll = QScrollArea()
        form_scroll.setWidget(self.form)
        form_scroll.setWidgetResizable(True)
        form_scroll.setMinimumWidth(290)
        form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        self.start_button = self._button(
            "Train", "Start training with these settings (Ctrl+Return)", self.start
        )
        self.pause_button = self._button("Pause", "Pause between steps / resume (Ctrl+P)", self.toggle_pause)
        self.stop_button = self._button(
            "Stop", "Stop after the current step and save a checkpoint (Ctrl+.)", self.stop
        )
        self.continue_button = self._button(
            "Continue training",
            "Resume a stopped run, or train a finished one further from its weights",
            self.continue_training,
        )
        self.again_button = self._button(
            "Train again with changes",
            "Clear the curves and unlock the settings for a new run",
            self.prepare_new_run,
        )
        self.start_button.setObjectName("startButton")
        self.start_button.setDefault(True)
        buttons = QHBoxLayout()
        for button in (
            self.start_button,
            self.pause_button,
            self.stop_button,
            self.continue_button,
            self.again_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("ready")
        self.progress.setValue(0)
        self.status_label = QLabel("Choose a dataset and a model, then press Train.")
        self.status_label.setWordWrap(True)

        self._plots = LazyWidget(_make_training_plots)
        self._lr_plot = LazyWidget(_make_lr_plot)
        self.views = QTabWidget()
        self.views.addTab(self._plots, "Curves")
        self.views.addTab(self._lr_plot, "LR finder")
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(LOG_LIMIT)
        self.log.setPlaceholderText("Run log: choices the engine made, epochs, checkpoints, skipped files…")

        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.views)
        right.addWidget(self.log)
        right.setStretchFactor(0, 4)
        right.setStretchFactor(1, 1)

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(form_scroll)
        body.addWidget(right)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 1)
        body.setSizes([320, 900])

        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(body, 1)
        self._update_buttons()

    @property
    def plots(self) -> TrainingPlots:
        return self._plots.widget()

    @property
    def lr_plot(self) -> LRFinderPlot:
        return self._lr_plot.widget()

    def _button(self, text: str, tip: str, slot: Callable[[], None]) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # ---- state ---------------------------------------------------------------------------------
    @property
    def is_training(self) -> bool:
        return self.session is not None and self.session.running

    def _set_state(self, state: str) -> None:
        self.state = state
        self._update_buttons()
        self.state_changed.emit(state)

    def _update_buttons(self) -> None:
        busy = self.state in ("starting", "running", "paused", "stopping")
        lr_busy = self._lr_worker is not None
        self.start_button.setEnabled(not busy and not lr_busy)
        self.pause_button.setEnabled(self.state in ("running", "paused"))
        self.pause_button.setText("Resume" if self.state == "paused" else "Pause")
        self.stop_button.setEnabled(self.state in ("starting", "running", "paused") or lr_busy)
        done = self.state in ("finished", "stopped", "failed") and self.last_run_id is not None
        self.continue_button.setEnabled(done and not lr_busy and self.last_checkpoint is not None)
        self.again_button.setEnabled(self.state in ("finished", "stopped", "failed"))
        self.form.setEnabled(not busy and not lr_busy)

    # ---- actions -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.is_training:
            return
        try:
            config = self._config_source()
            config.validate()
        except WorkbenchError as exc:
            dialogs.show_error(self, "Cannot start training", str(exc))
            return
        self._launch(config, resume=None)

    def continue_training(self) -> None:
        """A stopped run resumes where it stopped; a finished one trains further starting from its weights."""
        if self.is_training or self.last_config is None or self.last_run_id is None:
            return
        if self.last_status == "finished":
            config = dataclasses.replace(self.last_config, weights=self.last_run_id, pretrained=False)
            self._launch(config, resume=None)
        else:
            self._launch(self.last_config, resume=self.last_run_id)

    def prepare_new_run(self) -> None:
        self.plots.clear()
        self.progress.setValue(0)
        self.progress.setFormat("ready")
        self.status_label.setText("Change the settings, then press Train.")
        self._set_state("idle")

    def toggle_pause(self) -> None:
        if self.session is None:
            return
        if self.state == "running":
            self.session.pause()
            self._set_state("paused")
            self._log("Paused (the trainer stops between steps).")
        elif self.state == "paused":
            self.session.resume()
            self._set_state("running")
            self._log("Resumed.")

    def stop(self) -> None:
        if self._lr_worker is not None:
            self._lr_stop = True
        if self.session is not None and self.state in ("starting", "running", "paused"):
            self.session.stop()
            self._set_state("stopping")
            self._log("Stopping: finishing the current step and saving a checkpoint…")

    def _launch(self, config: TrainConfig, resume: str | None) -> None:
        if resume is None:
            self.plots.clear()
        self.last_config = config
        self.last_checkpoint = None
        self._run_info = {"t0": None, "step0": 0, "epochs": config.epochs or 0, "steps_per_epoch": 0}
        self.session = TrainingSession(config, resume=resume, parent=self)
        self.session.events.connect(self._on_events)
        self.session.crashed.connect(self._on_crash)
        self.session.ended.connect(self._on_ended)
        self.progress.setRange(0, 0)  # busy until the trainer says how many steps there are
        self.progress.setFormat("starting…")
        self._log(("Resuming run " + resume) if resume else f"Starting: {config.model} on {config.data}")
        self._set_state("starting")
        self.session.start()

    # ---- engine events (UI thread, coalesced) --------------------------------------------------
    def _on_events(self, events: list[Any]) -> None:
        self.plots.add_events(events)
        last_step = None
        for event in events:
            kind = type(event).__name__
            if kind == "StepEnded":
                last_step = event
            elif kind == "RunStarted":
                self._on_run_started(event)
            elif kind == "DataProgress":
                self.progress.setRange(0, max(event.total, 1) if event.total else 0)
                self.progress.setValue(event.done)
                self.progress.setFormat(
                    f"{event.stage}: {event.done:,} / {event.total:,} images"
                    if event.total
                    else f"{event.stage}…"
                )
            elif kind == "Message":
                self._log(("⚠ " if event.level == "warning" else "") + event.text)
            elif kind == "EpochEnded":
                self._log(
                    f"epoch {event.epoch}: train loss {event.train_loss:.4f} acc {_pct(event.train_acc)}"
                    + (
                        f" · val loss {event.val_loss:.4f} acc {_pct(event.val_acc)}"
                        if event.val_loss is not None
                        else ""
                    )
                    + f" · {event.seconds:.1f} s"
                )
            elif kind == "CheckpointSaved":
                self.last_checkpoint = event.path
                self._log(
                    f"checkpoint saved (epoch {event.epoch}{', best so far' if event.best else ''}): {event.path}"
                )
            elif kind == "RunFinished":
                self._on_run_finished(event)
        if last_step is not None:
            self._show_step(last_step)

    def _on_run_started(self, event: Any) -> None:
        self.last_run_id = event.run_id
        self._run_info.update(epochs=event.epochs, steps_per_epoch=event.steps_per_epoch, t0=None)
        total = max(1, event.epochs * event.steps_per_epoch)
        self.progress.setRange(0, total)
        self.progress.setValue(event.start_epoch * event.steps_per_epoch)
        self.progress.setFormat("training…")
        self.plots.start_run(event.start_epoch, event.epochs, event.steps_per_epoch)
        self.status_label.setText(
            f"Training {event.model} on {event.device}: run {event.run_id}"
            + (f", resumed at epoch {event.start_epoch}" if event.start_epoch else "")
        )
        if self.state == "starting":
            self._set_state("running")
        elif self.state == "paused":
            self.state_changed.emit("paused")
        self._log(
            f"Run {event.run_id}: {event.model} on {event.device}; {len(event.classes)} classes; "
            f"{event.train_images:,} train / {event.val_images:,} val / {event.test_images:,} test images; "
            f"{event.epochs} epochs of {event.steps_per_epoch} steps"
        )
        for note in event.notes:
            self._log(f"  chosen: {note}")
        self.run_started.emit(event)

    def _show_step(self, event: Any) -> None:
        info = self._run_info
        now = time.monotonic()
        if info["t0"] is None:
            info["t0"], info["step0"] = now, event.step
        per_epoch = event.steps_per_epoch or info["steps_per_epoch"] or 1
        total = max(1, info["epochs"] * per_epoch)
        self.progress.setRange(0, total)
        self.progress.setValue(min(event.step, total))
        done_here = event.step - info["step0"]
        eta = ""
        if done_here > 0:
            seconds_per_step = (now - info["t0"]) / done_here
            eta = f" · ETA {_format_duration(seconds_per_step * (total - event.step))}"
        in_epoch = event.step_in_epoch or ((event.step - 1) % per_epoch + 1)
        self.progress.setFormat(
            f"epoch {event.epoch}/{info['epochs']} · step {in_epoch}/{per_epoch} · "
            f"{event.images_per_s:,.0f} img/s · loss {event.loss:.4f}{eta}"
        )

    def _on_run_finished(self, event: Any) -> None:
        self.last_status = event.status
        if event.run_id:
            self.last_run_id = event.run_id
        if event.checkpoint:
            self.last_checkpoint = event.checkpoint
        summary = f"Run {event.status}"
        if event.epochs:
            summary += f" after {event.epochs} epoch{'s' if event.epochs != 1 else ''}"
        if event.val_accuracy is not None:
            summary += f" · val accuracy {_pct(event.val_accuracy)}"
        if event.test_accuracy is not None:
            summary += f" · test accuracy {_pct(event.test_accuracy)}"
        if event.reason:
            summary += f" — {event.reason}"
        self._log(summary)
        self.status_label.setText(summary)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress.setFormat(event.status)
        self._set_state(event.status)
        if event.status == "failed":
            dialogs.show_error(self, "Training failed", event.reason or "The run failed.")
        self.run_finished.emit(event)

    def _on_crash(self, failure: Failure) -> None:
        self._log(f"Error: {failure.message}")
        self.last_status = "failed"
        self.status_label.setText(f"Training stopped with an error: {failure.message}")
        dialogs.show_error(
            self, "Training error", failure.message, "" if failure.is_user_error else failure.details
        )

    def _on_ended(self) -> None:
        if self.state in ("starting", "running", "paused", "stopping"):
            # The thread ended without RunFinished (a crash): leave the panel usable.
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
            self.progress.setFormat("failed")
            self._set_state("failed")
        self.session = None
        self._update_buttons()
        self.session_ended.emit()

    # ---- learning-rate finder ------------------------------------------------------------------
    def find_learning_rate(self) -> None:
        if self.is_training or self._lr_worker is not None:
            return
        try:
            config = self._config_source()
            config.validate()
        except WorkbenchError as exc:
            dialogs.show_error(self, "Cannot run the LR finder", str(exc))
            return
        self._lr_stop = False
        self._log(f"LR finder: sweeping the learning rate on {config.model}…")
        self.progress.setRange(0, 0)
        self.progress.setFormat("LR finder running…")
        self._lr_worker = run_in_background(
            self,
            _run_lr_find,
            config,
            lambda: self._lr_stop,
            on_done=self._on_lr_found,
            on_error=self._on_lr_failed,
            on_finished=self._on_lr_ended,
        )
        self._update_buttons()

    def _on_lr_found(self, result: Any) -> None:
        self.lr_plot.show_result(result.lrs, result.losses, result.suggestion)
        self.views.setCurrentWidget(self._lr_plot)
        if result.suggestion:
            self.form.set_learning_rate(result.suggestion)
            self._log(f"LR finder suggests {result.suggestion:.3g} (set in the form).")
        else:
            self._log("LR finder found no clear minimum; keep the current learning rate.")

    def _on_lr_failed(self, failure: Failure) -> None:
        self._log(f"LR finder failed: {failure.message}")
        dialogs.show_error(
            self, "LR finder failed", failure.message, "" if failure.is_user_error else failure.details
        )

    def _on_lr_ended(self) -> None:
        self._lr_worker = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("ready")
        self._update_buttons()

    def shutdown(self) -> None:
        """Ask a running LR sweep to end (the window is closing); a training run is stopped by the window."""
        self._lr_stop = True

    # ---- log -----------------------------------------------------------------------------------
    def _log(self, text: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def log_text(self) -> str:
        return self.log.toPlainText()


def _make_training_plots() -> TrainingPlots:
    from workbench.app.plots import TrainingPlots  # pyqtgraph: imported after the first paint

    return TrainingPlots()


def _make_lr_plot() -> LRFinderPlot:
    from workbench.app.plots import LRFinderPlot

    return LRFinderPlot()


def _run_lr_find(config: TrainConfig, should_stop: Callable[[], bool]) -> Any:  # worker thread
    from workbench.engine.training.lr_find import lr_find

    return lr_find(config, should_stop=should_stop)
