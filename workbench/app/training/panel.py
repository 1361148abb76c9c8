"""The training panel: hyperparameters, Start/Pause/Resume/Stop, live curves, progress with ETA, a log.

The panel runs one `TrainingSession` at a time and only ever reads the engine's events; the full
TrainConfig comes from `config_source` (the window merges dataset, model and this form).
Its parts, each handed the widgets it drives: the run's progress from the engine's events (`progress`), the
LR finder (`lr_finder`), the log pane (`log`), the form (`hyperparameters`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
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
from workbench.app.qt.wording import app_message, error_message
from workbench.app.qt.workers import BackgroundJob, Failure, TrainingSession
from workbench.app.training.hyperparameters import HyperparameterForm
from workbench.app.training.log import RunLog
from workbench.app.training.lr_finder import LRFinderRunner
from workbench.app.training.progress import TrainingProgress
from workbench.engine.errors import WorkbenchError
from workbench.engine.training import run_actions
from workbench.engine.training.config import TrainConfig, dataset_roots
from workbench.engine.training.events import RunFinished, RunStarted, RunStatus

if TYPE_CHECKING:
    from workbench.app.qt.plots import LRFinderPlot, TrainingPlots
    from workbench.engine.runs import RunRecord

ConfigSource = Callable[[], TrainConfig]  # raises WorkbenchError when something is missing
PlanInputs = Callable[[], "dict[str, Any] | None"]  # typical_size, channels, num_train_images of the dataset
PLAN_DELAY_MS = 250  # the plan sentence follows the form after the user stops typing
ENDED = ("finished", "stopped", "failed")
CONTINUE_TIP = (
    "Go on with the same run: a stopped run resumes where it stopped; a finished one trains as many more "
    "epochs as the Epochs field says, its history kept"
)
CONTINUE_TO_STAGE_2_TIP = (
    "Go on with the same run: fine-tune the instant model (stage 2) as a run without \"Stop after the instant "
    "model\" would have; the run keeps stage 1's model unless fine-tuning is clearly better on validation"
)


class TrainingPanel(QWidget):
    """States: idle → running ⇄ paused → stopping → finished|stopped|failed (then idle-like again)."""

    state_changed = Signal(str)  # human-readable run state for the status bar
    run_finished = Signal(object)  # the RunFinished event
    run_started = Signal(object)  # the RunStarted event
    checkpoint_saved = Signal(str)  # a checkpoint of the current run was written (its path)
    session_ended = Signal()  # the worker thread is done (after RunFinished, or after a crash)

    def __init__(
        self, config_source: ConfigSource, parent: QWidget | None = None, *, plan_inputs: PlanInputs | None = None
    ):
        super().__init__(parent)
        self._config_source = config_source
        self._plan_inputs = plan_inputs
        self._plan_job = BackgroundJob(self)  # a newer preview supersedes the one still being worked out
        self._plan_job.done.connect(self._show_plan)
        self._plan_job.failed.connect(lambda failure: self._show_plan(None, failure.message))
        self.start_from_run: str | None = None  # "Train again with changes": the new run starts from its weights
        self.session: TrainingSession | None = None
        self.state = "idle"
        self.last_run_id: str | None = None
        self.last_status: str | None = None
        self.last_checkpoint: str | None = None
        self.last_config: TrainConfig | None = None
        self.last_record: RunRecord | None = None  # the last run's registry row as it ended: may it go on?
        self._run_folders: list[str] | None = None  # the dataset the last run trained on, as the app gave it

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
        self.continue_button = self._button("Continue training", CONTINUE_TIP, self.continue_training)
        self.again_button = self._button(
            "Train again with changes",
            "A new run that starts from this run's weights: change the settings, then press Train",
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
        self.plan_label.setObjectName("planLabel")
        self.plan_label.hide()
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(PLAN_DELAY_MS)
        self._plan_timer.timeout.connect(self._preview_plan)
        self.form.changed.connect(self.refresh_plan)
        self.form.changed.connect(self._update_continue)  # Epochs decides whether a finished run can go on

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
        right.setChildrenCollapsible(False)
        self.views.setMinimumHeight(CURVES_MIN_HEIGHT)
        self.curves_splitter = right

        body = QSplitter(Qt.Orientation.Horizontal)
        self.body_splitter = body
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
        self._update_continue()
        self.again_button.setEnabled(self.state in ("finished", "stopped", "failed") and not lr_busy)
        self.form.setEnabled(not busy and not lr_busy)

    def _update_continue(self) -> None:
        """Continue training is on only when going on can train something; when the engine refuses (a finished run
        and Epochs on auto), its tooltip says why and what to set."""
        refusal = self._continue_refusal()
        self.continue_button.setEnabled(refusal is None)
        record = self.last_record
        fine_tunes = record is not None and run_actions.continuing_fine_tunes(record)
        self.continue_button.setToolTip(
            _sentence(refusal) if refusal else CONTINUE_TO_STAGE_2_TIP if fine_tunes else CONTINUE_TIP
        )

    def _continue_refusal(self) -> str | None:
        """Why Continue training can do nothing now, in the app's words ("": no run to go on with, nothing to
        say); None when it can. The rule is the engine's (run_actions.continue_refusal), on the run's record."""
        if self.state not in ENDED or self.last_run_id is None or self.last_checkpoint is None or self.lr_finder.busy:
            return ""
        if self.last_record is None:  # the registry could not be read: Continue asks it again, and says why not
            return None
        refused = run_actions.continue_refusal(self.last_record, more=self._more_epochs())
        return None if refused is None else error_message(refused)

    def _more_epochs(self) -> int:
        """The epochs a finished run trains further: the Epochs field (0 = auto)."""
        return self.form.values()["epochs"] or 0

    def _read_last_run(self) -> RunRecord | None:
        """The last run's registry row, now (None: no run, or no registry to read it from)."""
        self.last_record = None
        if self.last_run_id is not None:
            with contextlib.suppress(WorkbenchError, OSError):
                self.last_record = _registry().get(self.last_run_id)
        return self.last_record

    # ---- actions -------------------------------------------------------------------------------
    def _valid_config(self, error_title: str) -> TrainConfig | None:
        """The window's TrainConfig, or None after telling the user what is missing."""
        try:
            config = self._config_source()
            config.validate()
        except WorkbenchError as exc:
            dialogs.show_error(self, error_title, error_message(exc))
            return None
        return config

    def start(self) -> None:
        if self.is_training:
            return
        config = self._valid_config("Cannot start training")
        if config is None:
            return
        if self.start_from_run:
            self._launch(run_actions.train_again(self.start_from_run, config))
        else:
            self._launch(run_actions.new_run(config))

    def continue_training(self) -> None:
        """The same run goes on (the engine's run_actions): a stopped one resumes where it stopped, a finished
        one trains further (the Epochs field's count more), its curves showing every epoch. What the engine refuses
        (a finished run and Epochs on auto) is said in a dialog before any work, never shown as a failed run."""
        if self.is_training or self.last_run_id is None:
            return
        more = self._more_epochs()
        try:
            record = _registry().get(self.last_run_id)
            refused = run_actions.continue_refusal(record, more=more)  # refused here, not as a failed run
            if refused is not None:
                raise refused
            action = run_actions.continue_or_resume(self.last_run_id, more=more)
        except WorkbenchError as exc:
            self._read_last_run()
            self._update_continue()
            dialogs.show_error(self, "Cannot continue training", error_message(exc))
            return
        self._launch(action)

    def prepare_new_run(self) -> None:
        """"Train again with changes": unlock the settings; Train then starts a new run from this run's weights."""
        self.start_from_run = self.last_run_id if self.last_checkpoint or self.last_status == "finished" else None
        self.plots.clear()
        self.progress.setValue(0)
        self.progress.setFormat("ready")
        where = f" The new run starts from the weights of run {self.start_from_run}." if self.start_from_run else ""
        self.status_label.setText("Change the settings, then press Train." + where)
        self._set_state("idle")
        self.refresh_plan()

    def start_over(self, text: str) -> None:
        """Settings for a new run were put in the form (a cloned run): the panel is idle, the curves empty,
        and nothing names the previous run any more."""
        if self.is_training:
            return
        self.start_from_run = None
        self.plots.clear()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("ready")
        self.status_label.setText(text)
        self._set_state("idle")
        self.refresh_plan()

    def forget_start_from_run(self) -> None:
        """Another dataset or model: a new run no longer starts from the last run's weights."""
        if self.start_from_run is not None:
            self.start_from_run = None
            self.refresh_plan()

    def dataset_opened(self, folders: list[str]) -> None:
        """A dataset was opened. A new run no longer starts from the last run's weights; and when the last run
        trained on other folders, the tab stops showing it and Continue no longer goes on with it (the Runs tab
        still lists it)."""
        self.forget_start_from_run()
        if self.is_training or self.last_run_id is None or self._run_folders == list(folders):
            return
        self.last_run_id = self.last_status = self.last_checkpoint = None
        self.last_record = self._run_folders = None
        self.start_over(self.status_label.text())

    def toggle_pause(self) -> None:
        if self.session is None:
            return
        if self.state == "running":
            self.session.pause()  # the log says "paused" when the trainer has (progress.py): once
            self._set_state("paused")
        elif self.state == "paused":
            self.session.resume()
            self._set_state("running")

    def stop(self) -> None:
        if self.lr_finder.busy:
            self.lr_finder.request_stop()
        if self.session is not None and self.state in ("starting", "running", "paused"):
            self.session.stop()
            self._set_state("stopping")
            self._log("Stopping: finishing the current step and saving a checkpoint…")

    def _launch(self, action: run_actions.RunAction) -> None:
        self.views.setCurrentIndex(0)  # the curves, even when the LR finder's tab was showing
        config, resume = action.config, action.resume
        if resume is None:
            self.plots.clear()
            self.last_config = config
            with contextlib.suppress(WorkbenchError):
                self._run_folders = dataset_roots(config.data) if config is not None else None
        self.start_from_run = None
        self.last_checkpoint = None
        self.last_record = None
        self.session = TrainingSession(config, resume=resume, parent=self)
        self.session.events.connect(self.run_progress.show_events)
        self.session.crashed.connect(self._on_crash)
        self.session.ended.connect(self._on_ended)
        self.run_progress.launching((config.epochs if config else None) or 0)
        if action.kind == run_actions.CONTINUE:
            self._log(f"Continuing run {resume} to {config.epochs if config else '?'} epochs")
        elif resume:
            self._log("Resuming run " + resume)
        elif config is not None:
            self._log(f"Starting: {config.model or 'automatic model'} on {', '.join(map(str, config.data))}")
        self._set_state("starting")
        self.session.start()

    def _on_crash(self, failure: Failure) -> None:
        message = app_message(failure.message)
        self._log(f"Error: {message}")
        self.last_status = "failed"
        self.status_label.setText(f"Training stopped with an error: {message}")
        dialogs.show_error(self, "Training error", message, "" if failure.is_user_error else failure.details)

    def _on_ended(self) -> None:
        if self.state in ("starting", "running", "paused", "stopping"):
            # The thread ended without RunFinished (a crash): leave the panel usable.
            self.run_progress.show_ended("failed")
            self._read_last_run()
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
        self._read_last_run()  # as the run ended: whether Continue can go on with it
        self._set_state(event.status)
        if event.status == RunStatus.FAILED:
            dialogs.show_error(self, "Training failed", app_message(event.reason or "The run failed."))
        self.run_finished.emit(event)

    # ---- what will be trained (before Train) ----------------------------------------------------
    def refresh_plan(self) -> None:
        """Say, in one sentence, what Train will train (the engine's describe_plan), shortly after a change."""
        if self.state in ("starting", "running", "paused", "stopping"):
            return
        self._plan_timer.start()

    def _preview_plan(self) -> None:
        if self._plan_inputs is None or self.state in ("starting", "running", "paused", "stopping"):
            return
        inputs = self._plan_inputs()
        if inputs is None:  # no dataset yet: the status line says what to do first
            return
        try:
            config = self._config_source()
        except WorkbenchError as exc:  # e.g. no model picked yet: say what is missing, in the app's words
            self._plan_job.cancel()  # a preview still being worked out is out of date
            self._show_plan(None, error_message(exc))
            return
        if self.start_from_run:
            try:
                config = run_actions.train_again(self.start_from_run, config).config
            except WorkbenchError:
                self.start_from_run = None
        self._plan_job.start(run_actions.preview_plan, config, **inputs)

    def _show_plan(self, result: Any, problem: str = "") -> None:
        if self.state in ("starting", "running", "paused", "stopping"):
            return
        if result is None:
            self.plan_label.setText(f"<b>Cannot train yet:</b> {app_message(problem)}")
            self.plan_label.setToolTip("")
        else:
            self.plan_label.setText(f"<b>Train will run:</b> {result.sentence}.")
            self.plan_label.setToolTip("Why:\n" + "\n".join(app_message(n) for n in result.notes))
            self._offer_quick(result.instant_model)
            self.form.show_automatic_augment(result.augment)
        self.plan_label.show()

    def _offer_quick(self, instant_model: bool) -> None:
        """"Stop after the instant model" means something only for a run that starts with one (stage 1)."""
        box = self.form.quick
        box.setEnabled(instant_model)
        box.setToolTip(
            "Fit the head on the pretrained network's cached features (seconds) and stop there: no fine-tuning "
            "(stage 2). The run keeps, evaluates and calibrates that model as usual."
            if instant_model
            else "Only for runs that start from ImageNet weights with a head fitted on their features (stage 1); "
            "this run trains its layers from the first epoch, so there is no instant model to stop after."
        )

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


CURVES_MIN_HEIGHT = 220  # the curves never shrink to a sliver under the log


def _registry() -> Any:
    from workbench.engine.runs import RunRegistry  # SQLite: read when a run ends, not at start-up

    return RunRegistry()


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _make_training_plots() -> TrainingPlots:
    from workbench.app.qt.plots import TrainingPlots  # pyqtgraph: imported after the first paint

    return TrainingPlots()
