"""Python's cyclic garbage collector, run only from the UI thread's event loop.

CPython collects in whichever thread crosses an allocation threshold. In a Qt app with worker threads
that can be a worker destroying the UI's QObjects, or a collection in the middle of a Qt call while
workers hold Qt-side locks — crashes and deadlocks that show up once in a few hundred runs. The cure
used by pyqtgraph and calibre: turn automatic collection off and collect from a UI-thread timer, at a
quiet moment between events.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class UiThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS):
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds, as the interpreter would."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                return
