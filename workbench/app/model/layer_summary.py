"""The Keras-style summary of the selected model: a title, its description, one table row a layer and totals."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.app.model.zoo_table import human_count

LAYER_COLUMNS = (
    ("Layer", "Module name"),
    ("Type", "Module type"),
    ("Output shape", "Output channels × height × width for one image"),
    ("Params", "Parameters (weights and biases)"),
    ("MACs", "Multiply-accumulates for one image (FLOPs = 2 × MACs)"),
    ("RF", "Receptive field: side of the input window one output value sees, in pixels"),
    ("Stride", "Cumulative stride: input pixels between neighbouring outputs"),
)


class LayerSummaryView(QWidget):
    """Shows an engine ModelSummary; the panel decides which model and when (the summary is computed elsewhere)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Select a model to see its layers")
        self.title.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.title.setWordWrap(True)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.table = QTableWidget(0, len(LAYER_COLUMNS))
        self.table.setHorizontalHeaderLabels([name for name, _tip in LAYER_COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, (_name, tip) in enumerate(LAYER_COLUMNS):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        self._summary: Any = None
        self._classes = 0
        self._split: tuple[int, int, str] | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.description)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.totals)

    def show_model(self, name: str, spec: Any) -> None:
        self.title.setText(f"{name} — {spec.family}, {spec.year}")
        self.description.setText(spec.description)

    def show_summary(self, summary: Any, classes: int) -> None:
        self.table.setRowCount(len(summary.layers))
        for row, layer in enumerate(summary.layers):
            values = [
                layer.name,
                layer.type,
                " × ".join(map(str, layer.output_shape)),
                f"{layer.params:,}" if layer.params else "",
                f"{layer.macs:,}" if layer.macs else "",
                str(layer.receptive_field or ""),
                str(layer.stride or ""),
            ]
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        self._summary, self._classes = summary, classes
        self._show_totals()

    def show_split(self, split: tuple[int, int, str] | None) -> None:
        """Trainable and frozen parameters under the strategy training will use, with its description
        (None: not known yet). The summary alone cannot say: it sees every parameter as trainable."""
        self._split = split
        self._show_totals()

    def _show_totals(self) -> None:
        summary = self._summary
        if summary is None:
            return
        if self._split is None:
            training = "trainable and frozen: working out…"
        else:
            trainable, frozen, how = self._split
            training = (
                f"<b>{trainable:,}</b> trainable, <b>{frozen:,}</b> frozen" if frozen else "all trainable"
            ) + f" — {html.escape(how)}"
        shape = "×".join(map(str, summary.input_shape))
        self.totals.setText(
            f"<b>{summary.total_params:,}</b> parameters ({training}) · "
            f"<b>{human_count(summary.macs)}</b> MACs = {human_count(summary.flops)} FLOPs per image · "
            f"input {shape} · {self._classes} classes"
        )

    def show_failure(self, message: str) -> None:
        self._summary = None
        self.table.setRowCount(0)
        self.totals.setText(f"⚠ {message}")

    def layer_names(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]
