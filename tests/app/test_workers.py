"""Worker plumbing: events from another thread arrive on the UI thread, in order, coalesced into few batches;
background jobs report progress, can be cancelled or superseded, and tell the user when they fail."""

from __future__ import annotations

import threading
import time

import shiboken6
from PySide6.QtCore import QObject, QThread
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from workbench.app.qt import dialogs
from workbench.app.qt.workers import (
    PUMP_HZ,
    BackgroundJob,
    EventPump,
    Failure,
    callback_steps,
    run_in_background,
)
from workbench.engine.errors import DatasetError


def test_event_pump_coalesces_a_fast_producer_into_few_ordered_batches(qtbot):
    """A thin stand-in producer (a plain thread putting integers), not the engine: this tests only the pump."""
    pump = EventPump()
    batches: list[list[int]] = []
    ui_thread = QThread.currentThread()
    seen_threads: list[bool] = []

    def collect(batch: list[int]) -> None:
        seen_threads.append(QThread.currentThread() is ui_thread)
        batches.append(batch)

    pump.batch.connect(collect)
    pump.start()
    producer = threading.Thread(target=lambda: [pump.put(i) for i in range(20_000)])
    producer.start()
    producer.join()
    qtbot.waitUntil(lambda: sum(len(b) for b in batches) == 20_000, timeout=5000)
    pump.stop()

    delivered = [i for batch in batches for i in batch]
    assert delivered == list(range(20_000))
    assert len(batches) < 100  # 20,000 events, yet only a handful of deliveries
    assert all(seen_threads)
    assert pump.interval_ms == 1000 // PUMP_HZ


def test_run_in_background_reports_results_and_user_errors(qtbot):
    owner = QObject()
    results: list[object] = []
    failures: list[Failure] = []
    finished: list[str] = []

    def fail() -> None:
        raise DatasetError("/nowhere: no such folder")

    # Outside an event loop superqt starts workers at once, so wait on the outcome, not on a signal.
    run_in_background(owner, lambda: 6 * 7, on_done=results.append, on_finished=lambda: finished.append("a"))
    run_in_background(owner, fail, on_error=failures.append)
    qtbot.waitUntil(lambda: bool(finished and failures), timeout=5000)
    assert results == [42]
    assert finished == ["a"]
    assert failures[0].is_user_error
    assert failures[0].message == "/nowhere: no such folder"
    assert "DatasetError" in failures[0].details


def test_results_for_a_deleted_owner_are_dropped(qtbot):
    owner = QObject()
    results: list[object] = []
    release = threading.Event()
    finished: list[bool] = []
    worker = run_in_background(owner, lambda: release.wait(5) and "late", on_done=results.append)
    worker.finished.connect(lambda: finished.append(True))
    shiboken6.delete(owner)  # the panel that asked is gone before the result arrives
    release.set()
    qtbot.waitUntil(lambda: bool(finished), timeout=5000)
    assert results == []


# ---- BackgroundJob: the one pattern for cancellable jobs with progress ------------------------------------


class JobRecorder:
    """What a BackgroundJob delivered, in order, and on which thread."""

    def __init__(self, job: BackgroundJob):
        self.seen: list[tuple[str, object]] = []
        self.on_ui_thread: list[bool] = []
        job.progressed.connect(lambda value: self._add("progress", value))
        job.done.connect(lambda value: self._add("done", value))
        job.failed.connect(lambda failure: self._add("failed", failure))
        job.ended.connect(lambda: self._add("ended", None))

    def _add(self, what: str, value: object) -> None:
        self.on_ui_thread.append(QThread.currentThread() is QApplication.instance().thread())
        self.seen.append((what, value))

    def kinds(self) -> list[str]:
        return [what for what, _ in self.seen]

    @property
    def ended(self) -> bool:
        return "ended" in self.kinds()


def test_a_job_runs_off_the_ui_thread_and_delivers_progress_then_its_result_on_it(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    job = BackgroundJob(owner)
    recorder = JobRecorder(job)
    job_threads: list[bool] = []

    def count(to: int):
        job_threads.append(threading.current_thread() is threading.main_thread())
        yield from range(1, to + 1)
        return "counted"

    job.start(count, 3)
    assert job.busy
    qtbot.waitUntil(lambda: recorder.ended, timeout=5000)
    assert recorder.seen == [("progress", 1), ("progress", 2), ("progress", 3), ("done", "counted"), ("ended", None)]
    assert job_threads == [False]  # the job's body ran in a worker thread
    assert all(recorder.on_ui_thread)
    assert not job.busy


def test_cancel_stops_a_job_at_its_next_yield_closes_it_there_and_delivers_nothing_more(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    job = BackgroundJob(owner)
    recorder = JobRecorder(job)
    closed_in: list[bool] = []
    steps: list[int] = []

    def forever():
        try:
            while True:
                steps.append(1)
                time.sleep(0.005)
                yield len(steps)
        finally:  # runs when the worker closes the cancelled generator, in the worker's thread
            closed_in.append(threading.current_thread() is threading.main_thread())

    job.start(forever)
    qtbot.waitUntil(lambda: "progress" in recorder.kinds(), timeout=5000)
    job.cancel()
    assert job.busy  # winding down until its thread is done
    qtbot.waitUntil(lambda: recorder.ended, timeout=5000)
    assert closed_in == [False]
    taken = len(steps)
    delivered_before = len(recorder.seen)
    qtbot.wait(100)
    assert len(steps) == taken  # it really stopped
    assert len(recorder.seen) == delivered_before
    assert "done" not in recorder.kinds() and "failed" not in recorder.kinds()
    assert recorder.kinds()[-1] == "ended" and not job.busy


def test_a_newer_start_supersedes_the_running_job(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    job = BackgroundJob(owner)
    recorder = JobRecorder(job)
    release = threading.Event()
    first_started, first_closed = threading.Event(), threading.Event()

    def slow(name: str):
        first_started.set()
        try:
            while not release.is_set():
                time.sleep(0.005)
                yield None  # a chance to be cancelled, nothing to report
            return name
        finally:
            first_closed.set()

    job.start(slow, "first")
    assert first_started.wait(5)
    job.start(lambda: "second")  # a plain function: a job without progress
    qtbot.waitUntil(lambda: recorder.ended, timeout=5000)
    assert first_closed.wait(5)  # the first stopped at its next yield, without being released
    release.set()
    qtbot.wait(100)
    assert recorder.seen == [("done", "second"), ("ended", None)]


def failing_job(qtbot, error: Exception):
    """Run a job that yields once and raises `error`: (what `failed` delivered, the error dialog shown)."""
    owner = QWidget()
    qtbot.addWidget(owner)
    job = BackgroundJob(owner, error_title="Doing it failed")
    recorder = JobRecorder(job)

    def fails():
        yield 1
        raise error

    job.start(fails)
    qtbot.waitUntil(lambda: recorder.ended, timeout=5000)
    return dict(recorder.seen)["failed"], owner.findChild(QMessageBox, dialogs.ERROR_DIALOG_NAME)


def test_a_user_error_is_shown_with_the_jobs_title_and_the_job_ends(qtbot):
    failure, box = failing_job(qtbot, DatasetError("/nowhere: no such folder"))
    assert failure.is_user_error and failure.message == "/nowhere: no such folder"
    assert box is not None and box.windowTitle() == "Doing it failed"
    assert box.text() == "/nowhere: no such folder" and not box.detailedText()  # what to fix, no traceback


def test_a_bug_in_a_job_reaches_the_apps_unexpected_error_dialog_even_a_runtime_error(qtbot, caplog):
    """superqt's own generator loop takes a RuntimeError (torch's usual error) for a deleted worker: it would
    report nothing and never end. The dialog is named after the job (#14), not "Unexpected error"."""
    failure, box = failing_job(qtbot, RuntimeError("shape mismatch in the worker"))
    assert not failure.is_user_error
    assert box is not None and box.windowTitle() == "Doing it failed" != dialogs.UNEXPECTED_TITLE
    assert "Something went wrong: RuntimeError: shape mismatch in the worker" in box.text()
    assert "Traceback" in box.detailedText()
    assert "shape mismatch in the worker" in caplog.text  # logged, as any unexpected error


def test_a_job_of_a_deleted_owner_delivers_nothing(qtbot):
    owner = QWidget()
    job = BackgroundJob(owner, error_title="Doing it failed")
    delivered: list[object] = []
    job.done.connect(delivered.append)
    release = threading.Event()
    finished = threading.Event()

    def late():
        try:
            release.wait(5)
            yield None
            return "late"
        finally:
            finished.set()

    job.start(late)
    shiboken6.delete(owner)
    release.set()
    assert finished.wait(5)
    qtbot.wait(100)
    assert delivered == []


def test_callback_steps_turns_a_callback_style_call_into_progress_a_result_and_a_cancel(qtbot):
    owner = QWidget()
    qtbot.addWidget(owner)
    job = BackgroundJob(owner)
    recorder = JobRecorder(job)

    def engine_like(progress, should_stop, n: int) -> str:  # the engine's style: callbacks, not yields
        for i in range(1, n + 1):
            if should_stop():
                raise DatasetError("stopped")
            progress(i)
            time.sleep(0.002)
        return f"{n} done"

    job.start(callback_steps, lambda report, should_stop: engine_like(report, should_stop, 100))
    qtbot.waitUntil(lambda: recorder.ended, timeout=10_000)
    assert recorder.kinds()[-2:] == ["done", "ended"] and dict(recorder.seen)["done"] == "100 done"
    progress = [value for what, value in recorder.seen if what == "progress"]
    assert progress and progress == sorted(progress) and len(progress) < 100  # throttled, in order

    stopped = threading.Event()

    def until_stopped(report, should_stop) -> str:
        while not should_stop():
            report("working")
            time.sleep(0.002)
        stopped.set()
        raise DatasetError("stopped")  # what a cancelled engine call does: never shown

    job.start(callback_steps, until_stopped)
    qtbot.waitUntil(lambda: recorder.seen[-1] == ("progress", "working"), timeout=5000)
    job.cancel()
    qtbot.waitUntil(lambda: recorder.kinds().count("ended") == 2, timeout=5000)
    assert stopped.is_set()  # the cancel reached the call through should_stop
    assert "failed" not in recorder.kinds()
