"""The inspector's requests to its workers: numbered per kind, so an answer that a newer request of the same
kind has overtaken is dropped (clicking quickly through layers never shows a stale grid); a busy bar shows
while any request is still running."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QProgressBar, QWidget

from workbench.app.qt.workers import Failure, run_in_background


class LatestRequests:
    def __init__(self, owner: QWidget, busy_bar: QProgressBar, on_error: Callable[[Failure], None]):
        self._owner = owner  # answers reach the UI only while it exists
        self._busy_bar = busy_bar
        self._on_error = on_error
        self._numbers: dict[str, int] = {}
        self._pending = 0  # requests still running in workers

    def start(
        self,
        kind: str,
        func: Callable[..., Any],
        *args: Any,
        on_done: Callable[[Any], None],
        on_error: Callable[[Failure], None] | None = None,
    ) -> None:
        """`func(*args)` in a worker; `on_done(result)` unless another request of `kind` started since;
        failures go to `on_error`, else to the view's error handler."""
        number = self._numbers.get(kind, 0) + 1
        self._numbers[kind] = number

        def done(result: Any) -> None:
            if self._numbers.get(kind) == number:  # a newer request of this kind supersedes this answer
                on_done(result)

        def finished() -> None:
            self._pending -= 1
            self._busy_bar.setVisible(self._pending > 0)

        self._pending += 1
        self._busy_bar.show()
        run_in_background(
            self._owner, func, *args, on_done=done, on_error=on_error or self._on_error, on_finished=finished
        )

    @property
    def busy(self) -> bool:
        return self._pending > 0
