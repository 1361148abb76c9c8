"""A combo box of the runs in the registry, newest first; shared by the evaluation, predictions, inspector and
export views. The registry is read in a worker (SQLite on a slow disk must not freeze the window)."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QToolButton, QWidget

from workbench.app.qt.workers import run_in_background

RECORD_ROLE = Qt.ItemDataRole.UserRole


def list_runs() -> list[Any]:  # worker thread
    from workbench.engine.runs import RunRegistry

    return RunRegistry().list_runs()


def run_label(record: Any) -> str:
    """The run as people tell runs apart: its name (by default model, dataset folder and time), what it
    scored, and its status when it did not finish; the id, dataset path and date are in `run_tooltip`."""
    accuracy = f"val {record.best_val_acc:.1%}" if record.best_val_acc is not None else "no validation figure"
    status = "" if record.status == "finished" else f" · {record.status}"
    model = "" if record.model in record.name else f" · {record.model}"  # a default name says it already
    return f"{record.name}{model} · {accuracy}{status}"


def run_tooltip(record: Any) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
    accuracy = f"{record.best_val_acc:.1%}" if record.best_val_acc is not None else "–"
    return (
        f"{record.name}\nrun {record.run_id} · {record.status} · {when}\nmodel {record.model}\n"
        f"dataset {record.dataset}\nbest validation accuracy {accuracy} (best.pt, single view, during training)"
    )


class RunPicker(QWidget):
    run_chosen = Signal(str)  # run id
    runs_listed = Signal(int)  # number of runs

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setMinimumContentsLength(16)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setToolTip("The training run whose model this view uses")
        self.combo.activated.connect(lambda _index: self._emit_current())
        self.combo.currentIndexChanged.connect(lambda _index: self._show_tooltip())
        refresh = QToolButton()
        refresh.setText("↻")
        refresh.setToolTip("Re-read the run history")
        refresh.clicked.connect(lambda: self.refresh())  # not `checked` as the run to select
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(refresh)
        self._wanted: str | None = None

    def refresh(self, select: str | None = None) -> None:
        self._wanted = select or self.current_run_id()
        run_in_background(self, list_runs, on_done=self._show_runs)

    def _show_runs(self, records: list[Any]) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        for record in records:
            self.combo.addItem(run_label(record), record)
            self.combo.setItemData(self.combo.count() - 1, run_tooltip(record), Qt.ItemDataRole.ToolTipRole)
        self.combo.blockSignals(False)
        if self._wanted:
            self.select_run(self._wanted, emit=False)
        self._show_tooltip()  # the index may not have changed (signals were blocked while listing)
        self.runs_listed.emit(len(records))

    def _show_tooltip(self) -> None:
        """The chosen run's id, dataset, date and what its figure measures, on hover."""
        tip = self.combo.itemData(self.combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
        self.combo.setToolTip(tip or "The training run whose model this view uses")

    def select_run(self, run_id: str, *, emit: bool = True) -> bool:
        for index in range(self.combo.count()):
            if self.combo.itemData(index, RECORD_ROLE).run_id == run_id:
                self.combo.setCurrentIndex(index)
                if emit:
                    self._emit_current()
                return True
        self._wanted = run_id  # not listed yet (a run that just started): pick it once it is
        return False

    def current_record(self) -> Any | None:
        return self.combo.currentData(RECORD_ROLE)

    def current_run_id(self) -> str | None:
        record = self.current_record()
        return record.run_id if record is not None else None

    def _emit_current(self) -> None:
        run_id = self.current_run_id()
        if run_id:
            self.run_chosen.emit(run_id)
