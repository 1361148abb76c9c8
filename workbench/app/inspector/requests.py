"""The inspector's requests to its workers: one background job per kind of picture, so a newer request of a
kind supersedes the older one (clicking quickly through layers never shows a stale grid, and a request still
waiting for a thread is dropped unrun); a busy bar shows while any kind is still being computed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QProgressBar, QWidget

from workbench.app.qt.workers import BackgroundJob, Failure, report_failure

ERROR_TITLE = "Inspection failed"


class LatestRequests:
    def __init__(self, owner: QWidget, busy_bar: QProgressBar, on_error: Callable[[Failure], None]):
        self._owner = owner  # answers reach the UI only while it exists; it parents the error dialogs
        self._busy_bar = busy_bar
        self._on_error = on_error  # what the view says (its status line) besides the error dialog
        self._jobs: dict[str, BackgroundJob] = {}
        self._answer: dict[str, Callable[[Any], None]] = {}
        self._quiet: dict[str, Callable[[Failure], None] | None] = {}

    def start(
        self,
        kind: str,
        func: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None],
        on_error: Callable[[Failure], None] | None = None,
    ) -> None:
        """`func(*args)` in a worker; `on_done(result)` unless another request of `kind` started since.
        A failure goes to `on_error` alone when given (told quietly), else to the error dialog and the view."""
        job = self._jobs.get(kind)
        if job is None:
            job = self._jobs[kind] = BackgroundJob(self._owner)
            job.done.connect(lambda result, kind=kind: self._answer[kind](result))
            job.failed.connect(lambda failure, kind=kind: self._failed(kind, failure))
            job.ended.connect(self._show_busy)
        self._answer[kind], self._quiet[kind] = on_done, on_error
        job.start(func, *args)
        self._show_busy()

    def _failed(self, kind: str, failure: Failure) -> None:
        quiet = self._quiet[kind]
        if quiet is not None:
            quiet(failure)
            return
        self._on_error(failure)
        report_failure(self._owner, ERROR_TITLE, failure)

    def _show_busy(self) -> None:
        self._busy_bar.setVisible(self.busy)

    @property
    def busy(self) -> bool:
        return any(job.busy for job in self._jobs.values())
