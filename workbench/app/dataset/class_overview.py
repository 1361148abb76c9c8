"""The dataset browser's class overview: a table of images per class and split, the class balance chart (built
after the first paint) with its legend, and the engine's warnings about the dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.app.dataset.scan import SPLIT_COLORS, SPLITS, DatasetSummary
from workbench.app.qt.lazy import LazyWidget

if TYPE_CHECKING:
    from workbench.app.dataset.balance_chart import ClassBalanceChart


def _make_balance_chart() -> ClassBalanceChart:
    from workbench.app.dataset.balance_chart import (
        ClassBalanceChart,  # pyqtgraph: imported after the first paint
    )

    return ClassBalanceChart()


def _count_item(value: int) -> QTableWidgetItem:
    item = QTableWidgetItem()
    item.setData(Qt.ItemDataRole.DisplayRole, value)  # numeric, so the column sorts by number
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class ClassOverview(QGroupBox):
    """The "Classes" box; `class_chosen` carries the name of a class the user picks in the table."""

    class_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Classes", parent)
        self.class_table = QTableWidget(0, 5)
        self.class_table.setHorizontalHeaderLabels(["Class", "Train", "Val", "Test", "Total"])
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 5):
            self.class_table.horizontalHeader().setSectionResizeMode(
                column, QHeaderView.ResizeMode.ResizeToContents
            )
        self.class_table.horizontalHeader().setSortIndicator(
            0, Qt.SortOrder.AscendingOrder
        )  # the chart's order
        self.class_table.itemSelectionChanged.connect(self._on_class_row_selected)
        self._balance_chart = LazyWidget(_make_balance_chart)
        self._balance_chart.setMinimumHeight(160)
        self.warning_label = QLabel()
        self.warning_label.setObjectName("warningLabel")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        self.balance_legend = QLabel()
        self.balance_legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.addWidget(self.class_table, 3)
        layout.addWidget(self._balance_chart, 2)
        layout.addWidget(self.balance_legend)
        layout.addWidget(self.warning_label)

    @property
    def balance_chart(self) -> ClassBalanceChart:
        return self._balance_chart.widget()

    def show_counts(self, summary: DatasetSummary) -> None:
        """Fill the table, chart, legend and warnings from `summary.counts` (already up to date)."""
        self.class_table.setSortingEnabled(False)
        self.class_table.setRowCount(len(summary.classes))
        for row, name in enumerate(summary.classes):
            self.class_table.setItem(row, 0, QTableWidgetItem(name))
            per_split = [summary.counts.get(split, {}).get(name, 0) for split in SPLITS]
            for column, value in enumerate([*per_split, sum(per_split)], start=1):
                self.class_table.setItem(row, column, _count_item(value))
        for column, split in enumerate(SPLITS, start=1):
            self.class_table.setColumnHidden(column, split not in summary.present_splits)
        self.class_table.setSortingEnabled(True)
        self.balance_chart.show_counts(summary)
        self.balance_legend.setText(
            "&nbsp;&nbsp;".join(
                f"<span style='color: rgb{SPLIT_COLORS[split]}'>■</span> {split}"
                for split in summary.present_splits
            )
        )
        warnings = list(summary.warnings)  # the engine's: strong imbalance, tiny classes, loose files
        self.warning_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))

    def class_counts(self) -> dict[str, dict[str, int]]:
        """What the class table shows: class -> {split: count}, read back from the table itself."""
        shown: dict[str, dict[str, int]] = {}
        for row in range(self.class_table.rowCount()):
            name = self.class_table.item(row, 0).text()
            shown[name] = {
                split: int(self.class_table.item(row, column).data(Qt.ItemDataRole.DisplayRole))
                for column, split in enumerate(SPLITS, start=1)
                if not self.class_table.isColumnHidden(column)
            }
        return shown

    def _on_class_row_selected(self) -> None:
        rows = self.class_table.selectionModel().selectedRows()
        if rows:
            self.class_chosen.emit(self.class_table.item(rows[0].row(), 0).text())
