"""A gallery of evaluated images: thumbnail, true class, predicted class and its probability.

Shows `ImageOutcome`s (engine/evaluation/interpretation.py) for a confusion-matrix cell or the top losses.
Thumbnails are read from the files on the UI thread: the galleries show a few dozen small images at most
(`MAX_SHOWN`), which is quicker than a round trip through a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from workbench.app.qt.qimages import file_thumbnail

THUMB_SIDE = 84
MAX_SHOWN = 200
OUTCOME_ROLE = Qt.ItemDataRole.UserRole


def outcome_caption(outcome: Any) -> str:
    """True class, → predicted class, then its probability and the loss the gallery is ordered by (highest
    first), one per line so no line wraps into the next: the number the order follows is under each image."""
    return f"{outcome.true_class}\n→ {outcome.predicted_class}\n{outcome.probability:.0%} · loss {outcome.loss:.2f}"


class OutcomeGallery(QListWidget):
    outcome_activated = Signal(object)  # ImageOutcome, on double-click or Enter

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        self.setGridSize(QSize(THUMB_SIDE + 40, THUMB_SIDE + 60))  # three caption lines
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.itemActivated.connect(lambda item: self.outcome_activated.emit(item.data(OUTCOME_ROLE)))

    def show_outcomes(self, outcomes: Sequence[Any]) -> None:
        self.clear()
        for outcome in list(outcomes)[:MAX_SHOWN]:
            item = QListWidgetItem(QIcon(file_thumbnail(outcome.path, THUMB_SIDE)), outcome_caption(outcome))
            item.setData(OUTCOME_ROLE, outcome)
            item.setToolTip(
                f"{outcome.path}\ntrue: {outcome.true_class} ({outcome.true_probability:.1%})\n"
                f"predicted: {outcome.predicted_class} ({outcome.probability:.1%})\nloss: {outcome.loss:.3f}"
            )
            self.addItem(item)

    def outcomes(self) -> list[Any]:
        return [self.item(row).data(OUTCOME_ROLE) for row in range(self.count())]

    def selected_outcome(self) -> Any | None:
        item = self.currentItem()
        return item.data(OUTCOME_ROLE) if item is not None else None

    def remove_path(self, path: str) -> None:
        """Drop an image that left the dataset (excluded or relabeled)."""
        for row in reversed(range(self.count())):
            if self.item(row).data(OUTCOME_ROLE).path == path:
                self.takeItem(row)
