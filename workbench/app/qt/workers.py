"""Background work for the window: every engine call runs off the UI thread and reports back through signals.

The pieces:
- `BackgroundJob`: the one pattern for work that reports progress, can be cancelled or is superseded by a newer
  request (a dataset scan, a weights download, the LR finder, the inspector's pictures, the zoo's size sweep,
  the model panel's summary of the selection, the Train tab's plan preview). A job is a generator
  function run on a superqt generator worker: it yields progress, is cancelled at its next yield, returns its
  result; a newer start supersedes the running one. `callback_steps` turns an engine call that reports through
  callbacks (`progress`, `should_stop`) into such a generator. Failures reach the user through
  `report_failure`: the app's error dialog, the one an exception escaping a slot also reaches.
- `run_in_background`: a one-shot call with nothing to report, cancel or supersede (a listing, a file operation).
- `EventPump` / `TrainingSession`: a training run's event stream, coalesced to 2 Hz on the UI thread so a fast
  trainer never floods the event loop; pause/stop go to the trainer, which saves a checkpoint on stop.
Engine modules (and so torch) are imported inside the worker functions, never at import time of the window.
"""

from __future__ import annotations

import collections
import functools
import inspect
import threading
import traceback
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QWidget
from superqt.utils import FunctionWorker, GeneratorWorker, create_worker

from workbench.app.qt import dialogs
from workbench.engine.errors import WorkbenchError

T = TypeVar("T")

PUMP_HZ = 2  # curves and progress twice a second: each repaint of the plots holds the GIL ~15 ms
MIN_POOL_THREADS = 8  # training, a scan, summaries, a download... must not queue behind one another
STEP_INTERVAL_S = 0.1  # how often `callback_steps` yields: progress at most 10 times a second, and a cancel
# is noticed within this long
CANCEL_WAIT_S = 10.0  # how long a cancelled callback-style call may take to notice; then it is left to finish


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
    error: BaseException | None = field(default=None, compare=False, repr=False)  # for the error dialog

    @classmethod
    def from_exception(cls, exc: BaseException) -> Failure:
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if isinstance(exc, WorkbenchError):
            return cls(str(exc), details, True, exc)
        return cls(f"{type(exc).__name__}: {exc}", details, False, exc)


def report_failure(parent: QWidget | None, title: str, failure: Failure) -> None:
    """Tell the user about a failed job, in a dialog titled `title` (what failed: "Model summary failed"):
    a WorkbenchError with its message (what to fix); anything else is a bug, shown and logged as an exception
    escaping a slot is (traceback behind "Show Details…") but still named after the job."""
    if failure.is_user_error or failure.error is None:
        dialogs.show_error(parent, title, failure.message, "" if failure.is_user_error else failure.details)
    else:
        error = failure.error
        dialogs.show_exception(type(error), error, error.__traceback__, parent, title=title)


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


class _JobWorker(GeneratorWorker):
    """superqt's generator worker with its loop replaced: superqt's returns a RuntimeError (torch raises those)
    as "the worker was deleted" and then never emits `finished`, and it leaves a cancelled generator open for the
    garbage collector to close in whatever thread it runs. Here every exception reaches `errored`, and the
    generator is closed in its own thread, so a cancelled job's `finally` blocks run there at once."""

    def work(self) -> Any:
        generator = self._gen
        try:
            while not self.abort_requested:
                try:
                    value = next(generator)
                except StopIteration as end:
                    return end.value
                self.yielded.emit(value)
            self.aborted.emit()
            return None
        finally:
            generator.close()


def _single_step(func: Callable[..., T], *args: Any, **kwargs: Any) -> Generator[None, None, T]:
    """A plain function as a job that yields nothing: still cancellable until a thread picks it up, so a
    superseded request that is still queued never runs."""
    yield from ()
    return func(*args, **kwargs)


class BackgroundJob(QObject):
    """One kind of background work for one widget, one run at a time, on a superqt generator worker.

    `start(func, *args)` runs `func(*args)` in the thread pool: a generator function whose yields are its
    progress (each reaches `progressed` on the UI thread; None is a bare chance to cancel and is not
    forwarded) and whose return value reaches `done`; a plain function is run as a job without progress.
    `cancel()` ends the run at its next yield; `start` while a run is going supersedes it the same way. Nothing a
    cancelled or superseded run yields, returns or raises is delivered. A failure reaches `failed` (a Failure)
    and, when the job has an `error_title`, the user through `report_failure`. `ended` follows the newest run
    once it is over, however it ended: `busy` is then False. Nothing is delivered once the owner is deleted.
    """

    progressed = Signal(object)
    done = Signal(object)
    failed = Signal(object)  # Failure
    ended = Signal()

    def __init__(self, owner: QWidget, *, error_title: str | None = None):
        super().__init__(owner)
        self._owner = owner  # parents the error dialogs
        self._error_title = error_title
        self._worker: _JobWorker | None = None

    @property
    def busy(self) -> bool:
        """A run is going, or winding down after `cancel` (its thread has not ended yet)."""
        return self._worker is not None

    def start(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        ensure_pool_capacity()
        if self._worker is not None:
            self._worker.quit()  # superseded: it stops at its next yield, and its end is not announced
        job = func if inspect.isgeneratorfunction(func) else functools.partial(_single_step, func)
        worker = _JobWorker(job, *args, **kwargs)
        self._worker = worker
        # A weak reference: a worker whose signals hold its own strong reference would never be freed.
        run = weakref.ref(worker)
        worker.yielded.connect(_guarded(self, lambda value: self._on_yielded(run(), value)))
        worker.returned.connect(_guarded(self, lambda result: self._on_returned(run(), result)))
        worker.errored.connect(_guarded(self, lambda exc: self._on_errored(run(), exc)))
        worker.finished.connect(_guarded(self, lambda: self._on_finished(run())))
        worker.start()

    def cancel(self) -> None:
        """Stop the run at its next yield; from now on it delivers nothing but `ended`."""
        if self._worker is not None:
            self._worker.quit()

    def _current(self, worker: _JobWorker | None) -> bool:
        return worker is not None and worker is self._worker and not worker.abort_requested

    def _on_yielded(self, worker: _JobWorker | None, value: Any) -> None:
        if value is not None and self._current(worker):
            self.progressed.emit(value)

    def _on_returned(self, worker: _JobWorker | None, result: Any) -> None:
        if self._current(worker):
            self.done.emit(result)

    def _on_errored(self, worker: _JobWorker | None, exc: BaseException) -> None:
        if not self._current(worker):
            return
        failure = Failure.from_exception(exc)
        self.failed.emit(failure)
        if self._error_title is not None and shiboken6.isValid(self._owner):
            report_failure(self._owner, self._error_title, failure)

    def _on_finished(self, worker: _JobWorker | None) -> None:
        if worker is not None and worker is self._worker:
            self._worker = None
            self.ended.emit()


def callback_steps(
    call: Callable[[Callable[[Any], None], Callable[[], bool]], T], interval_s: float = STEP_INTERVAL_S
) -> Generator[Any, None, T]:
    """An engine call that reports through callbacks, `call(report, should_stop)`, as a job's generator.

    The call runs in a helper thread (a generator can only yield from its own frame); this generator yields
    the latest value passed to `report` every `interval_s` (None before the first), so the job can be
    cancelled at any of those yields, and returns what the call returns or raises what it raises. Closed early
    (a cancel), it makes `should_stop()` true and waits up to CANCEL_WAIT_S for the call to notice.
    """
    latest: list[Any] = [None]
    outcome: dict[str, Any] = {}
    stop = threading.Event()

    def report(value: Any) -> None:
        latest[0] = value

    def target() -> None:
        try:
            outcome["value"] = call(report, stop.is_set)
        except BaseException as exc:  # raised again below, in the job's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="workbench-job", daemon=True)
    thread.start()
    try:
        while True:
            thread.join(interval_s)
            if not thread.is_alive():
                break
            yield latest[0]
    finally:
        if thread.is_alive():  # closed early: the job was cancelled
            stop.set()
            thread.join(CANCEL_WAIT_S)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


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
