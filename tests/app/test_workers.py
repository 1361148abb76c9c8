"""Worker plumbing: events from another thread arrive on the UI thread, in order, coalesced into few batches."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject, QThread

from workbench.app.qt.workers import PUMP_HZ, EventPump, Failure, run_in_background
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
