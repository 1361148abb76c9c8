"""Fetching a model's ImageNet weights ahead of training: one download at a time, behind a cancellable
progress dialog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from workbench.app.model.zoo_info import download_weights
from workbench.app.qt import dialogs
from workbench.app.qt.workers import Failure, run_in_background


class WeightsDownload:
    """Runs `download_weights` in the background for `owner`, which parents the dialogs and outlives the worker."""

    def __init__(
        self, owner: QWidget, on_ready: Callable[[str], None], on_finished: Callable[[], None]
    ) -> None:
        self._owner = owner
        self._on_ready = on_ready  # the confirmation message
        self._on_finished = on_finished  # after success, failure or cancel
        self._worker: Any = None
        self._stop = False
        self._relay: _ProgressRelay | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self, name: str) -> None:
        if self._worker is not None:
            return
        self._stop = False
        dialog = dialogs.progress_dialog(
            self._owner, "Downloading weights", f"ImageNet weights for {name}…", self.cancel, maximum=100
        )
        relay = _ProgressRelay()
        relay.progressed.connect(
            lambda done, total: (
                (dialog.setMaximum(100), dialog.setValue(int(100 * done / total)))
                if total
                else dialog.setMaximum(0)
            )
        )
        self._relay = relay  # keep alive while the worker reports into it

        def finish() -> None:
            dialog.close()
            self._worker = None
            self._on_finished()

        def failed(failure: Failure) -> None:
            if not self._stop:
                dialogs.show_error(
                    self._owner,
                    "Download failed",
                    failure.message,
                    "" if failure.is_user_error else failure.details,
                )

        self._worker = run_in_background(
            self._owner,
            download_weights,
            name,
            relay.report,
            lambda: self._stop,
            on_done=self._on_ready,
            on_error=failed,
            on_finished=finish,
        )

    def cancel(self) -> None:
        """Ask the worker to stop at its next progress report (the partial file is removed)."""
        self._stop = True


class _ProgressRelay(QObject):
    """Carries download progress (bytes done, total) from the worker to the dialog; one emit per 1 MiB chunk."""

    progressed = Signal(int, int)

    def report(self, done: int, total: int) -> None:  # worker thread
        self.progressed.emit(done, total)
