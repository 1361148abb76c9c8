"""The training panel's LR finder: one learning-rate sweep at a time, a background job (`lr_sweep`).

`LRFinderRunner` is handed the progress bar and the log it reports in; the sweep's curve goes to its own
"LR finder" tab (`plot_host`), and what the panel must act on comes out as signals: `busy_changed` (lock the
buttons), `suggested` (a learning rate for the form) and `plotted` (show the curve's tab). Stopped early, the
sweep is cancelled: its curve so far is shown, but it suggests nothing (the engine's rule for a partial sweep) and
the form keeps its learning rate.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.workers import BackgroundJob, Failure
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import DataProgress, Message, StepEnded

if TYPE_CHECKING:
    from PySide6.QtWidgets import QProgressBar, QWidget

    from workbench.app.qt.plots import LRFinderPlot
    from workbench.app.training.log import RunLog
    from workbench.engine.training.lr_find import LRFindResult


class LRFinderRunner(QObject):
    busy_changed = Signal()
    suggested = Signal(float)  # the learning rate the sweep suggests
    plotted = Signal()  # the sweep's curve is drawn in `plot_host`

    def __init__(self, owner: QWidget, progress: QProgressBar, log: RunLog):
        """`owner`: the widget the worker reports to (nothing is delivered once it is gone) and the parent of
        error dialogs."""
        super().__init__(owner)
        self._progress = progress
        self._log = log
        self.plot_host = LazyWidget(_make_lr_plot)  # the tab; its plot is built after the first paint
        self._job = BackgroundJob(owner, error_title="LR finder failed")
        self._job.progressed.connect(self._on_progress)
        self._job.done.connect(self._on_found)
        self._job.failed.connect(self._on_failed)
        self._job.ended.connect(self._on_ended)
        self._points: list[tuple[float, float]] = []  # (rate, smoothed loss) of the steps so far
        self._planned_steps = 0  # the sweep's length, from its steps' events
        self._stopped = False

    @property
    def busy(self) -> bool:
        return self._job.busy

    @property
    def plot(self) -> LRFinderPlot:
        return self.plot_host.widget()

    def request_stop(self) -> None:
        """End a running sweep at its next step (or, while it reads the images, at their next check); the curve
        so far is kept, nothing is suggested."""
        if self._job.busy:
            self._stopped = True
            self._job.cancel()

    def start(self, config: TrainConfig) -> None:
        self._points = []
        self._planned_steps = 0
        self._stopped = False
        self._log.add(f"LR finder: sweeping the learning rate on {config.model}…")
        self._progress.setRange(0, 0)
        self._progress.setFormat("LR finder running…")
        self._job.start(lr_sweep, config)
        self.busy_changed.emit()

    def _on_progress(self, event: Any) -> None:
        match event:
            case StepEnded():
                self._points.append((event.lr, event.loss))
                self._planned_steps = event.steps_per_epoch
                self._progress.setRange(0, max(event.steps_per_epoch, 1))
                self._progress.setValue(event.step_in_epoch)
                self._progress.setFormat(f"LR finder: step %v of %m (rate {event.lr:.2g})")
            case DataProgress() if event.total:
                self._progress.setRange(0, event.total)
                self._progress.setValue(event.done)
                self._progress.setFormat(f"LR finder: {event.stage} %v of %m images")
            case Message():
                self._log.add(f"LR finder: {event.text}")

    def _on_found(self, result: LRFindResult) -> None:
        self._show_result(result)

    def _show_result(self, result: LRFindResult) -> None:
        """The curve in its tab; the suggestion, from a sweep that ran to its end only, into the form."""
        self.plot.show_result(result.lrs, result.losses, result.suggestion)
        self.plotted.emit()
        if result.stopped:
            of = f" of {self._planned_steps}" if self._planned_steps else ""
            self._log.add(
                f"LR finder stopped after {len(result.lrs)}{of} steps: nothing was set, the learning rate was "
                "left as it was (only a sweep run to its end gives a suggestion)."
            )
        elif result.suggestion:
            self.suggested.emit(float(result.suggestion))
            self._log.add(f"LR finder suggests {result.suggestion:.3g} (set in the form).")
        else:
            self._log.add("LR finder found no clear minimum; keep the current learning rate.")

    def _on_failed(self, failure: Failure) -> None:  # the job shows the error dialog
        self._log.add(f"LR finder failed: {failure.message}")

    def _show_stopped_sweep(self) -> None:
        """Stopped early (the job was cancelled, so the engine's result never came): the curve of the steps
        taken, as the engine's result for a stopped sweep, which suggests nothing."""
        if not any(math.isfinite(loss) for _, loss in self._points):
            self._log.add("LR finder stopped before its first step; the learning rate was left as it was.")
            return
        from workbench.engine.training.lr_find import sweep_result  # torch is loaded: the sweep imported it

        lrs, losses = [lr for lr, _ in self._points], [loss for _, loss in self._points]
        self._show_result(sweep_result(lrs, losses, stopped=True))

    def _on_ended(self) -> None:
        if self._stopped:
            self._stopped = False
            self._show_stopped_sweep()
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._progress.setFormat("ready")
        self.busy_changed.emit()


def _make_lr_plot() -> LRFinderPlot:
    from workbench.app.qt.plots import LRFinderPlot  # pyqtgraph: imported after the first paint

    return LRFinderPlot()


def lr_sweep(config: TrainConfig) -> Generator[Any, None, Any]:  # worker thread
    """The engine's sweep as a background job: yields its events (data progress, one StepEnded per step,
    messages), returns the LRFindResult."""
    from workbench.engine.training.lr_find import sweep

    stop = threading.Event()
    try:
        return (yield from sweep(config, should_stop=stop.is_set))
    finally:
        stop.set()  # cancelled: the engine's image decoding, which runs in a thread of its own, stops too
