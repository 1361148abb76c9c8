"""Live training curves (pyqtgraph): loss per step raw and smoothed, validation loss/accuracy per epoch, lr.

All x axes are in epochs (step / steps-per-epoch) and linked, so per-step and per-epoch curves line up.
Arrays grow by doubling and curves redraw once per coalesced batch, clipped to the view and downsampled,
so a long run stays cheap to draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem, QSizePolicy, QVBoxLayout, QWidget

SMOOTHING_MAX = 0.98  # exponential moving average of the step loss, debiased as in fastai's recorder
SMOOTHING_SPAN_EPOCHS = 0.25  # ...averaging over about a quarter of an epoch's reported steps


def smoothing_for(steps_per_epoch: int) -> float:
    """EMA factor for this many step reports per epoch: short epochs need a shorter memory, or the smoothed
    curve lags epochs behind the raw one."""
    span = max(2.0, SMOOTHING_SPAN_EPOCHS * steps_per_epoch)
    return min(SMOOTHING_MAX, 1 - 1 / span)


pg.setConfigOptions(antialias=True, background="w", foreground="k")  # the app's plots: dark on white

COLORS = {
    "raw": (150, 170, 200),
    "smooth": (31, 119, 180),
    "val": (214, 39, 40),
    "train_acc": (31, 119, 180),
    "val_acc": (214, 39, 40),
    "lr": (44, 160, 44),
}


class GrowingSeries:
    """x/y float arrays that grow by doubling, so appending a point is amortised O(1)."""

    def __init__(self) -> None:
        self._x = np.empty(256)
        self._y = np.empty(256)
        self.size = 0

    def extend(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        need = self.size + len(xs)
        if need > len(self._x):
            capacity = max(need, 2 * len(self._x))
            self._x = np.resize(self._x, capacity)
            self._y = np.resize(self._y, capacity)
        self._x[self.size : need] = xs
        self._y[self.size : need] = ys
        self.size = need

    def clear(self) -> None:
        self.size = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.size]


LEFT_AXIS_WIDTH = 64  # px: the axis label and ticks such as 0.0003


def _plot(layout: pg.GraphicsLayoutWidget, row: int, title: str, y_label: str, legend: bool) -> pg.PlotItem:
    """A plot in rows 2·row (its title, and its legend in one line beside it) and 2·row + 1: a legend never
    sits on the data, wherever the curves go (a loss that rises, an accuracy that falls)."""
    header = layout.addLayout(row=2 * row, col=0)
    header.setContentsMargins(0, 0, 0, 0)
    header.addLabel(f"<b>{title}</b>", size="10pt", col=0, justify="left")
    plot = layout.addPlot(row=2 * row + 1, col=0)
    if legend:
        plot.legend = pg.LegendItem(colCount=3, labelTextSize="8pt", verSpacing=-4)  # plot(name=…) adds here
        plot.legend.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # as wide as its names
        header.addItem(plot.legend, row=0, col=1)
    header.layout.setColumnStretchFactor(0, 1)
    grid = layout.ci.layout
    grid.setRowStretchFactor(2 * row, 0)
    grid.setRowStretchFactor(2 * row + 1, 1)
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setLabel("left", y_label)
    plot.setLabel("bottom", "epoch")
    for side in ("left", "bottom"):
        # Losses, shares and rates have no unit to prefix: pyqtgraph would label 0.5–0.9 as 500–900
        # "(x0.001)", and the longer label left its old end on screen when the prefix went away.
        plot.getAxis(side).enableAutoSIPrefix(False)
    # One width for every left axis: the x axes are linked, and a wider tick text ("0.0030" against "0.8")
    # would otherwise start one plot's epochs further right than the others'.
    plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
    plot.setClipToView(True)
    plot.setDownsampling(auto=True, mode="peak")
    for side in ("left", "bottom"):
        # Axes are re-rendered (text and all) whenever a curve next to them repaints: ~3 ms each, six per
        # repaint, on the UI thread and holding the GIL the trainer needs. Cached as pixmaps they are only
        # redrawn when their ticks change.
        plot.getAxis(side).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return plot


class TrainingPlots(QWidget):
    """Three stacked plots fed by `add_events`; `series()` exposes the numbers for tests and exports."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._layout = pg.GraphicsLayoutWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._layout)

        self.loss_plot = _plot(self._layout, 0, "Loss", "cross-entropy", legend=True)
        self.acc_plot = _plot(self._layout, 1, "Accuracy", "accuracy", legend=True)
        self.lr_plot = _plot(self._layout, 2, "Learning rate", "lr", legend=False)
        # Room above 100% and below 0% for a marker's whole symbol (7 px): at 2% a train accuracy of 100%
        # was cut in half at the top edge.
        self.acc_plot.setYRange(0, 1, padding=0.06)
        self.acc_plot.enableAutoRange(y=False)
        for plot in (self.acc_plot, self.lr_plot):
            plot.setXLink(self.loss_plot)

        self._series = {
            name: GrowingSeries()
            for name in ("train_loss", "smooth_loss", "val_loss", "train_acc", "val_acc", "lr")
        }
        pen = pg.mkPen
        self._curves = {
            # the per-step curve has the most points and is the noisiest: antialiasing it costs the most
            # paint time (GIL time taken from the trainer) and shows the least
            "train_loss": self.loss_plot.plot(
                pen=pen(COLORS["raw"], width=1), name="train (per step)", antialias=False
            ),
            "smooth_loss": self.loss_plot.plot(pen=pen(COLORS["smooth"], width=2), name="train (smoothed)"),
            "val_loss": self.loss_plot.plot(
                pen=pen(COLORS["val"], width=2),
                symbol="o",
                symbolSize=7,
                symbolBrush=COLORS["val"],
                name="validation",
            ),
            "train_acc": self.acc_plot.plot(
                pen=pen(COLORS["train_acc"], width=2), symbol="t", symbolSize=7, name="train"
            ),
            "val_acc": self.acc_plot.plot(
                pen=pen(COLORS["val_acc"], width=2),
                symbol="o",
                symbolSize=7,
                symbolBrush=COLORS["val_acc"],
                name="validation",
            ),
            "lr": self.lr_plot.plot(pen=pen(COLORS["lr"], width=2), name="learning rate"),
        }
        self._ema = 0.0
        self._ema_steps = 0
        self._smoothing = SMOOTHING_MAX

    # ---- feeding -------------------------------------------------------------------------------
    def clear(self) -> None:
        for series in self._series.values():
            series.clear()
        self._ema = 0.0
        self._ema_steps = 0
        self._redraw(self._series)
        self._name_steps_in_legend(True)

    def _name_steps_in_legend(self, shown: bool) -> None:
        """A saved history has no per-step losses: its legend must not name a curve that is not drawn."""
        legend, curve = self.loss_plot.legend, self._curves["train_loss"]
        listed = any(sample.item is curve for sample, _label in legend.items)
        if shown and not listed:
            legend.addItem(curve, "train (per step)")
        elif not shown and listed:
            legend.removeItem(curve)

    def start_run(self, first_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        """Frame the x axis on the whole run, so the curves grow into it rather than rescaling every batch."""
        self._smoothing = smoothing_for(min(steps_per_epoch, 100))  # the engine reports ≤ 100 steps per epoch
        self.loss_plot.setXRange(first_epoch, max(epochs, first_epoch + 1), padding=0.02)

    def add_events(self, events: Iterable[Any]) -> None:
        """Take engine events (StepEnded, EpochEnded; others ignored) and redraw the touched curves once."""
        steps: dict[str, tuple[list[float], list[float]]] = {}

        def push(name: str, x: float, y: float | None) -> None:
            if y is None:
                return
            xs, ys = steps.setdefault(name, ([], []))
            xs.append(x)
            ys.append(y)

        for event in events:
            kind = type(event).__name__
            if kind == "StepEnded":
                per_epoch = max(1, event.steps_per_epoch)
                in_epoch = event.step_in_epoch or ((event.step - 1) % per_epoch + 1)
                x = event.epoch - 1 + in_epoch / per_epoch
                self._ema_steps += 1
                beta = self._smoothing
                self._ema = beta * self._ema + (1 - beta) * event.loss
                push("train_loss", x, event.loss)
                push("smooth_loss", x, self._ema / (1 - beta**self._ema_steps))
                push("lr", x, event.lr)
            elif kind == "EpochEnded":
                push("val_loss", event.epoch, event.val_loss)
                push("train_acc", event.epoch, event.train_acc)
                push("val_acc", event.epoch, event.val_acc)
        for name, (xs, ys) in steps.items():
            self._series[name].extend(xs, ys)
        self._redraw({name: self._series[name] for name in steps})

    def load_history(self, metrics: list[dict[str, Any]]) -> None:
        """Show a finished run's per-epoch history (RunRecord.metrics: EpochEnded dicts): each epoch's mean
        training loss as the smoothed curve (the steps are not saved) and the learning rate at its end. Like
        the live view, the training loss starts with fine-tuning: stage 1's head, fitted on frozen features,
        has a training loss of another kind (near 0), and drawn first it read as a loss that jumped up."""
        self.clear()
        self._name_steps_in_legend(False)
        for row in metrics:
            epoch = row.get("epoch")
            if epoch is None:
                continue
            if row.get("stage"):  # stage 1: its validation and accuracy points only, as the live view shows
                row = {key: value for key, value in row.items() if key not in ("train_loss", "lr")}
            for name, key in (("val_loss", "val_loss"), ("train_acc", "train_acc"), ("val_acc", "val_acc")):
                if row.get(key) is not None:
                    self._series[name].extend([epoch], [row[key]])
            if row.get("train_loss") is not None:
                self._series["smooth_loss"].extend([epoch], [row["train_loss"]])
            if row.get("lr"):
                self._series["lr"].extend([epoch], [row["lr"]])
        self._redraw(self._series)

    def _redraw(self, series: dict[str, GrowingSeries]) -> None:
        for name, data in series.items():
            self._curves[name].setData(data.x, data.y)

    # ---- reading -------------------------------------------------------------------------------
    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) as drawn: train_loss, smooth_loss, val_loss, train_acc, val_acc or lr."""
        x, y = self._curves[name].getData()
        empty = np.empty(0)
        return (empty, empty) if x is None else (np.asarray(x), np.asarray(y))


class LRFinderPlot(QWidget):
    """Loss against learning rate on a log axis, with the suggested rate marked."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._widget = pg.PlotWidget(title="Learning-rate finder")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._widget)
        plot = self._widget.getPlotItem()
        plot.setLogMode(x=True, y=False)
        plot.setLabel("bottom", "learning rate")
        plot.setLabel("left", "loss")
        plot.getAxis("left").enableAutoSIPrefix(False)  # a loss, not "(x0.001)" thousands
        plot.showGrid(x=True, y=True, alpha=0.25)
        self._curve = plot.plot(pen=pg.mkPen(COLORS["smooth"], width=2))
        self._marker = pg.InfiniteLine(
            angle=90, pen=pg.mkPen(COLORS["val"], width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
        )
        self._marker.setVisible(False)
        plot.addItem(self._marker)

    def show_result(self, lrs: Sequence[float], losses: Sequence[float], suggestion: float | None) -> None:
        lrs_arr = np.asarray(lrs, dtype=float)
        losses_arr = np.asarray(losses, dtype=float)
        keep = np.isfinite(losses_arr) & (lrs_arr > 0)
        self._curve.setData(lrs_arr[keep], losses_arr[keep])
        if suggestion:
            self._marker.setPos(np.log10(suggestion))  # log-mode axes place items in log10 units
            self._marker.setVisible(True)
        else:
            self._marker.setVisible(False)

    def points(self) -> int:
        x, _ = self._curve.getData()
        return 0 if x is None else len(x)
