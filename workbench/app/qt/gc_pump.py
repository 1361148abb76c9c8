"""Python's cyclic garbage collector, run only from the UI thread's event loop.

CPython collects in whichever thread crosses an allocation threshold. In a Qt app with worker threads
that can be a worker destroying the UI's QObjects, or a collection in the middle of a Qt call while
workers hold Qt-side locks — crashes and deadlocks that show up once in a few hundred runs. The cure
used by pyqtgraph and calibre: turn automatic collection off and collect from a UI-thread timer, at a
quiet moment between events.

A full collection scans every tracked object: with a 70,000-image folder loaded that is half a million of
them and 250-500 ms on a 2-core machine, a visible freeze every minute or so. Survivors of a full collection
are the app's long-lived state, so they are frozen (`gc.freeze`) and later full collections scan only what
is newer. The price: an object alive then that later becomes part of an unreachable cycle is freed only at
exit — Qt objects are freed by their parents and most of our data is acyclic, so that is little.
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

    def freeze_long_lived(self) -> None:
        """Call when a large structure that will live on has just arrived (a scanned 70k-image folder): its
        objects are frozen now, for free, instead of after a first full collection that would walk them all
        (250-500 ms on the UI thread)."""
        gc.freeze()

    def check(self) -> None:
        """Collect the generations whose allocation counts passed their thresholds, as the interpreter would."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                if generation == 2:
                    gc.freeze()
                return
