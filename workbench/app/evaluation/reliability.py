"""Reliability diagram: does "90% sure" mean right 9 times in 10 on the evaluated images?

Images are binned by their top probability (15 equal-width bins); each bin's accuracy is drawn against its
mean confidence, before (plain softmax) and after the run's temperature, with the diagonal a perfectly
calibrated model would follow. The numbers come from the engine's `calibration_report` (eval's JSON).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.app.qt.plots import COLORS

BEFORE, AFTER = "before", "after"


def calibration_text(calibration: dict[str, Any]) -> str:
    """E.g. "Expected calibration error 10.2% → 5.7% with temperature 0.56 (fitted on validation)"."""
    before, after = calibration["ece_before"], calibration["ece_after"]
    if not calibration["fitted"]:
        return (
            f"Expected calibration error {before:.1%} ({calibration['bins']} bins). Not calibrated: "
            f"{calibration['note']}"
        )
    return (
        f"Expected calibration error {before:.1%} before → <b>{after:.1%}</b> after calibration "
        f"(temperature {calibration['temperature']:.2f}, fitted on the validation split; {calibration['bins']} "
        "bins). Probabilities shown in the galleries and the Predict tab are the calibrated ones."
    )


class ReliabilityDiagram(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._widget = pg.PlotWidget(title="Reliability")
        plot = self._widget.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.25)
        plot.setLabel("bottom", "confidence (top probability)")
        plot.setLabel("left", "accuracy")
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)  # shares, never "(x0.001)" thousands
        plot.setXRange(0, 1, padding=0.02)
        plot.setYRange(0, 1, padding=0.02)
        plot.setMouseEnabled(x=False, y=False)
        plot.addLegend(offset=(10, 10), labelTextSize="8pt")
        self._bars = pg.BarGraphItem(x=[], height=[], width=0.0, brush=(*COLORS["smooth"], 60), pen=None)
        plot.addItem(self._bars)
        plot.plot(
            [0, 1], [0, 1], pen=pg.mkPen((120, 120, 120), width=1, style=Qt.PenStyle.DashLine),
            name="perfectly calibrated",
        )  # fmt: skip
        self._curves = {
            BEFORE: plot.plot(
                pen=pg.mkPen(COLORS["val"], width=2), symbol="o", symbolSize=7, symbolBrush=COLORS["val"],
                name="before (softmax)",
            ),
            AFTER: plot.plot(
                pen=pg.mkPen(COLORS["smooth"], width=2), symbol="s", symbolSize=7, symbolBrush=COLORS["smooth"],
                name="after (calibrated)",
            ),
        }  # fmt: skip
        self.summary = QLabel("Evaluate a run to see how far its confidence can be trusted.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self._widget, 1)

    def show_calibration(self, calibration: dict[str, Any] | None) -> None:
        if not calibration:
            self.clear()
            return
        self.summary.setText(calibration_text(calibration))
        after = calibration["reliability_after"]
        width = 1 / max(len(after), 1)
        filled = [b for b in after if b["count"]]
        self._bars.setOpts(
            x=[(b["lower"] + b["upper"]) / 2 for b in filled], height=[b["accuracy"] for b in filled], width=width * 0.9
        )
        for name, key in ((BEFORE, "reliability_before"), (AFTER, "reliability_after")):
            points = [b for b in calibration[key] if b["count"]]
            self._curves[name].setData([b["confidence"] for b in points], [b["accuracy"] for b in points])

    def clear(self) -> None:
        self.summary.setText("Evaluate a run to see how far its confidence can be trusted.")
        self._bars.setOpts(x=[], height=[])
        for curve in self._curves.values():
            curve.setData([], [])

    def points(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(confidence, accuracy) as drawn for "before" or "after" (for tests)."""
        x, y = self._curves[name].getData()
        empty = np.empty(0)
        return (empty, empty) if x is None else (np.asarray(x), np.asarray(y))
