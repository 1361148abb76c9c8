"""How the training panel shows a run's progress: the engine's events as log lines, status text, the
progress bar with its step/ETA text, and the curves.

The functions are pure formatting (one engine event in, the words the panel shows out);
`TrainingProgressMixin` is the panel's handler for each batch of events the session delivers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.app import dialogs
from workbench.engine.training import event_text
from workbench.engine.training.events import (
    CheckpointSaved,
    DataProgress,
    RunFinished,
    RunStarted,
    RunStatus,
    StepEnded,
)

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QLabel, QProgressBar

    from workbench.app.plots import TrainingPlots


def run_started_status(event: RunStarted) -> str:
    return f"Training {event.model} on {event.device}: run {event.run_id}" + (
        f", resumed at epoch {event.start_epoch}" if event.start_epoch else ""
    )


@dataclass
class RunProgress:
    """Where a run stands in steps and how fast it goes; the ETA is timed from the first step it sees."""

    epochs: int = 0
    steps_per_epoch: int = 0
    t0: float | None = None  # monotonic time of the first step seen
    step0: int = 0  # that step's number (a resumed run starts past 0)

    def run_started(self, epochs: int, steps_per_epoch: int) -> None:
        self.epochs, self.steps_per_epoch, self.t0 = epochs, steps_per_epoch, None

    def step(self, event: Any) -> tuple[int, str]:
        """For a StepEnded event: the run's total steps and the progress bar's text."""
        now = time.monotonic()
        if self.t0 is None:
            self.t0, self.step0 = now, event.step
        per_epoch = event.steps_per_epoch or self.steps_per_epoch or 1
        total = max(1, self.epochs * per_epoch)
        done_here = event.step - self.step0
        eta = ""
        if done_here > 0:
            seconds_per_step = (now - self.t0) / done_here
            eta = f" · ETA {event_text.duration(seconds_per_step * (total - event.step))}"
        in_epoch = event.step_in_epoch or ((event.step - 1) % per_epoch + 1)
        text = (
            f"epoch {event.epoch}/{self.epochs} · step {in_epoch}/{per_epoch} · "
            f"{event.images_per_s:,.0f} img/s · loss {event.loss:.4f}{eta}"
        )
        return total, text


class TrainingProgressMixin:
    """TrainingPanel's reactions to the engine's events (UI thread, coalesced into batches)."""

    # provided by TrainingPanel
    state: str
    last_run_id: str | None
    last_status: str | None
    last_checkpoint: str | None
    progress: QProgressBar
    status_label: QLabel
    plan_label: QLabel
    plots: TrainingPlots
    state_changed: SignalInstance
    run_started: SignalInstance
    run_finished: SignalInstance
    _run_progress: RunProgress
    _set_state: Callable[[str], None]
    _log: Callable[[str], None]

    def _on_events(self, events: list[Any]) -> None:
        self.plots.add_events(events)
        last_step = None
        for event in events:
            match event:
                case StepEnded():
                    last_step = event
                case RunStarted():
                    self._on_run_started(event)
                case DataProgress():
                    self.progress.setRange(0, max(event.total, 1) if event.total else 0)
                    self.progress.setValue(event.done)
                    self.progress.setFormat(event_text.data_progress_text(event))
                case CheckpointSaved():
                    self.last_checkpoint = event.path
                    self._log(event_text.checkpoint_line(event))
                case RunFinished():
                    self._on_run_finished(event)
                case _:  # messages, skipped files, pause/resume, epochs: a log line each
                    text = event_text.line(event)
                    if text is not None:
                        self._log(("⚠ " if event_text.is_warning(event) else "") + text)
        if last_step is not None:
            self._show_step(last_step)

    def _on_run_started(self, event: Any) -> None:
        self.last_run_id = event.run_id
        self._run_progress.run_started(event.epochs, event.steps_per_epoch)
        total = max(1, event.epochs * event.steps_per_epoch)
        self.progress.setRange(0, total)
        self.progress.setValue(event.start_epoch * event.steps_per_epoch)
        self.progress.setFormat("training…")
        self.plots.start_run(event.start_epoch, event.epochs, event.steps_per_epoch)
        self.status_label.setText(run_started_status(event))
        if self.state == "starting":
            self._set_state("running")
        elif self.state == "paused":
            self.state_changed.emit("paused")
        self._log(event_text.run_started_line(event))
        if getattr(event, "plan", ""):
            self.plan_label.setText(f"<b>Training:</b> {event.plan}")
            self.plan_label.setToolTip("Why:\n" + "\n".join(event.notes))
            self.plan_label.show()
        for note in event.notes:
            self._log(f"  chosen: {note}")
        self.run_started.emit(event)

    def _show_step(self, event: Any) -> None:
        total, text = self._run_progress.step(event)
        self.progress.setRange(0, total)
        self.progress.setValue(min(event.step, total))
        self.progress.setFormat(text)

    def _on_run_finished(self, event: Any) -> None:
        self.last_status = event.status
        if event.run_id:
            self.last_run_id = event.run_id
        if event.checkpoint:
            self.last_checkpoint = event.checkpoint
        summary = f"Run {event_text.run_summary(event)}"
        self._log(summary)
        self.status_label.setText(summary)
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self.progress.setFormat(event.status)
        self._set_state(event.status)
        if event.status == RunStatus.FAILED:
            dialogs.show_error(self, "Training failed", event.reason or "The run failed.")
        self.run_finished.emit(event)
