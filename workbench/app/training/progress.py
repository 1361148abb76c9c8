"""How the training panel shows a run's progress: the engine's events as log lines, status text, the
progress bar with its step/ETA text, and the curves.

The functions are pure formatting (one engine event in, the words the panel shows out). `TrainingProgress`
is handed the widgets it draws on (progress bar, status and plan labels, curves, log) and shows each batch of
events the session delivers in them; what the panel itself must act on (a run started, a checkpoint saved, a
run finished) it reports through signals, so it never reaches into the panel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from workbench.app.qt.wording import app_message
from workbench.engine.training import event_text, run_actions
from workbench.engine.training.events import (
    CheckpointSaved,
    DataProgress,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnded,
)

if TYPE_CHECKING:
    from PySide6.QtWidgets import QLabel, QProgressBar

    from workbench.app.qt.plots import TrainingPlots
    from workbench.app.training.log import RunLog


def run_started_status(event: RunStarted) -> str:
    return f"Training {event.model} on {event.device}: run {event.run_id}" + (
        f", resumed at epoch {event.start_epoch}" if event.start_epoch else ""
    )


@dataclass
class RunProgress:
    """Where a run stands in steps and how fast it goes; the ETA is timed from the first step it sees, and
    time spent paused counts neither into the speed nor into the ETA."""

    epochs: int = 0
    steps_per_epoch: int = 0
    t0: float | None = None  # monotonic time of the first step seen
    step0: int = 0  # that step's number (a resumed run starts past 0)
    paused_s: float = 0.0  # seconds paused since t0
    paused_at: float | None = None  # monotonic time the current pause began

    def run_started(self, epochs: int, steps_per_epoch: int) -> None:
        self.epochs, self.steps_per_epoch, self.t0 = epochs, steps_per_epoch, None
        self.paused_s, self.paused_at = 0.0, None

    def paused(self, now: float | None = None) -> None:
        if self.paused_at is None:
            self.paused_at = time.monotonic() if now is None else now

    def resumed(self, now: float | None = None) -> None:
        if self.paused_at is not None:
            now = time.monotonic() if now is None else now
            if self.t0 is not None:
                self.paused_s += max(0.0, now - max(self.paused_at, self.t0))
            self.paused_at = None

    def step(self, event: Any, now: float | None = None) -> tuple[int, str]:
        """For a StepEnded event: the run's total steps and the progress bar's text."""
        now = time.monotonic() if now is None else now
        if self.t0 is None:
            self.t0, self.step0, self.paused_s = now, event.step, 0.0
        per_epoch = event.steps_per_epoch or self.steps_per_epoch or 1
        total = max(1, self.epochs * per_epoch)
        done_here = event.step - self.step0
        eta = ""
        if done_here > 0 and event.step < total:
            seconds_per_step = max(0.0, now - self.t0 - self.paused_s) / done_here
            eta = f" · ETA {event_text.duration(seconds_per_step * (total - event.step))}"
        in_epoch = event.step_in_epoch or ((event.step - 1) % per_epoch + 1)
        text = (
            f"epoch {event.epoch}/{self.epochs} · step {in_epoch}/{per_epoch} · "
            f"{event.images_per_s:,.0f} img/s · loss {event.loss:.4f}{eta}"
        )
        return total, text


def ended_text(status: str, epochs: int | None = None) -> str:
    """The bar's words once a run is over: how it ended, never a stale speed or ETA."""
    return f"{status} · {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else status


class TrainingProgress(QObject):
    """Draws a run's events (UI thread, coalesced into batches) on the widgets it is handed.

    `plots` is a callable because the curves are built lazily, after the window's first paint.
    """

    run_started = Signal(object)  # the RunStarted event, after the widgets show it
    checkpoint_saved = Signal(str)  # the checkpoint's path
    run_finished = Signal(object)  # the RunFinished event, after the widgets show it

    def __init__(
        self,
        *,
        progress: QProgressBar,
        status_label: QLabel,
        plan_label: QLabel,
        plots: Callable[[], TrainingPlots],
        log: RunLog,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._progress = progress
        self._status_label = status_label
        self._plan_label = plan_label
        self._plots = plots
        self._log = log
        self._run_progress = RunProgress()

    def launching(self, epochs: int) -> None:
        """A new session: the ETA is timed afresh; the bar is busy until the trainer counts its steps."""
        self._run_progress = RunProgress(epochs=epochs)
        self._progress.setRange(0, 0)
        self._progress.setFormat("starting…")

    def show_events(self, events: list[Any]) -> None:
        for event in events:  # before the batch's steps and epochs are drawn: a batch may hold the whole run
            if isinstance(event, RunStarted):
                self._seed_history(event)
        self._plots().add_events(events)
        last_step = None
        for event in events:
            match event:
                case StepEnded():
                    last_step = event  # only the newest step of a batch is worth drawing
                case Paused() | Resumed():
                    if isinstance(event, Paused):
                        self._run_progress.paused()
                        last_step = None  # the bar says paused, not a speed and an ETA that are not running
                        self._progress.setFormat("paused at step %v of %m: Resume goes on")
                    else:
                        self._run_progress.resumed()
                    text = event_text.line(event)
                    if text is not None:
                        self._log.add(text)
                case RunStarted():
                    self._show_run_started(event)
                case DataProgress():
                    self._progress.setRange(0, max(event.total, 1) if event.total else 0)
                    self._progress.setValue(event.done)
                    self._progress.setFormat(event_text.data_progress_text(event))
                case CheckpointSaved():
                    self._log.add(event_text.checkpoint_line(event))
                    self.checkpoint_saved.emit(event.path)
                case RunFinished():
                    if last_step is not None:  # the steps before the end, then the end: never a stale bar
                        self._show_step(last_step)
                        last_step = None
                    self._show_run_finished(event)
                case _:  # messages, skipped files, pause/resume, epochs: a log line each
                    text = event_text.line(event)
                    if text is not None:
                        self._log.add(("⚠ " if event_text.is_warning(event) else "") + app_message(text))
        if last_step is not None:
            self._show_step(last_step)

    def _show_run_started(self, event: Any) -> None:
        self._run_progress.run_started(event.epochs, event.steps_per_epoch)
        total = max(1, event.epochs * event.steps_per_epoch)
        self._progress.setRange(0, total)
        self._progress.setValue(event.start_epoch * event.steps_per_epoch)
        self._progress.setFormat("training…")
        self._plots().start_run(0, event.epochs, event.steps_per_epoch)  # the whole run, earlier epochs included
        self._status_label.setText(run_started_status(event))
        self._log.add(event_text.run_started_line(event))
        if getattr(event, "plan", ""):
            self._plan_label.setText(f"<b>Training:</b> {event.plan}")
            self._plan_label.setToolTip("Why:\n" + "\n".join(app_message(note) for note in event.notes))
            self._plan_label.show()
        for note in event.notes:
            self._log.add(f"  chosen: {app_message(note)}")
        self.run_started.emit(event)

    def _seed_history(self, event: RunStarted) -> None:
        """A continued or resumed run: the curves start with the epochs it trained before (its history; for a
        quick run continued, stage 1's point at epoch 0)."""
        if event.resumed or event.start_epoch > 0:
            self._plots().load_history(run_actions.run_history(event.run_id, up_to_epoch=event.start_epoch))
        else:
            self._plots().clear()

    def _show_step(self, event: Any) -> None:
        total, text = self._run_progress.step(event)
        self._progress.setRange(0, total)
        self._progress.setValue(min(event.step, total))
        self._progress.setFormat(text)

    def _show_run_finished(self, event: Any) -> None:
        summary = f"Run {app_message(event_text.run_summary(event))}"
        self._log.add(summary)
        self._status_label.setText(summary)
        self.show_ended(event.status, event.epochs)
        self.run_finished.emit(event)

    def show_ended(self, status: str, epochs: int | None = None) -> None:
        """The bar stops being busy and says how the run ended ("finished", "stopped", "failed")."""
        if self._progress.maximum() == 0:
            self._progress.setRange(0, 1)
        if status == "finished":
            self._progress.setValue(self._progress.maximum())
        self._progress.setFormat(ended_text(status, epochs))
