"""Fetching a model's ImageNet weights ahead of training: one download at a time, a background job behind a
cancellable progress dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from PySide6.QtWidgets import QProgressDialog, QWidget

from workbench.app.qt import dialogs
from workbench.app.qt.workers import BackgroundJob, callback_steps

ERROR_TITLE = "Download failed"


def download_job(name: str) -> Generator[tuple[int, int] | None, None, str]:
    """`zoo_info.download_weights` as a background job: yields (bytes done, total; total 0 when unknown);
    returns the confirmation. Cancelled, the engine stops at its next chunk and removes the partial file."""
    from workbench.app.model.zoo_info import download_weights

    return (
        yield from callback_steps(
            lambda report, should_stop: download_weights(
                name, lambda done, total: report((done, total)), should_stop
            )
        )
    )


class WeightsDownload:
    """Runs `download_job` for `owner`, which parents the dialogs and outlives the worker."""

    def __init__(
        self, owner: QWidget, on_ready: Callable[[str], None], on_finished: Callable[[], None]
    ) -> None:
        self._owner = owner
        self._job = BackgroundJob(owner, error_title=ERROR_TITLE)
        self._job.done.connect(on_ready)  # the confirmation message
        self._job.progressed.connect(self._show_progress)
        self._job.ended.connect(self._ended)
        self._on_finished = on_finished  # after success, failure or cancel
        self._dialog: QProgressDialog | None = None

    @property
    def running(self) -> bool:
        """Until the worker has ended, also after a cancel: a new download must not meet the partial file."""
        return self._job.busy

    def start(self, name: str) -> None:
        if self._job.busy:
            return
        self._dialog = dialogs.progress_dialog(
            self._owner, "Downloading weights", f"ImageNet weights for {name}…", self.cancel, maximum=100
        )
        self._job.start(download_job, name)

    def cancel(self) -> None:
        """Stop the download at its next chunk (the partial file is removed); nothing is reported."""
        self._job.cancel()

    def _show_progress(self, progress: tuple[int, int]) -> None:
        done, total = progress
        if self._dialog is None:
            return
        if total:
            self._dialog.setMaximum(100)
            self._dialog.setValue(int(100 * done / total))
        else:
            self._dialog.setMaximum(0)  # size unknown: a busy indicator

    def _ended(self) -> None:
        if self._dialog is not None:
            self._dialog.close()
            self._dialog = None
        self._on_finished()
