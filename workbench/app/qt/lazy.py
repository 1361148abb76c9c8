"""Widgets built after the window is on screen, so their heavy imports (pyqtgraph: ~0.4 s) do not delay it.

A `LazyWidget` stands in the layout; its real widget is built by the first `widget()` call, which the main
window makes for all of them just after the first paint (or earlier, if code needs the widget sooner).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from PySide6.QtWidgets import QVBoxLayout, QWidget

W = TypeVar("W", bound=QWidget)


class LazyWidget(QWidget, Generic[W]):
    def __init__(self, factory: Callable[[], W], parent: QWidget | None = None):
        super().__init__(parent)
        self._factory = factory
        self._widget: W | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)

    @property
    def is_built(self) -> bool:
        return self._widget is not None

    def widget(self) -> W:
        if self._widget is None:
            self._widget = self._factory()
            self.layout().addWidget(self._widget)
        return self._widget


def build_all(root: QWidget) -> int:
    """Build every lazy widget under `root`; returns how many were built now."""
    pending = [lazy for lazy in root.findChildren(LazyWidget) if not lazy.is_built]
    for lazy in pending:
        lazy.widget()
    return len(pending)
