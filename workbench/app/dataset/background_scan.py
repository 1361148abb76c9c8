"""Scanning dataset folders for the browser in a worker thread: progress, cancel, and only the latest scan's
result delivered (a cancelled or superseded scan may still finish; what it returns is ignored)."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal

from workbench.app.dataset.scan import DatasetSummary, scan_for_browser
from workbench.app.qt.workers import Failure, run_in_background

PROGRESS_EVERY_S = 0.1


class _ScanProgress(QObject):
    """Carries the worker's file count to the UI thread (a queued signal), at most 10 times a second."""

    counted = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def report(self, count: int) -> None:  # worker thread
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self.counted.emit(count)


class BackgroundScan(QObject):
    """`start` a scan; `progress` (files seen so far), then `finished` (a DatasetSummary) or `failed` (a
    Failure) follow on the UI thread, unless `cancel` or a newer `start` came first."""

    progress = Signal(int)
    finished = Signal(object)  # DatasetSummary
    failed = Signal(object)  # Failure

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._cancel_requested = False
        self._generation = 0

    def start(self, folders: list[str], val_fraction: float, seed: int) -> None:
        self._generation += 1
        generation = self._generation
        self._cancel_requested = False
        relay = _ScanProgress()
        relay.counted.connect(self.progress)
        self._progress_relay = relay  # keep alive while the worker reports into it
        run_in_background(
            self,
            scan_for_browser,
            list(folders),
            lambda: self._cancel_requested or generation != self._generation,
            relay.report,
            val_fraction,
            seed,
            on_done=lambda summary: self._on_done(generation, summary),
            on_error=lambda failure: self._on_error(generation, failure),
        )

    def cancel(self) -> None:
        self._cancel_requested = True
        self._generation += 1  # whatever the cancelled scan returns is ignored

    def _on_done(self, generation: int, summary: DatasetSummary) -> None:
        if generation == self._generation:
            self.finished.emit(summary)

    def _on_error(self, generation: int, failure: Failure) -> None:
        if generation == self._generation:
            self.failed.emit(failure)
