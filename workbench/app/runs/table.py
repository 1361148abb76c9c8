"""The run-history table: one row per run, what each cell shows and how it sorts, its columns fitted to the
table's width, a word filter, and name cells that are the only editable ones (a rename is asked for with
`name_edited`; the view does it)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from workbench.app.qt.column_fit import fit_columns
from workbench.app.qt.wording import app_message
from workbench.engine.names import display_name
from workbench.engine.training.event_text import duration, percent

COLUMNS = (
    "run",
    "name",
    "model",
    "dataset",
    "image size",
    "weights",
    "strategy",
    "epochs",
    "status",
    "best val acc",
    "test acc (best.pt)",
    "date",
    "duration",
)
NAME_COLUMN = COLUMNS.index("name")
HEADER_TIPS = {
    "name": "The run's name: double-click (or F2) to rename it",
    "weights": "What training started from: ImageNet weights (pretrained), random ones (scratch), or an "
    "earlier run's",
    "best val acc": "Validation accuracy of best.pt, the model the run keeps (its best epoch), measured during "
    "training on a single view of each image",
    "test acc (best.pt)": "Test accuracy of best.pt, the model the run keeps, on the run's test split: a single "
    "view of each image, or each image averaged with its mirror for runs trained with flips (as `workbench eval` "
    "and Evaluate measure it by default)",
    "epochs": "Epochs done / epochs asked for",
}
RECORD_ROLE = Qt.ItemDataRole.UserRole
# Columns squeezed (their text elided, whole in the tooltip) so that every column fits the table's width at
# once, and the narrowest each may become; the others keep the width of their contents.
ELASTIC = {"run": 100, "name": 130, "dataset": 130}
# Header labels on two lines where one line would be wider than the column's values.
HEADER_LABELS = {"image size": "image\nsize", "best val acc": "best val\nacc", "test acc (best.pt)": "test acc\n(best.pt)"}


def weights_text(config: dict[str, Any]) -> str:
    weights = config.get("weights")
    if weights:
        return f"from {weights}" if len(str(weights)) <= 24 else f"from …{str(weights)[-22:]}"
    return "pretrained" if config.get("pretrained") else "scratch"


def epochs_text(record: Any) -> str:
    asked = record.config.get("epochs")
    return f"{record.epochs_done}/{asked}" if asked else str(record.epochs_done)


def test_acc_text(record: Any, has_best: bool) -> str:
    """The run's test accuracy with the procedure it was measured with (and the checkpoint if not best.pt)."""
    from workbench.engine.evaluation.figures import uses_flip_tta

    if record.test_acc is None:
        return "–"
    how = "mirror-averaged" if uses_flip_tta(record.config) else "single view"
    return f"{percent(record.test_acc)} ({how if has_best else 'last.pt, ' + how})"


class SortItem(QTableWidgetItem):
    """Shows text, sorts by a separate value (dates and percentages sort as numbers)."""

    def __init__(self, text: str, sort_value: Any):
        super().__init__(text)
        self.sort_value = sort_value

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, SortItem):
            return (self.sort_value is None, self.sort_value) < (other.sort_value is None, other.sort_value)
        return super().__lt__(other)


class ElideStart(QStyledItemDelegate):
    """Elides on the left: a squeezed dataset path keeps its end (the folder's own name), a run id its random
    tail (its start is the date, in a column of its own)."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideLeft


def row_cells(record: Any, has_best: bool) -> list[SortItem]:
    """One run's row: text shown, value sorted by, tooltips; only the name cell is editable."""
    from workbench.engine.evaluation.figures import (
        run_test_provenance,
        validation_held_out,
        validation_provenance,
    )

    config = record.config
    held_out = validation_held_out(record.metrics)  # the figure is not the saved model's own
    size = config.get("img_size")
    strategy = config.get("strategy") or ("–" if not config.get("pretrained") and not config.get("weights") else "")
    seconds = record.updated - record.created
    cells = [
        SortItem(record.run_id, record.run_id),
        SortItem(record.name, record.name.lower()),
        SortItem(record.model, record.model),
        SortItem(record.dataset, record.dataset),
        SortItem(f"{size} px" if size else "–", size),
        SortItem(weights_text(config), weights_text(config)),
        SortItem(strategy or "–", strategy),
        SortItem(epochs_text(record), record.epochs_done),
        SortItem(record.status, record.status),
        SortItem(percent(record.best_val_acc) + ("*" if held_out else ""), record.best_val_acc),
        SortItem(test_acc_text(record, has_best), record.test_acc),
        SortItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created)), record.created),
        SortItem(duration(seconds), seconds),
    ]
    cells[0].setData(RECORD_ROLE, record.run_id)
    cells[COLUMNS.index("dataset")].setToolTip("\n".join(map(display_name, record.datasets)) or record.dataset)
    cells[COLUMNS.index("weights")].setToolTip(str(config.get("weights") or weights_text(config)))
    if record.best_val_acc is not None:
        cells[COLUMNS.index("best val acc")].setToolTip(
            ("* " if held_out else "") + f"measured on {validation_provenance(record.metrics)}"
        )
    if record.test_acc is not None:
        cells[COLUMNS.index("test acc (best.pt)")].setToolTip(f"measured with {run_test_provenance(config, has_best)}")
    if record.reason:  # the run cannot be used as listed, or did not finish: say why
        cells[COLUMNS.index("status")].setToolTip(app_message(record.reason))
    for column, item in enumerate(cells):
        if column != NAME_COLUMN:
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    cells[NAME_COLUMN].setToolTip(f"{record.name}\n(double-click or F2 to rename)")
    return cells


class RunsTable(QTableWidget):
    name_edited = Signal(str, str)  # run id, the name typed into its cell (stripped; maybe empty)
    run_activated = Signal(str)  # double-click outside the name column

    def __init__(self, parent: QWidget | None = None):
        super().__init__(0, len(COLUMNS), parent)
        self._filling = False
        self.setHorizontalHeaderLabels([HEADER_LABELS.get(name, name) for name in COLUMNS])
        for column, key in enumerate(COLUMNS):
            if key in HEADER_TIPS:
                self.horizontalHeaderItem(column).setToolTip(HEADER_TIPS[key])
        # Only the name cells are editable (their items carry the flag): double-click, F2, or a click on the
        # selected name; a double-click elsewhere opens the run.
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.itemChanged.connect(self._on_item_changed)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # Widths set by fit_columns (contents, squeezed to the table's width); the user may still drag them.
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self._elide_start = ElideStart(self)
        for name in ("run", "dataset"):  # a run id's tail and a path's end are what tell them apart
            self.setItemDelegateForColumn(COLUMNS.index(name), self._elide_start)
        self.setWordWrap(False)  # one line per run: a squeezed cell is elided, never wrapped and cut
        self.viewport().installEventFilter(self)  # its width is what the columns must fit
        self.setSortingEnabled(True)
        self.cellDoubleClicked.connect(
            lambda row, column: column != NAME_COLUMN and self.run_activated.emit(self.run_at(row))
        )

    def show_runs(self, records: list[Any], has_best: dict[str, bool]) -> None:
        """One row per record, newest first (a run without the has_best entry is taken to have best.pt)."""
        self._filling = True
        self.setSortingEnabled(False)
        self.setRowCount(len(records))
        for row, record in enumerate(records):
            for column, item in enumerate(row_cells(record, has_best.get(record.run_id, True))):
                self.setItem(row, column, item)
        self.setSortingEnabled(True)
        self.sortItems(COLUMNS.index("date"), Qt.SortOrder.DescendingOrder)
        self._filling = False
        self.fit_columns()

    def fit_columns(self) -> None:
        """Every column on screen at once, none cut at the right edge (qt/column_fit.py): the ELASTIC ones
        (run, name, dataset) give up the difference."""
        fit_columns(self, {COLUMNS.index(name): floor for name, floor in ELASTIC.items()})

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.viewport() and event.type() == QEvent.Type.Resize:
            self.fit_columns()  # the window grew or shrank: the columns follow
        return super().eventFilter(watched, event)

    def filter_rows(self, text: str) -> None:
        """Hide the rows that do not contain every word of `text` (any column, any case)."""
        words = text.lower().split()
        for row in range(self.rowCount()):
            cells = " ".join(
                item.text().lower()
                for column in range(self.columnCount())
                if (item := self.item(row, column)) is not None
            )
            self.setRowHidden(row, not all(word in cells for word in words))

    def set_name(self, run_id: str, name: str, *, quiet: bool = True) -> None:
        """Show `name` in the run's name cell; not quiet, it counts as the user's edit (name_edited)."""
        item = self.item(self.row_of(run_id), NAME_COLUMN)
        self._filling = quiet
        item.setText(name)
        self._filling = False

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if not self._filling and item.column() == NAME_COLUMN:
            self.name_edited.emit(self.run_at(item.row()), item.text().strip())

    def run_at(self, row: int) -> str:
        return self.item(row, 0).data(RECORD_ROLE)

    def run_ids(self) -> list[str]:
        return [self.run_at(row) for row in range(self.rowCount())]

    def row_of(self, run_id: str) -> int:
        return self.run_ids().index(run_id)

    def visible_run_ids(self) -> list[str]:
        return [self.run_at(row) for row in range(self.rowCount()) if not self.isRowHidden(row)]

    def selected_run_ids(self) -> list[str]:
        rows = sorted({index.row() for index in self.selectionModel().selectedRows()})
        return [self.run_at(row) for row in rows]
