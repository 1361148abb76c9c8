import gc
import weakref

from workbench.app.qt.gc_pump import UiThreadGarbageCollector


class _Cycle:
    def __init__(self):
        self.me = self


def test_garbage_is_collected_by_the_ui_thread_timer_not_automatically(qtbot):
    gc.enable()  # as in a plain process (the app tests' fixture turns it off): the collector must turn it off
    collector = UiThreadGarbageCollector(interval_ms=10)
    try:
        assert not gc.isenabled()
        gc.collect()
        collected: list[bool] = []
        for _ in range(gc.get_threshold()[0] + 10):  # past generation 0's threshold
            item = _Cycle()
            weakref.finalize(item, collected.append, True)
            del item
        assert not collected  # automatic collection is off: the cycles are still there
        qtbot.waitUntil(lambda: bool(collected), timeout=2000)  # the timer collected them
    finally:
        collector.timer.stop()
        gc.enable()


def test_survivors_of_a_full_collection_are_not_scanned_again(qtbot):
    """A loaded 70k-image folder must not make every later full collection walk it again."""
    collector = UiThreadGarbageCollector(interval_ms=10)
    try:
        gc.unfreeze()
        long_lived = [[i] for i in range(50_000)]  # tracked containers, like a dataset's items
        frozen_before = gc.get_freeze_count()
        for _ in range(gc.get_threshold()[2] + 2):  # push generation 2's counter past its threshold
            gc.collect(1)
        qtbot.waitUntil(lambda: gc.get_freeze_count() >= frozen_before + len(long_lived), timeout=2000)
        # garbage made after the freeze is still collected
        collected: list[bool] = []
        for _ in range(gc.get_threshold()[0] + 10):
            item = _Cycle()
            weakref.finalize(item, collected.append, True)
            del item
        qtbot.waitUntil(lambda: bool(collected), timeout=2000)
        assert len(long_lived) == 50_000
    finally:
        collector.timer.stop()
        gc.unfreeze()
        gc.enable()


def test_a_loaded_dataset_is_frozen_without_a_full_collection(qtbot):
    collector = UiThreadGarbageCollector(interval_ms=60_000)  # no timer tick during the test
    try:
        gc.unfreeze()
        dataset = [[i] for i in range(20_000)]  # the items a scan hands over
        collections_before = gc.get_stats()[2]["collections"]
        collector.freeze_long_lived()
        assert gc.get_freeze_count() >= len(dataset)
        assert gc.get_stats()[2]["collections"] == collections_before  # no full collection was needed
    finally:
        collector.timer.stop()
        gc.unfreeze()
        gc.enable()
