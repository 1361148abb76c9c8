"""pyqtgraph charts of the dataset browser (imported after the first paint, see `lazy`)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from workbench.app.dataset.scan import SPLIT_COLORS, DatasetSummary

pg.setConfigOptions(antialias=True, background="w", foreground="k")  # as the training plots


EMPTY_TEXT = "Images per class and split\nshow here once a dataset is open"


class ClassBalanceChart(pg.PlotWidget):
    """Horizontal stacked bars, one per class: train, val and test images."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.setMinimumHeight(160)
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setLabel("bottom", "images")
        plot.getViewBox().invertY(True)  # first class on top, like the table
        self._bars: list[pg.BarGraphItem] = []
        # Until a dataset is open: a line saying what will be here, not empty axes from 0 to 1.
        self._placeholder = pg.TextItem(EMPTY_TEXT, color=(110, 110, 110), anchor=(0.5, 0.5))
        self._placeholder.setPos(0.5, 0.5)
        plot.addItem(self._placeholder)
        self._show_axes(False)

    def _show_axes(self, shown: bool) -> None:
        plot = self.getPlotItem()
        for side in ("left", "bottom"):
            plot.showAxis(side, shown)
        self._placeholder.setVisible(not shown)
        if not shown:
            plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)

    def placeholder_shown(self) -> bool:
        return self._placeholder.isVisible()

    def show_counts(self, summary: DatasetSummary) -> None:
        plot = self.getPlotItem()
        for bar in self._bars:
            plot.removeItem(bar)
        self._bars.clear()
        positions = list(range(len(summary.classes)))
        left = [0.0] * len(positions)
        for split in summary.present_splits:
            widths = [summary.counts[split].get(c, 0) for c in summary.classes]
            bar = pg.BarGraphItem(
                x0=left, y=positions, height=0.7, width=widths, brush=SPLIT_COLORS[split], pen=None
            )
            plot.addItem(bar)
            self._bars.append(bar)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        self._show_axes(bool(positions))
        if not positions:
            return
        plot.getAxis("left").setTicks([[(i, name) for i, name in enumerate(summary.classes)]])
        plot.setYRange(-0.6, max(len(positions), 1) - 0.4, padding=0)
        plot.setXRange(0, max(left, default=1) * 1.05 or 1, padding=0)

    def bar_count(self) -> int:
        return len(self._bars)
