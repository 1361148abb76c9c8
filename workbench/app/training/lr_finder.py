"""The training panel's LR finder: one learning-rate sweep at a time in the background.

`LRFinderRunner` is handed the progress bar and the log it reports in; the sweep's curve goes to its own
"LR finder" tab (`plot_host`), and what the panel must act on comes out as signals: `busy_changed` (lock the
buttons), `suggested` (a learning rate for the form) and `plotted` (show the curve's tab).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from workbench.app.qt import dialogs
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.workers import Failure, run_in_background
from workbench.engine.training.config import TrainConfig

if TYPE_CHECKING:
    from PySide6.QtWidgets import QProgressBar, QWidget

    from workbench.app.qt.plots import LRFinderPlot
    from workbench.app.training.log import RunLog


class LRFinderRunner(QObject):
    busy_changed = Signal()
    suggested = Signal(float)  # the learning rate the sweep suggests
    plotted = Signal()  # the sweep's curve is drawn in `plot_host`

    def __init__(self, owner: QWidget, progress: QProgressBar, log: RunLog):
        """`owner`: the widget the worker reports to (nothing is delivered once it is gone) and the parent of
        error dialogs."""
        super().__init__(owner)
        self._owner = owner
        self._progress = progress
        self._log = log
        self.plot_host = LazyWidget(_make_lr_plot)  # the tab; its plot is built after the first paint
        self._worker: Any = None
        self._stop = False

    @property
    def busy(self) -> bool:
        return self._worker is not None

    @property
    def plot(self) -> LRFinderPlot:
        return self.plot_host.widget()

    def request_stop(self) -> None:
        """Ask a running sweep to end (checked between its steps)."""
        self._stop = True

    def start(self, config: TrainConfig) -> None:
        self._stop = False
        self._log.add(f"LR finder: sweeping the learning rate on {config.model}…")
        self._progress.setRange(0, 0)
        self._progress.setFormat("LR finder running…")
        self._worker = run_in_background(
            self._owner,
            _run_lr_find,
            config,
            lambda: self._stop,
            on_done=self._on_found,
            on_error=self._on_failed,
            on_finished=self._on_ended,
        )
        self.busy_changed.emit()

    def _on_found(self, result: Any) -> None:
        self.plot.show_result(result.lrs, result.losses, result.suggestion)
        self.plotted.emit()
        if result.suggestion:
            self.suggested.emit(float(result.suggestion))
            self._log.add(f"LR finder suggests {result.suggestion:.3g} (set in the form).")
        else:
            self._log.add("LR finder found no clear minimum; keep the current learning rate.")

    def _on_failed(self, failure: Failure) -> None:
        self._log.add(f"LR finder failed: {failure.message}")
        dialogs.show_error(
            self._owner, "LR finder failed", failure.message, "" if failure.is_user_error else failure.details
        )

    def _on_ended(self) -> None:
        self._worker = None
        self._progress.setRange(0, 1)
        self._progress.setValue(0)
        self._progress.setFormat("ready")
        self.busy_changed.emit()


def _make_lr_plot() -> LRFinderPlot:
    from workbench.app.qt.plots import LRFinderPlot  # pyqtgraph: imported after the first paint

    return LRFinderPlot()


def _run_lr_find(config: TrainConfig, should_stop: Callable[[], bool]) -> Any:  # worker thread
    from workbench.engine.training.lr_find import lr_find

    return lr_find(config, should_stop=should_stop)
