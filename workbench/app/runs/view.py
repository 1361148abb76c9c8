"""Run history from the registry: model, dataset, status, best accuracy, date, duration. Open a run (its
curves and metrics; the evaluation, predictions and inspector views follow it), overlay several runs' curves,
clone a run's settings into the training panel, delete a run after confirmation."""

from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.app.qt.column_fit import fit_columns
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.wording import app_message
from workbench.app.qt.workers import Failure, run_in_background
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


def list_runs_and_warnings() -> tuple[list[Any], list[str], dict[str, bool]]:  # worker thread
    """The runs, what the registry had to say while reading them (a rebuilt registry, a damaged row), and
    which runs have a best.pt (the checkpoint their test accuracy judged; else last.pt)."""
    import os

    from workbench.engine.runs import RunRegistry

    registry = RunRegistry()
    records = registry.list_runs()
    has_best = {
        record.run_id: os.path.isfile(os.path.join(record.run_dir, "checkpoints", "best.pt")) for record in records
    }
    return records, list(registry.warnings), has_best


def rename_run(run_id: str, name: str) -> Any:  # worker thread
    from workbench.engine.runs import RunRegistry

    return RunRegistry().rename(run_id, name)


def validation_warning(run_dir: str, best_val_acc: float | None) -> str | None:  # worker thread
    from workbench.engine.evaluation.uncertainty import run_split_counts, small_validation_warning

    return small_validation_warning(run_split_counts(run_dir), best_val_acc)


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


def delete_run(run_id: str) -> str:  # worker thread
    from workbench.engine.runs import RunRegistry

    RunRegistry().delete(run_id)
    return run_id


def _make_training_plots() -> QWidget:
    from workbench.app.qt.plots import TrainingPlots

    return TrainingPlots()


def _make_comparison_plot() -> QWidget:
    from workbench.app.runs.comparison import RunComparisonPlot

    return RunComparisonPlot()


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


class RunsView(QWidget):
    runs_listed = Signal(int)
    run_opened = Signal(object)  # RunRecord
    evaluate_requested = Signal(str)  # run id
    inspect_requested = Signal(str)
    clone_requested = Signal(object)  # RunRecord whose config the training panel should take
    run_deleted = Signal(str)
    run_renamed = Signal(str, str)  # run id, new name

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.records: dict[str, Any] = {}
        self.has_best: dict[str, bool] = {}
        self.opened: Any = None
        self.validation_warning: str | None = None
        self._filling = False

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([HEADER_LABELS.get(name, name) for name in COLUMNS])
        for column, key in enumerate(COLUMNS):
            if key in HEADER_TIPS:
                self.table.horizontalHeaderItem(column).setToolTip(HEADER_TIPS[key])
        # Only the name cells are editable (their items carry the flag): double-click, F2, or a click on the
        # selected name; a double-click elsewhere opens the run.
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.SelectedClicked
        )
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # Widths set by fit_columns (contents, squeezed to the table's width); the user may still drag them.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self._elide_start = ElideStart(self.table)
        for name in ("run", "dataset"):  # a run id's tail and a path's end are what tell them apart
            self.table.setItemDelegateForColumn(COLUMNS.index(name), self._elide_start)
        self.table.setWordWrap(False)  # one line per run: a squeezed cell is elided, never wrapped and cut
        self.table.viewport().installEventFilter(self)  # its width is what the columns must fit
        self.table.setSortingEnabled(True)
        self.table.cellDoubleClicked.connect(
            lambda row, column: column != NAME_COLUMN and self.open_run(self._run_at(row))
        )
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter runs (name, model, dataset, status…)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setToolTip("Show only the runs whose row contains every word typed here")
        self.filter.textChanged.connect(lambda _text: self.apply_filter())

        buttons = QHBoxLayout()
        self.buttons: dict[str, QPushButton] = {}
        for key, text, tip, slot in (
            ("refresh", "Refresh", "Re-read the run history", self.refresh),
            (
                "open",
                "Open",
                "Show the run's curves and metrics (double-click does too)",
                self._open_selected,
            ),
            ("compare", "Compare", "Overlay the selected runs' validation curves", self.compare_selected),
            ("evaluate", "Evaluate", "Confusion matrix and top losses of the run", self._evaluate_selected),
            ("inspect", "Inspect", "Feature maps, filters and Grad-CAM of the run", self._inspect_selected),
            (
                "clone",
                "Clone settings",
                "Put the run's settings into the training panel",
                self._clone_selected,
            ),
            ("delete", "Delete…", "Delete the run and its files", self.delete_selected),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _checked=False, slot=slot: slot())  # never `checked` as an argument
            buttons.addWidget(button)
            self.buttons[key] = button
        buttons.addWidget(self.filter, 1)

        # What the registry repaired or could not: shown above the table until the next refresh.
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.warning.setStyleSheet("color: #a15c00;")
        self.warning.hide()

        self.details = QLabel("Double-click a run to open it.")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self._plots = LazyWidget(_make_training_plots)
        self._comparison = LazyWidget(_make_comparison_plot)
        self.charts = QTabWidget()
        self.charts.addTab(self._plots, "Curves")
        self.charts.addTab(self._comparison, "Compare")
        lower = QSplitter()
        lower.addWidget(self.details)
        lower.addWidget(self.charts)
        lower.setSizes([320, 900])
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(lower)
        splitter.setSizes([300, 520])
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.warning)
        layout.addWidget(splitter, 1)

    @property
    def plots(self) -> Any:
        return self._plots.widget()

    @property
    def comparison(self) -> Any:
        return self._comparison.widget()

    # ---- listing -------------------------------------------------------------------------------
    def refresh(self) -> None:
        run_in_background(self, list_runs_and_warnings, on_done=self._show_listing, on_error=self._failed)

    def _failed(self, failure: Failure) -> None:
        dialogs.show_error(
            self, "Run history", failure.message, "" if failure.is_user_error else failure.details
        )

    def _show_listing(self, listing: tuple[Any, ...]) -> None:
        records, warnings = listing[0], listing[1]
        self.has_best = listing[2] if len(listing) > 2 else {}
        self.warning.setText("\n".join(f"⚠ {text}" for text in warnings))
        self.warning.setVisible(bool(warnings))
        self._show_runs(records)

    def _cells(self, record: Any) -> list[SortItem]:
        from workbench.engine.evaluation.figures import run_test_provenance

        config = record.config
        size = config.get("img_size")
        strategy = config.get("strategy") or ("–" if not config.get("pretrained") and not config.get("weights") else "")
        has_best = self.has_best.get(record.run_id, True)
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
            SortItem(percent(record.best_val_acc), record.best_val_acc),
            SortItem(test_acc_text(record, has_best), record.test_acc),
            SortItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created)), record.created),
            SortItem(duration(seconds), seconds),
        ]
        cells[0].setData(RECORD_ROLE, record.run_id)
        cells[COLUMNS.index("dataset")].setToolTip("\n".join(map(display_name, record.datasets)) or record.dataset)
        cells[COLUMNS.index("weights")].setToolTip(str(config.get("weights") or weights_text(config)))
        if record.test_acc is not None:
            cells[COLUMNS.index("test acc (best.pt)")].setToolTip(
                f"measured with {run_test_provenance(config, has_best)}"
            )
        if record.reason:  # the run cannot be used as listed, or did not finish: say why
            cells[COLUMNS.index("status")].setToolTip(app_message(record.reason))
        for column, item in enumerate(cells):
            if column != NAME_COLUMN:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        cells[NAME_COLUMN].setToolTip(f"{record.name}\n(double-click or F2 to rename)")
        return cells

    def _show_runs(self, records: list[Any]) -> None:
        self.records = {record.run_id: record for record in records}
        table = self.table
        self._filling = True
        table.setSortingEnabled(False)
        table.setRowCount(len(records))
        for row, record in enumerate(records):
            for column, item in enumerate(self._cells(record)):
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
        table.sortItems(COLUMNS.index("date"), Qt.SortOrder.DescendingOrder)
        self._filling = False
        self.apply_filter()
        self.fit_columns()
        self.runs_listed.emit(len(records))

    def fit_columns(self) -> None:
        """Every column on screen at once, none cut at the right edge (qt/column_fit.py): the ELASTIC ones
        (run, name, dataset) give up the difference."""
        fit_columns(self.table, {COLUMNS.index(name): floor for name, floor in ELASTIC.items()})

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self.fit_columns()  # the window grew or shrank: the columns follow
        return super().eventFilter(watched, event)

    def apply_filter(self) -> None:
        """Hide the rows that do not contain every word of the filter box (any column, any case)."""
        words = self.filter.text().lower().split()
        for row in range(self.table.rowCount()):
            text = " ".join(
                item.text().lower()
                for column in range(self.table.columnCount())
                if (item := self.table.item(row, column)) is not None
            )
            self.table.setRowHidden(row, not all(word in text for word in words))

    def visible_run_ids(self) -> list[str]:
        return [self._run_at(row) for row in range(self.table.rowCount()) if not self.table.isRowHidden(row)]

    # ---- renaming ------------------------------------------------------------------------------
    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != NAME_COLUMN:
            return
        run_id = self._run_at(item.row())
        record = self.records.get(run_id)
        name = item.text().strip()
        if record is None or name == record.name:
            return
        if not name:  # an emptied name: keep the old one
            self._set_name_cell(run_id, record.name)
            return
        run_in_background(
            self,
            rename_run,
            run_id,
            name,
            on_done=self._on_renamed,
            on_error=lambda failure: self._rename_failed(run_id, failure),
        )

    def rename(self, run_id: str, name: str) -> None:
        """Rename a run as editing its name cell does."""
        self._set_name_cell(run_id, name, quiet=False)

    def _set_name_cell(self, run_id: str, name: str, *, quiet: bool = True) -> None:
        item = self.table.item(self.row_of(run_id), NAME_COLUMN)
        self._filling = quiet
        item.setText(name)
        self._filling = False

    def _on_renamed(self, record: Any) -> None:
        self.records[record.run_id] = record
        self._set_name_cell(record.run_id, record.name)
        if self.opened is not None and self.opened.run_id == record.run_id:
            self.open_run(record.run_id)
        self.run_renamed.emit(record.run_id, record.name)

    def _rename_failed(self, run_id: str, failure: Failure) -> None:
        if run_id in self.records:
            self._set_name_cell(run_id, self.records[run_id].name)
        dialogs.show_error(self, "Could not rename the run", failure.message)

    def run_ids(self) -> list[str]:
        return [self._run_at(row) for row in range(self.table.rowCount())]

    def row_of(self, run_id: str) -> int:
        return self.run_ids().index(run_id)

    def _run_at(self, row: int) -> str:
        return self.table.item(row, 0).data(RECORD_ROLE)

    def selected_run_ids(self) -> list[str]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self._run_at(row) for row in rows]

    def _one_selected(self) -> str | None:
        selected = self.selected_run_ids()
        if not selected:
            dialogs.show_error(self, "No run selected", "Select a run in the table first.")
            return None
        return selected[0]

    # ---- actions -------------------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        record = self.records[run_id]
        self.opened = record
        self.plots.load_history(record.metrics)
        self.charts.setCurrentIndex(0)
        last = record.metrics[-1] if record.metrics else {}
        config = record.config
        from workbench.engine.evaluation.figures import run_test_provenance

        has_best = self.has_best.get(record.run_id, True)
        e = html.escape  # names, paths and reasons are the user's text, shown as rich text
        lines = [
            f"<b>{e(record.name)}</b> · {record.run_id}",
            f"model <b>{e(record.model)}</b> · status {record.status}"
            + (f" ({e(app_message(record.reason))})" if record.reason else ""),
            f"dataset {e(record.dataset)}",
            f"epochs {epochs_text(record)} · image size {config.get('img_size') or '–'} px · "
            f"weights {e(weights_text(config))} · strategy {config.get('strategy') or '–'}",
            f"best val acc {percent(record.best_val_acc)} (best.pt, single view, during training)",
            f"test acc {percent(record.test_acc)}"
            + (f" (measured with {run_test_provenance(config, has_best)})" if record.test_acc is not None else ""),
            f"last epoch: train loss {last.get('train_loss', float('nan')):.4f}, "
            f"val loss {last.get('val_loss') or float('nan'):.4f}"
            if last
            else "no epoch finished",
            f"optimizer {config.get('optimizer')} · lr {config.get('lr')} · batch {config.get('batch_size')} · "
            f"schedule {config.get('schedule')}",
            f"checkpoint {e(record.checkpoint or '–')}",
        ]
        self.details.setText("<br>".join(lines))
        self.run_opened.emit(record)
        run_in_background(
            self,
            validation_warning,
            record.run_dir,
            record.best_val_acc,
            on_done=lambda warning, run_id=record.run_id: self._show_validation_warning(run_id, warning),
        )

    def _show_validation_warning(self, run_id: str, warning: str | None) -> None:
        """Called out beside the accuracy: the validation split was too small to pick the best epoch."""
        self.validation_warning = warning
        if warning and self.opened is not None and self.opened.run_id == run_id:
            self.details.setText(
                f"{self.details.text()}<br><span style='color:#a15c00'>⚠ {warning}</span>"
            )

    def _open_selected(self) -> None:
        run_id = self._one_selected()
        if run_id:
            self.open_run(run_id)

    def compare(self, run_ids: list[str]) -> None:
        self.comparison.show_runs([self.records[run_id] for run_id in run_ids])
        self.charts.setCurrentIndex(1)

    def compare_selected(self) -> None:
        selected = self.selected_run_ids()
        if not selected:
            dialogs.show_error(self, "No runs selected", "Select the runs to compare (Ctrl+click).")
            return
        self.compare(selected)

    def _evaluate_selected(self) -> None:
        run_id = self._one_selected()
        if run_id:
            self.evaluate_requested.emit(run_id)

    def _inspect_selected(self) -> None:
        run_id = self._one_selected()
        if run_id:
            self.inspect_requested.emit(run_id)

    def _clone_selected(self) -> None:
        run_id = self._one_selected()
        if run_id:
            self.clone_requested.emit(self.records[run_id])

    def delete_selected(self) -> None:
        run_id = self._one_selected()
        if run_id is None:
            return
        record = self.records[run_id]
        if record.status == "running":
            dialogs.show_error(self, "Run in progress", f"Run {run_id} is still training; stop it first.")
            return
        if not dialogs.confirm(
            self,
            "Delete run",
            f"Delete run {run_id} ({record.model}) and all its files (checkpoints, exports)?",
        ):
            return
        run_in_background(self, delete_run, run_id, on_done=self._on_deleted, on_error=self._failed)

    def _on_deleted(self, run_id: str) -> None:
        self.run_deleted.emit(run_id)
        self.refresh()

