"""The training panel: hyperparameters, Start/Pause/Resume/Stop, live curves, progress with ETA, a log.

The panel runs one `TrainingSession` at a time and only ever reads the engine's events; the full
TrainConfig comes from `config_source` (the window merges dataset, model and this form).
Its parts, each handed the widgets it drives: the run's progress from the engine's events (`progress`), the
LR finder (`lr_finder`), the log pane (`log`), the form (`hyperparameters`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.workers import Failure, TrainingSession
from workbench.app.training.hyperparameters import HyperparameterForm
from workbench.app.training.log import RunLog
from workbench.app.training.lr_finder import LRFinderRunner
from workbench.app.training.progress import TrainingProgress
from workbench.engine.errors import WorkbenchError
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import RunFinished, RunStarted, RunStatus

if TYPE_CHECKING:
    from workbench.app.qt.plots import LRFinderPlot, TrainingPlots

ConfigSource = Callable[[], TrainConfig]  # raises WorkbenchError when something is missing


class TrainingPanel(QWidget):
    """States: idle → running ⇄ paused → stopping → finished|stopped|failed (then idle-like again)."""

    state_changed = Signal(str)  # human-readable run state for the status bar
    run_finished = Signal(object)  # the RunFinished event
    run_started = Signal(object)  # the RunStarted event
    checkpoint_saved = Signal(str)  # a checkpoint of the current run was written (its path)
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
        # What the engine chose for this run and, in its tooltip, why (RunStarted.plan and .notes).
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setTextFormat(Qt.TextFormat.RichText)
        self.plan_label.hide()

        self._plots = LazyWidget(_make_training_plots)
        self.log = RunLog()
        self.run_progress = TrainingProgress(
            progress=self.progress,
            status_label=self.status_label,
            plan_label=self.plan_label,
            plots=self._plots.widget,
            log=self.log,
            parent=self,
        )
        self.run_progress.run_started.connect(self._on_run_started)
        self.run_progress.checkpoint_saved.connect(self._on_checkpoint_saved)
        self.run_progress.run_finished.connect(self._on_run_finished)
        self.lr_finder = LRFinderRunner(self, self.progress, self.log)
        self.lr_finder.busy_changed.connect(self._update_buttons)
        self.lr_finder.suggested.connect(self.form.set_learning_rate)
        self.lr_finder.plotted.connect(lambda: self.views.setCurrentWidget(self.lr_finder.plot_host))
        self.views = QTabWidget()
        self.views.addTab(self._plots, "Curves")
        self.views.addTab(self.lr_finder.plot_host, "LR finder")

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
        layout.addWidget(self.plan_label)
        layout.addWidget(body, 1)
        self._update_buttons()

    @property
    def plots(self) -> TrainingPlots:
        return self._plots.widget()

    @property
    def lr_plot(self) -> LRFinderPlot:
        return self.lr_finder.plot

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
        lr_busy = self.lr_finder.busy
        self.start_button.setEnabled(not busy and not lr_busy)
        self.pause_button.setEnabled(self.state in ("running", "paused"))
        self.pause_button.setText("Resume" if self.state == "paused" else "Pause")
        self.stop_button.setEnabled(self.state in ("starting", "running", "paused") or lr_busy)
        done = self.state in ("finished", "stopped", "failed") and self.last_run_id is not None
        self.continue_button.setEnabled(done and not lr_busy and self.last_checkpoint is not None)
        self.again_button.setEnabled(self.state in ("finished", "stopped", "failed"))
        self.form.setEnabled(not busy and not lr_busy)

    # ---- actions -------------------------------------------------------------------------------
    def _valid_config(self, error_title: str) -> TrainConfig | None:
        """The window's TrainConfig, or None after telling the user what is missing."""
        try:
            config = self._config_source()
            config.validate()
        except WorkbenchError as exc:
            dialogs.show_error(self, error_title, str(exc))
            return None
        return config

    def start(self) -> None:
        if self.is_training:
            return
        config = self._valid_config("Cannot start training")
        if config is not None:
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
        if self.lr_finder.busy:
            self.lr_finder.request_stop()
        if self.session is not None and self.state in ("starting", "running", "paused"):
            self.session.stop()
            self._set_state("stopping")
            self._log("Stopping: finishing the current step and saving a checkpoint…")

    def _launch(self, config: TrainConfig, resume: str | None) -> None:
        if resume is None:
            self.plots.clear()
        self.last_config = config
        self.last_checkpoint = None
        self.session = TrainingSession(config, resume=resume, parent=self)
        self.session.events.connect(self.run_progress.show_events)
        self.session.crashed.connect(self._on_crash)
        self.session.ended.connect(self._on_ended)
        self.run_progress.launching(config.epochs or 0)
        self._log(("Resuming run " + resume) if resume else f"Starting: {config.model} on {', '.join(config.data)}")
        self._set_state("starting")
        self.session.start()

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
            self.run_progress.show_ended("failed")
            self._set_state("failed")
        self.session = None
        self._update_buttons()
        self.session_ended.emit()

    # ---- what the run's events mean for the panel (TrainingProgress draws them) -----------------
    def _on_run_started(self, event: RunStarted) -> None:
        self.last_run_id = event.run_id
        if self.state == "starting":
            self._set_state("running")
        elif self.state == "paused":  # announced again so that the status bar names this run
            self.state_changed.emit("paused")
        self.run_started.emit(event)

    def _on_checkpoint_saved(self, path: str) -> None:
        self.last_checkpoint = path
        self.checkpoint_saved.emit(path)

    def _on_run_finished(self, event: RunFinished) -> None:
        self.last_status = event.status
        if event.run_id:
            self.last_run_id = event.run_id
        if event.checkpoint:
            self.last_checkpoint = event.checkpoint
        self._set_state(event.status)
        if event.status == RunStatus.FAILED:
            dialogs.show_error(self, "Training failed", event.reason or "The run failed.")
        self.run_finished.emit(event)

    # ---- learning-rate finder (lr_finder.py) ---------------------------------------------------
    def find_learning_rate(self) -> None:
        if self.is_training or self.lr_finder.busy:
            return
        config = self._valid_config("Cannot run the LR finder")
        if config is not None:
            self.lr_finder.start(config)

    def shutdown(self) -> None:
        """Ask a running LR sweep to end (the window is closing); a training run is stopped by the window."""
        self.lr_finder.request_stop()

    # ---- log -----------------------------------------------------------------------------------
    def _log(self, text: str) -> None:
        self.log.add(text)

    def log_text(self) -> str:
        return self.log.toPlainText()


def _make_training_plots() -> TrainingPlots:
    from workbench.app.qt.plots import TrainingPlots  # pyqtgraph: imported after the first paint

    return TrainingPlots()
