"""Run history from the registry: model, dataset, status, best accuracy, date, duration. Open a run (its
curves and metrics; the evaluation, predictions and inspector views follow it), overlay several runs' curves,
clone a run's settings into the training panel, delete a run after confirmation."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.wording import app_message
from workbench.app.qt.workers import Failure, run_in_background
from workbench.app.runs.table import RunsTable, epochs_text, weights_text
from workbench.engine.training.event_text import percent


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

        self.table = RunsTable()
        self.table.name_edited.connect(self._on_name_edited)
        self.table.run_activated.connect(self.open_run)
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

    def _show_runs(self, records: list[Any]) -> None:
        self.records = {record.run_id: record for record in records}
        self.table.show_runs(records, self.has_best)
        self.apply_filter()
        self.runs_listed.emit(len(records))

    def apply_filter(self) -> None:
        self.table.filter_rows(self.filter.text())

    def visible_run_ids(self) -> list[str]:
        return self.table.visible_run_ids()

    # ---- renaming ------------------------------------------------------------------------------
    def _on_name_edited(self, run_id: str, name: str) -> None:
        record = self.records.get(run_id)
        if record is None or name == record.name:
            return
        if not name:  # an emptied name: keep the old one
            self.table.set_name(run_id, record.name)
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
        self.table.set_name(run_id, name, quiet=False)

    def _on_renamed(self, record: Any) -> None:
        self.records[record.run_id] = record
        self.table.set_name(record.run_id, record.name)
        if self.opened is not None and self.opened.run_id == record.run_id:
            self.open_run(record.run_id)
        self.run_renamed.emit(record.run_id, record.name)

    def _rename_failed(self, run_id: str, failure: Failure) -> None:
        if run_id in self.records:
            self.table.set_name(run_id, self.records[run_id].name)
        dialogs.show_error(self, "Could not rename the run", failure.message)

    def run_ids(self) -> list[str]:
        return self.table.run_ids()

    def row_of(self, run_id: str) -> int:
        return self.table.row_of(run_id)

    def selected_run_ids(self) -> list[str]:
        return self.table.selected_run_ids()

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
        from workbench.engine.evaluation.figures import run_test_provenance, validation_provenance

        has_best = self.has_best.get(record.run_id, True)
        e = html.escape  # names, paths and reasons are the user's text, shown as rich text
        lines = [
            f"<b>{e(record.name)}</b> · {record.run_id}",
            f"model <b>{e(record.model)}</b> · status {record.status}"
            + (f" ({e(app_message(record.reason))})" if record.reason else ""),
            f"dataset {e(record.dataset)}",
            f"epochs {epochs_text(record)} · image size {config.get('img_size') or '–'} px · "
            f"weights {e(weights_text(config))} · strategy {config.get('strategy') or '–'}",
            f"best val acc {percent(record.best_val_acc)} ({validation_provenance(record.metrics)})",
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

