"""The confusion matrix as a table of coloured cells: rows are true classes, columns predicted ones.

Counts or row-normalized shares (a toggle); the cell colour follows the row-normalized share so a rare class's
mistakes are as visible as a common one's. Clicking a cell emits `cell_chosen(true_index, predicted_index)`.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

CORRECT_RGB = (32, 120, 200)  # the diagonal: blue
WRONG_RGB = (220, 70, 40)  # off the diagonal: red, the cells worth clicking


def cell_color(share: float, on_diagonal: bool) -> QColor:
    """White for 0, full colour for 1 (share of the row)."""
    red, green, blue = CORRECT_RGB if on_diagonal else WRONG_RGB
    share = min(max(share, 0.0), 1.0)
    return QColor(
        round(255 + (red - 255) * share),
        round(255 + (green - 255) * share),
        round(255 + (blue - 255) * share),
    )


HEADER_PADDING = 14  # the header section's margins and sort-indicator-free frame
HEADER_LINE = 9  # characters per header line before wrapping at a space


def header_label(name: str) -> str:
    """A class name wrapped at spaces into lines of about HEADER_LINE characters ("Ankle boot" → "Ankle\nboot")."""
    lines: list[str] = []
    for word in name.split():
        if lines and len(lines[-1]) + 1 + len(word) <= HEADER_LINE:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines) or name


class ConfusionMatrixView(QTableWidget):
    cell_chosen = Signal(int, int)  # true class index, predicted class index

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._counts: list[list[int]] = []
        self._classes: list[str] = []
        self._normalized = False
        self.column_min_width = 0
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setToolTip("Rows: true class · columns: predicted class. Click a cell to see its images.")
        self.cellClicked.connect(self.cell_chosen)

    @property
    def normalized(self) -> bool:
        return self._normalized

    def show_matrix(self, counts: Sequence[Sequence[int]], classes: Sequence[str]) -> None:
        self._counts = [[int(value) for value in row] for row in counts]
        self._classes = list(classes)
        self.setRowCount(len(classes))
        self.setColumnCount(len(classes))
        self.setVerticalHeaderLabels([f"{name} (true)" for name in classes])
        self._set_column_headers()
        self._fill()

    def _set_column_headers(self) -> None:
        """Predicted-class names readable in full: wrapped at spaces onto a few lines, every column at least as
        wide as the longest line (the table scrolls rather than cutting a name), the full name as tooltip."""
        header = self.horizontalHeader()
        metrics = header.fontMetrics()
        widest = 0
        for column, name in enumerate(self._classes):
            label = header_label(name)
            item = QTableWidgetItem(label)
            item.setToolTip(f"predicted {name}")
            self.setHorizontalHeaderItem(column, item)
            widest = max(widest, *(metrics.horizontalAdvance(line) for line in label.split("\n")))
        header.setTextElideMode(Qt.TextElideMode.ElideRight)
        header.setMinimumSectionSize(widest + HEADER_PADDING)
        self.column_min_width = widest + HEADER_PADDING

    def set_normalized(self, normalized: bool) -> None:
        self._normalized = normalized
        self._fill()

    def count(self, true_index: int, predicted_index: int) -> int:
        return self._counts[true_index][predicted_index]

    def cell_text(self, true_index: int, predicted_index: int) -> str:
        item = self.item(true_index, predicted_index)
        return item.text() if item is not None else ""

    def _fill(self) -> None:
        for i, row in enumerate(self._counts):
            total = sum(row)
            for j, value in enumerate(row):
                share = value / total if total else 0.0
                text = f"{share:.2f}" if self._normalized else str(value)
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(QBrush(cell_color(share, i == j)))
                item.setForeground(QBrush(QColor("white" if share > 0.55 else "black")))
                item.setToolTip(
                    f"true {self._classes[i]}, predicted {self._classes[j]}: {value} image(s), "
                    f"{share:.0%} of the row"
                )
                self.setItem(i, j, item)
