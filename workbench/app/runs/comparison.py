"""Several runs' validation curves overlaid on one plot (pyqtgraph: built lazily, after the first paint).

Each run has its own colour and marker, and is named (its run name and id) in a legend that sits above the
plots, never on the data; the theme is the app's plots' (dark on white, set by `qt.plots`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from workbench.app.qt import plots  # noqa: F401 - sets the app's plot theme (dark on white) before drawing

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
SYMBOLS = ("o", "s", "t", "d", "star", "p", "h", "t1", "x", "+")
BACKGROUND, FOREGROUND = "w", "k"


def epoch_series(metrics: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of one metric from a run's per-epoch history, skipping epochs without it."""
    rows = [row for row in metrics if row.get("epoch") is not None and row.get(key) is not None]
    return [float(row["epoch"]) for row in rows], [float(row[key]) for row in rows]


def run_style(index: int) -> tuple[str, str]:
    """(colour, marker) of the index-th run compared: distinct for the first len(PALETTE) runs, and the pair
    keeps differing well beyond (the two cycles have different lengths)."""
    return PALETTE[index % len(PALETTE)], SYMBOLS[index % len(SYMBOLS)]


def legend_name(record: Any) -> str:
    name = getattr(record, "name", "") or record.model
    return f"{name} ({record.run_id})"


class RunComparisonPlot(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(BACKGROUND)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        # The legend in a row of its own above both plots: it names the runs without covering a curve.
        self.legend = pg.LegendItem(
            labelTextColor=FOREGROUND, labelTextSize="9pt", brush=pg.mkBrush(BACKGROUND), colCount=2
        )
        self.view.addItem(self.legend, row=0, col=0)
        self.acc_plot = self.view.addPlot(row=1, col=0, title="Validation accuracy")
        self.loss_plot = self.view.addPlot(row=2, col=0, title="Validation loss")
        self.loss_plot.setXLink(self.acc_plot)
        for plot in (self.acc_plot, self.loss_plot):
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("bottom", "epoch")
            plot.getAxis("left").enableAutoSIPrefix(False)  # shares and losses, not "(x0.001)" thousands
        self.acc_plot.setLabel("left", "accuracy")
        self.loss_plot.setLabel("left", "cross-entropy")
        grid = self.view.ci.layout
        grid.setRowStretchFactor(0, 0)
        grid.setRowStretchFactor(1, 1)
        grid.setRowStretchFactor(2, 1)
        self.curves: dict[str, list[Any]] = {}
        self.styles: dict[str, tuple[str, str]] = {}

    def show_runs(self, records: Sequence[Any]) -> None:
        self.acc_plot.clear()
        self.loss_plot.clear()
        self.legend.clear()
        self.curves = {}
        self.styles = {}
        for index, record in enumerate(records):
            color, symbol = run_style(index)
            style = {
                "pen": pg.mkPen(color, width=2),
                "symbol": symbol,
                "symbolPen": pg.mkPen(color),
                "symbolBrush": pg.mkBrush(color),
                "symbolSize": 8,
            }
            acc = self.acc_plot.plot(*epoch_series(record.metrics, "val_acc"), **style)
            loss = self.loss_plot.plot(*epoch_series(record.metrics, "val_loss"), **style)
            self.legend.addItem(acc, legend_name(record))
            self.curves[record.run_id] = [acc, loss]
            self.styles[record.run_id] = (color, symbol)

    def run_ids(self) -> list[str]:
        return list(self.curves)

    def legend_labels(self) -> list[str]:
        """The names the legend shows, in order."""
        return [label.text for _sample, label in self.legend.items]
