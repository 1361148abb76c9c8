"""Several runs' validation curves overlaid on one plot (pyqtgraph: built lazily, after the first paint)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def epoch_series(metrics: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of one metric from a run's per-epoch history, skipping epochs without it."""
    rows = [row for row in metrics if row.get("epoch") is not None and row.get(key) is not None]
    return [float(row["epoch"]) for row in rows], [float(row[key]) for row in rows]


class RunComparisonPlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.acc_plot = self.view.addPlot(row=0, col=0, title="Validation accuracy")
        self.loss_plot = self.view.addPlot(row=1, col=0, title="Validation loss")
        self.loss_plot.setXLink(self.acc_plot)
        for plot in (self.acc_plot, self.loss_plot):
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setLabel("bottom", "epoch")
        self.legend = self.acc_plot.addLegend(offset=(-10, -10))
        self.curves: dict[str, list[Any]] = {}

    def show_runs(self, records: Sequence[Any]) -> None:
        self.acc_plot.clear()
        self.loss_plot.clear()
        self.legend.clear()
        self.curves = {}
        for index, record in enumerate(records):
            pen = pg.mkPen(PALETTE[index % len(PALETTE)], width=2)
            name = f"{record.run_id} ({record.model})"
            acc = self.acc_plot.plot(*epoch_series(record.metrics, "val_acc"), pen=pen, symbol="o", name=name)
            loss = self.loss_plot.plot(*epoch_series(record.metrics, "val_loss"), pen=pen, symbol="o")
            self.curves[record.run_id] = [acc, loss]

    def run_ids(self) -> list[str]:
        return list(self.curves)
