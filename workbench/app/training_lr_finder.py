"""The training panel's LR finder: one learning-rate sweep at a time in the background.

The sweep's curve goes to the panel's "LR finder" tab and its suggestion into the form; the panel asks
`busy` to lock its buttons while a sweep runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.app import dialogs
from workbench.app.lazy import LazyWidget
from workbench.app.workers import Failure, run_in_background
from workbench.engine.training.config import TrainConfig

if TYPE_CHECKING:
    from workbench.app.plots import LRFinderPlot
    from workbench.app.training_panel import TrainingPanel


class LRFinderRunner:
    def __init__(self, panel: TrainingPanel, on_busy_changed: Callable[[], None]):
        self._panel = panel
        self._on_busy_changed = on_busy_changed
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
        self._panel.log.add(f"LR finder: sweeping the learning rate on {config.model}…")
        self._panel.progress.setRange(0, 0)
        self._panel.progress.setFormat("LR finder running…")
        self._worker = run_in_background(
            self._panel,
            _run_lr_find,
            config,
            lambda: self._stop,
            on_done=self._on_found,
            on_error=self._on_failed,
            on_finished=self._on_ended,
        )
        self._on_busy_changed()

    def _on_found(self, result: Any) -> None:
        self.plot.show_result(result.lrs, result.losses, result.suggestion)
        self._panel.views.setCurrentWidget(self.plot_host)
        if result.suggestion:
            self._panel.form.set_learning_rate(result.suggestion)
            self._panel.log.add(f"LR finder suggests {result.suggestion:.3g} (set in the form).")
        else:
            self._panel.log.add("LR finder found no clear minimum; keep the current learning rate.")

    def _on_failed(self, failure: Failure) -> None:
        self._panel.log.add(f"LR finder failed: {failure.message}")
        dialogs.show_error(
            self._panel, "LR finder failed", failure.message, "" if failure.is_user_error else failure.details
        )

    def _on_ended(self) -> None:
        self._worker = None
        progress = self._panel.progress
        progress.setRange(0, 1)
        progress.setValue(0)
        progress.setFormat("ready")
        self._on_busy_changed()


def _make_lr_plot() -> LRFinderPlot:
    from workbench.app.plots import LRFinderPlot  # pyqtgraph: imported after the first paint

    return LRFinderPlot()


def _run_lr_find(config: TrainConfig, should_stop: Callable[[], bool]) -> Any:  # worker thread
    from workbench.engine.training.lr_find import lr_find

    return lr_find(config, should_stop=should_stop)
