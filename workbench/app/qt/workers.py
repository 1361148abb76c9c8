"""Background work for the window: every engine call runs off the UI thread and reports back through signals.

Two pieces:
- `EventPump` coalesces a stream of engine events: worker threads `put()` into a lock-free deque and a
  2 Hz timer on the UI thread hands them over as one list, so a fast trainer never floods the event loop.
- `run_in_background` / `TrainingSession` wrap superqt thread workers; engine modules (and so torch) are
  imported inside the worker functions, never at import time of the window.
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from superqt.utils import FunctionWorker, GeneratorWorker, create_worker

from workbench.engine.errors import WorkbenchError

PUMP_HZ = 2  # curves and progress twice a second: each repaint of the plots holds the GIL ~15 ms
MIN_POOL_THREADS = 8  # training, a scan, summaries, a download... must not queue behind one another


def ensure_pool_capacity() -> None:
    """superqt runs workers in Qt's global pool, sized to the CPU count (2 here): a long training run and a
    zoo sweep would leave nothing for a scan. Our workers mostly wait on I/O or torch (which releases the
    GIL), so a few more threads than cores is right."""
    pool = QThreadPool.globalInstance()
    if pool.maxThreadCount() < MIN_POOL_THREADS:
        pool.setMaxThreadCount(MIN_POOL_THREADS)


@dataclass(frozen=True)
class Failure:
    """An error from a worker, split into what the user reads and what a bug report needs."""

    message: str
    details: str
    is_user_error: bool  # a WorkbenchError: the message says what to fix, no traceback needed

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, WorkbenchError):
            return cls(str(exc), details, True)
        return cls(f"{type(exc).__name__}: {exc}", details, False)


class EventPump(QObject):
    """Thread-safe inbox for events, delivered to the UI thread in batches at most `hz` times a second."""

    batch = Signal(list)

    def __init__(self, hz: int = PUMP_HZ, parent: QObject | None = None):
        super().__init__(parent)
        # deque.append/popleft are atomic in CPython, so producers never take a lock
        self._inbox: collections.deque[Any] = collections.deque()
        self._timer = QTimer(self)
        self._timer.setInterval(max(1, 1000 // hz))
        self._timer.timeout.connect(self.flush)

    def put(self, event: Any) -> None:
        """Queue one event; safe from any thread."""
        self._inbox.append(event)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer and deliver what is left."""
        self._timer.stop()
        self.flush()

    @property
    def interval_ms(self) -> int:
        return self._timer.interval()

    def flush(self) -> None:
        events = []
        while self._inbox:
            events.append(self._inbox.popleft())
        if events:
            self.batch.emit(events)


def _guarded(owner: QObject, callback: Callable[..., None] | None) -> Callable[..., None]:
    """`callback`, skipped once `owner` (the widget that asked) has been deleted: a late result from a worker
    must not touch a closed panel."""

    def call(*args: Any) -> None:
        if callback is not None and shiboken6.isValid(owner):
            callback(*args)

    return call


def run_in_background(
    owner: QObject,
    func: Callable[..., Any],
    *args: Any,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[Failure], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    **kwargs: Any,
) -> FunctionWorker:
    """Run `func(*args, **kwargs)` in the thread pool; `on_done(result)` / `on_error(Failure)`, then
    `on_finished()` either way, run on the UI thread as long as `owner` still exists."""
    ensure_pool_capacity()
    worker: FunctionWorker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.returned.connect(_guarded(owner, on_done))
    worker.finished.connect(_guarded(owner, on_finished))
    report_error = _guarded(owner, on_error)
    worker.errored.connect(lambda exc: report_error(Failure.from_exception(exc)))
    worker.start()
    return worker


def run_generator_in_background(
    owner: QObject,
    func: Callable[..., Iterator[Any]],
    *args: Any,
    on_yield: Callable[[Any], None] | None = None,
    on_error: Callable[[Failure], None] | None = None,
    **kwargs: Any,
) -> GeneratorWorker:
    """Like `run_in_background` for a generator: each yielded value reaches `on_yield`; `worker.quit()` cancels
    between yields (so a long job that yields progress can be cancelled)."""
    ensure_pool_capacity()
    worker: GeneratorWorker = create_worker(func, *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.yielded.connect(_guarded(owner, on_yield))
    report_error = _guarded(owner, on_error)
    worker.errored.connect(lambda exc: report_error(Failure.from_exception(exc)))
    worker.start()
    return worker


class TrainingSession(QObject):
    """One training run in a worker thread: the engine's Trainer, its event stream, and its controls.

    `events` carries coalesced lists of engine events; `crashed` a Failure when the trainer raised instead
    of ending with RunFinished (a bug, shown with details); `ended` fires once the thread is done either way.
    pause/resume/stop are forwarded to the Trainer (thread-safe there); a request made before the Trainer
    exists (torch still importing) is applied the moment it does.
    """

    events = Signal(list)
    crashed = Signal(object)
    ended = Signal()

    def __init__(self, config: Any, *, resume: str | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.config = config
        self.resume_from = resume
        self._trainer: Any = None
        self._stop_requested = False
        self._pause_requested = False
        self._running = False
        self._pump = EventPump(parent=self)
        self._pump.batch.connect(self.events)
        self._worker: FunctionWorker | None = None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def run_id(self) -> str | None:
        return getattr(self._trainer, "run_id", None)

    def start(self) -> None:
        ensure_pool_capacity()
        self._running = True
        self._pump.start()
        self._worker = create_worker(self._work, _start_thread=False, _ignore_errors=True)
        self._worker.errored.connect(lambda exc: self.crashed.emit(Failure.from_exception(exc)))
        self._worker.finished.connect(self._on_finished)
        self._worker.start()

    def pause(self) -> None:
        self._pause_requested = True
        if self._trainer is not None:
            self._trainer.pause()

    def resume(self) -> None:
        self._pause_requested = False
        if self._trainer is not None:
            self._trainer.resume()

    def stop(self) -> None:
        self._stop_requested = True
        if self._trainer is not None:
            self._trainer.resume()  # a paused trainer must wake up to notice the stop and save
            self._trainer.stop()

    def _work(self) -> None:  # runs in the worker thread
        from workbench.engine.training.trainer import Trainer  # heavy: torch

        trainer = Trainer(self.config, resume=self.resume_from)
        self._trainer = trainer
        if self._pause_requested:
            trainer.pause()
        if self._stop_requested:
            trainer.stop()
        for event in trainer.run():
            self._pump.put(event)

    def _on_finished(self) -> None:
        self._pump.stop()  # deliver the last events (RunFinished) before announcing the end
        self._running = False
        self.ended.emit()
