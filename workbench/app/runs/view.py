"""Run history from the registry: model, dataset, status, best accuracy, date, duration. Open a run (its
curves and metrics; the evaluation, predictions and inspector views follow it), overlay several runs' curves,
clone a run's settings into the training panel, delete a run after confirmation."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.workers import Failure, run_in_background
from workbench.engine.names import display_name
from workbench.engine.training.event_text import duration, percent

COLUMNS = ("run", "model", "dataset", "status", "best val acc", "test acc", "date", "duration")
RECORD_ROLE = Qt.ItemDataRole.UserRole


def list_runs_and_warnings() -> tuple[list[Any], list[str]]:  # worker thread
    """The runs and what the registry had to say while reading them (a rebuilt registry, a damaged row)."""
    from workbench.engine.runs import RunRegistry

    registry = RunRegistry()
    records = registry.list_runs()
    return records, list(registry.warnings)


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


class RunsView(QWidget):
    runs_listed = Signal(int)
    run_opened = Signal(object)  # RunRecord
    evaluate_requested = Signal(str)  # run id
    inspect_requested = Signal(str)
    clone_requested = Signal(object)  # RunRecord whose config the training panel should take
    run_deleted = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.records: dict[str, Any] = {}
        self.opened: Any = None

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.cellDoubleClicked.connect(lambda row, _column: self.open_run(self._run_at(row)))

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
            button.clicked.connect(slot)
            buttons.addWidget(button)
            self.buttons[key] = button
        buttons.addStretch(1)

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

    def _show_listing(self, listing: tuple[list[Any], list[str]]) -> None:
        records, warnings = listing
        self.warning.setText("\n".join(f"⚠ {text}" for text in warnings))
        self.warning.setVisible(bool(warnings))
        self._show_runs(records)

    def _show_runs(self, records: list[Any]) -> None:
        self.records = {record.run_id: record for record in records}
        table = self.table
        table.setSortingEnabled(False)
        table.setRowCount(len(records))
        for row, record in enumerate(records):
            cells = (
                SortItem(record.run_id, record.run_id),
                SortItem(record.model, record.model),
                SortItem(record.dataset, record.dataset),
                SortItem(record.status, record.status),
                SortItem(percent(record.best_val_acc), record.best_val_acc),
                SortItem(percent(record.test_acc), record.test_acc),
                SortItem(time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created)), record.created),
                SortItem(duration(record.updated - record.created), record.updated - record.created),
            )
            cells[0].setData(RECORD_ROLE, record.run_id)
            cells[2].setToolTip("\n".join(map(display_name, record.datasets)) or record.dataset)
            if record.status in ("missing", "damaged"):  # the run cannot be used as listed: say why
                cells[3].setToolTip(record.reason)
            for column, item in enumerate(cells):
                table.setItem(row, column, item)
        table.setSortingEnabled(True)
        table.sortItems(COLUMNS.index("date"), Qt.SortOrder.DescendingOrder)
        self.runs_listed.emit(len(records))

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
        lines = [
            f"<b>{record.run_id}</b> · {record.name}",
            f"model <b>{record.model}</b> · status {record.status}"
            + (f" ({record.reason})" if record.reason else ""),
            f"dataset {record.dataset}",
            f"epochs {record.epochs_done} · best val acc {percent(record.best_val_acc)} · "
            f"test acc {percent(record.test_acc)}",
            f"last epoch: train loss {last.get('train_loss', float('nan')):.4f}, "
            f"val loss {last.get('val_loss') or float('nan'):.4f}"
            if last
            else "no epoch finished",
            f"optimizer {config.get('optimizer')} · lr {config.get('lr')} · batch {config.get('batch_size')} · "
            f"schedule {config.get('schedule')}",
            f"checkpoint {record.checkpoint or '–'}",
        ]
        self.details.setText("<br>".join(lines))
        self.run_opened.emit(record)

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
