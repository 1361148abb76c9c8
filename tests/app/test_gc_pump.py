import gc
import weakref

from workbench.app.gc_pump import UiThreadGarbageCollector


class _Cycle:
    def __init__(self):
        self.me = self


def test_garbage_is_collected_by_the_ui_thread_timer_not_automatically(qtbot):
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
