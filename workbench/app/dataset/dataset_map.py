"""The dataset browser's Map page: every image as a point of the engine's 2-D projection of its embedding,
coloured by class or by suspicion. Drag pans and the wheel zooms (pyqtgraph); hovering a point shows its
thumbnail; Shift+drag (or drag in Select mode) draws a box whose images the grid then shows, where the
curation buttons act on them.

Drawing: all points are one item (`PointCloud`) that splats them into one image at screen resolution with
numpy on every paint, so a pan step costs one vectorised pass however many points there are. pyqtgraph's
ScatterPlotItem, one per colour, took 2 s to first draw 70,000 points and 82 ms per pan step here
(benchmarks/dataset_map.py), a visible stall. Hover finds the nearest point with one numpy pass too.
"""

from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QModelIndex, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.app.dataset.thumbnails import ThumbnailModel
from workbench.engine.names import display_name
from workbench.engine.review.kinds import SUSPICION

if TYPE_CHECKING:
    from workbench.engine.review.analysis import DatasetAnalysis

# Colour-blind-safe-ish categorical colours (Tableau 10); more classes cycle through hues.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")  # fmt: skip
SUSPICION_COLOURS = {"none": "#c8c8c8", "label": "#d62728", "duplicate": "#ff7f0e", "outlier": "#7b3fb5"}
SUSPICION_NAMES = {"none": "not suspect", "label": "label error?", "duplicate": "duplicate/leak",
                   "outlier": "outlier"}  # fmt: skip
POINT_PX = 5
HOVER_PX = 8  # a point within this many pixels of the cursor is "under" it
MAX_LEGEND = 20  # beyond this many classes a legend hides the map


def class_colour(index: int, classes: int) -> QColor:
    if classes <= len(PALETTE):
        return QColor(PALETTE[index])
    return pg.intColor(index, hues=classes)


def _disc(radius: int) -> list[tuple[int, int]]:
    return [(dx, dy) for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1)
            if dx * dx + dy * dy <= radius * radius + radius]  # fmt: skip


class PointCloud(pg.GraphicsObject):
    """Points in view coordinates, each a small disc of its colour, drawn in layers (later layers on top)."""

    def __init__(self, radius: int = POINT_PX // 2) -> None:
        super().__init__()
        self._layers: list[tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]] = []  # (xy, argb, disc)
        self._bounds = QRectF()
        self._radius = radius
        # The last drawn picture and what it was drawn for: a repaint that changes neither (the hover card
        # moving, a tooltip) copies it instead of redrawing every point.
        self._drawn: tuple[tuple, QImage, np.ndarray] | None = None

    def set_layers(self, layers: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        """[(xy (n, 2), colours (n,) uint32 ARGB, radius px)], drawn in this order."""
        self.prepareGeometryChange()
        self._layers = [(np.asarray(xy, np.float64), colours.astype(np.uint32), _disc(radius))
                        for xy, colours, radius in layers if len(xy)]  # fmt: skip
        everything = [xy for xy, _c, _d in self._layers]
        if everything:
            points = np.concatenate(everything)
            (x0, y0), (x1, y1) = points.min(0), points.max(0)
            self._bounds = QRectF(x0, y0, max(x1 - x0, 1e-9), max(y1 - y0, 1e-9))
        else:
            self._bounds = QRectF()
        self._drawn = None
        self.update()

    def count(self) -> int:
        return sum(len(xy) for xy, _c, _d in self._layers)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return self._bounds

    def paint(self, painter: QPainter, *_args: object) -> None:
        device = painter.device()
        if device is None or not self._layers:
            return
        t = painter.transform()  # view → device pixels (pyqtgraph never rotates it)
        margin = 4
        width, height = device.width() + 2 * margin, device.height() + 2 * margin
        key = (t.m11(), t.m12(), t.m21(), t.m22(), t.dx(), t.dy(), width, height)
        if self._drawn is not None and self._drawn[0] == key:
            self._blit(painter, self._drawn[1], margin)
            return
        image = np.zeros((height, width), np.uint32)  # transparent
        flat = image.reshape(-1)
        for xy, colours, disc in self._layers:
            x = t.m11() * xy[:, 0] + t.m21() * xy[:, 1] + t.dx() + margin
            y = t.m12() * xy[:, 0] + t.m22() * xy[:, 1] + t.dy() + margin
            # centres at least `margin` (> any disc's radius) inside the buffer: no disc pixel falls off it
            inside = (x >= margin) & (x < width - margin) & (y >= margin) & (y < height - margin)
            at = y[inside].astype(np.intp) * width + x[inside].astype(np.intp)
            c = colours[inside]
            for dx, dy in disc:
                flat[at + (dy * width + dx)] = c
        picture = QImage(image.data, width, height, 4 * width, QImage.Format.Format_ARGB32_Premultiplied)
        self._drawn = (key, picture, image)  # the QImage reads `image`'s memory: keep both alive together
        self._blit(painter, picture, margin)

    @staticmethod
    def _blit(painter: QPainter, picture: QImage, margin: int) -> None:
        painter.save()
        painter.resetTransform()
        painter.drawImage(-margin, -margin, picture)
        painter.restore()


def argb(colour: QColor) -> int:
    return 0xFF000000 | (colour.red() << 16) | (colour.green() << 8) | colour.blue()


class _SelectingViewBox(pg.ViewBox):
    """A ViewBox where Shift+drag, or any left drag in select mode, draws a selection box instead of panning."""

    def __init__(self, on_box: object) -> None:
        super().__init__()
        self.select_mode = False
        self._on_box = on_box
        self._band = QGraphicsRectItem()
        self._band.setPen(pg.mkPen("#333333", width=1, style=Qt.PenStyle.DashLine))
        self._band.setBrush(QBrush(QColor(60, 120, 220, 40)))
        self._band.setZValue(1e9)
        self._band.hide()
        self.addItem(self._band, ignoreBounds=True)

    def mouseDragEvent(self, ev: object, axis: int | None = None) -> None:  # noqa: N802 - pyqtgraph's name
        selecting = self.select_mode or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if ev.button() != Qt.MouseButton.LeftButton or not selecting:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start, end = self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())
        box = QRectF(start, end).normalized()
        if ev.isFinish():
            self._band.hide()
            self._on_box(box.left(), box.top(), box.right(), box.bottom())
        else:
            self._band.setRect(box)
            self._band.show()


class DatasetMapView(QWidget):
    """`show_analysis(analysis)` draws it; `selection_made(paths)` after a box selection."""

    selection_made = Signal(list)  # paths of the images in the box

    def __init__(self, thumbnails: ThumbnailModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._thumbnails = thumbnails  # its pixmap cache and loader serve the hover thumbnail
        self.analysis: DatasetAnalysis | None = None
        self._group_names: list[str] = []
        self._hovered = -1
        self.selected_rows: np.ndarray = np.zeros(0, np.int64)

        self.colour_by = QComboBox()
        self.colour_by.addItems(["class", "suspicion"])
        self.colour_by.setToolTip("Colour each image by its class, or by what the review suspects of it")
        self.colour_by.currentTextChanged.connect(lambda _text: self._draw())
        self.select_button = QPushButton("Select")
        self.select_button.setCheckable(True)
        self.select_button.setToolTip(
            "Drag a box to show its images in the grid (Shift+drag does the same without this button)"
        )
        self.select_button.toggled.connect(self._set_select_mode)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Zoom out to the whole map")
        self.fit_button.clicked.connect(self.fit)
        self.info = QLabel("")
        self.info.setObjectName("hintLabel")
        self.info.setWordWrap(True)
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Colour by"))
        tools.addWidget(self.colour_by)
        tools.addWidget(self.select_button)
        tools.addWidget(self.fit_button)
        tools.addWidget(self.info, 1)

        self.view_box = _SelectingViewBox(self.select_box)
        self.plot = pg.PlotWidget(viewBox=self.view_box, background="w")
        self.plot.setAspectLocked(True)
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.plot.setMenuEnabled(False)
        # the legend beside the plot, not over it: over it, it hides the points at that edge
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.legend.setMinimumWidth(150)
        self.cloud = PointCloud()
        self.plot.addItem(self.cloud)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)

        # the hover card: thumbnail and name, floating over the plot
        self.hover_card = QFrame(self.plot)
        self.hover_card.setObjectName("mapHoverCard")
        self.hover_card.setStyleSheet(
            "#mapHoverCard { background: rgba(255,255,255,240); border: 1px solid #888; } QLabel { color: #111; }"
        )
        self.hover_card.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hover_card.hide()
        self._hover_image = QLabel(self.hover_card)
        self._hover_text = QLabel(self.hover_card)
        card = QVBoxLayout(self.hover_card)
        card.setContentsMargins(4, 4, 4, 4)
        card.addWidget(self._hover_image, 0, Qt.AlignmentFlag.AlignHCenter)
        card.addWidget(self._hover_text)
        thumbnails.dataChanged.connect(self._on_thumbnail_changed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addWidget(self.legend)
        layout.addLayout(body, 1)

    # ---- content -------------------------------------------------------------------------------
    def show_analysis(self, analysis: DatasetAnalysis | None) -> None:
        self.analysis = analysis
        self.selected_rows = np.zeros(0, np.int64)
        self._hide_hover()
        self._draw()
        self.fit()
        if analysis is not None:
            n = len(analysis.paths)
            method = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}.get(analysis.method, analysis.method)
            self.info.setText(
                f"{n:,} images · {method} of the pretrained network's embeddings "
                f"({analysis.map_seconds:.1f} s) · drag to pan, wheel to zoom, hover for the image, "
                "Shift+drag to select"
            )

    def point_count(self) -> int:
        return self.cloud.count() - len(self.selected_rows)  # the selection's rims are a layer of their own

    def group_names(self) -> list[str]:
        return list(self._group_names)

    def _draw(self) -> None:
        self._group_names = []
        self.legend.setText("")
        analysis = self.analysis
        if analysis is None or not len(analysis.paths):
            self.cloud.set_layers([])
            return
        xy = analysis.xy
        if self.colour_by.currentText() == "suspicion":
            codes, names = analysis.suspicion.astype(np.int64), [SUSPICION_NAMES[k] for k in SUSPICION]
            colours = [QColor(SUSPICION_COLOURS[k]) for k in SUSPICION]
        else:
            codes, names = analysis.labels, [display_name(c) for c in analysis.classes]
            colours = [class_colour(i, len(names)) for i in range(len(names))]
        entries = []
        suspicion = self.colour_by.currentText() == "suspicion"
        palette = np.array([argb(c) for c in colours], np.uint32)
        # selected points first, one pixel larger and dark: a rim around each once the points are drawn over it
        layers = [
            (
                xy[self.selected_rows],
                np.full(len(self.selected_rows), 0xFF111111, np.uint32),
                POINT_PX // 2 + 1,
            )
        ]
        if suspicion:  # the grey crowd below, the suspects (larger) on top
            crowd = codes == 0
            layers += [(xy[crowd], palette[codes[crowd]], POINT_PX // 2),
                       (xy[~crowd], palette[codes[~crowd]], POINT_PX // 2 + 1)]  # fmt: skip
        else:  # a fixed shuffled order: no class is always painted over the others
            order = np.random.default_rng(0).permutation(len(codes))
            layers.append((xy[order], palette[codes[order]], POINT_PX // 2))
        self.cloud.set_layers(layers)
        for code, (name, colour) in enumerate(zip(names, colours, strict=True)):
            count = int((codes == code).sum())
            if not count:
                continue
            self._group_names.append(f"{name} ({count:,})")
            entries.append(
                f'<span style="color:{colour.name()}; font-size:16px">●</span> {html.escape(name)} ({count:,})'
            )
        shown = entries[:MAX_LEGEND]
        if len(entries) > MAX_LEGEND:
            shown.append(f"… and {len(entries) - MAX_LEGEND} more (hover a point for its class)")
        self.legend.setText("<br>".join(shown))

    def fit(self) -> None:
        self.view_box.autoRange(padding=0.05)

    def _set_select_mode(self, on: bool) -> None:
        self.view_box.select_mode = on

    # ---- selection -----------------------------------------------------------------------------
    def select_box(self, x0: float, y0: float, x1: float, y1: float) -> list[str]:
        """Select the images whose points lie in the box (map coordinates); returns and announces their paths."""
        analysis = self.analysis
        if analysis is None:
            return []
        left, right, low, high = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        xy = analysis.xy
        inside = (xy[:, 0] >= left) & (xy[:, 0] <= right) & (xy[:, 1] >= low) & (xy[:, 1] <= high)
        self.selected_rows = np.flatnonzero(inside)
        self._draw()
        paths = [analysis.paths[i] for i in self.selected_rows]
        self.selection_made.emit(paths)
        return paths

    def scene_point(self, x: float, y: float) -> QPoint:
        """Widget pixel of the map coordinates (x, y) (tests and keyboard users hover with it)."""
        scene = self.view_box.mapViewToScene(QPointF(x, y))
        return self.plot.mapFromScene(scene)

    # ---- hover ---------------------------------------------------------------------------------
    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        self.hover_at(scene_pos)

    def hover_at(self, scene_pos: QPointF) -> int:
        """Show the card of the point nearest `scene_pos` (within HOVER_PX); the point's row, or -1."""
        analysis = self.analysis
        if (
            analysis is None
            or not len(analysis.paths)
            or not self.view_box.sceneBoundingRect().contains(scene_pos)
        ):
            self._hide_hover()
            return -1
        where = self.view_box.mapSceneToView(scene_pos)
        pixel_w, pixel_h = self.view_box.viewPixelSize()
        dx = (analysis.xy[:, 0] - where.x()) / max(pixel_w, 1e-12)
        dy = (analysis.xy[:, 1] - where.y()) / max(pixel_h, 1e-12)
        distance = dx * dx + dy * dy
        row = int(np.argmin(distance))
        if distance[row] > HOVER_PX * HOVER_PX:
            self._hide_hover()
            return -1
        self._hovered = row
        self._fill_card(row)
        view_pos = self.plot.mapFromScene(scene_pos)
        self.hover_card.adjustSize()
        x = view_pos.x() + 14
        y = view_pos.y() + 14
        if x + self.hover_card.width() > self.plot.width():
            x = view_pos.x() - 14 - self.hover_card.width()
        if y + self.hover_card.height() > self.plot.height():
            y = view_pos.y() - 14 - self.hover_card.height()
        self.hover_card.move(max(0, x), max(0, y))
        self.hover_card.show()
        self.hover_card.raise_()
        return row

    def hovered_row(self) -> int:
        return self._hovered if self.hover_card.isVisible() else -1

    def _fill_card(self, row: int) -> None:
        analysis = self.analysis
        assert analysis is not None
        path = analysis.paths[row]
        kind = SUSPICION[int(analysis.suspicion[row])]
        text = (
            f"{display_name(os.path.basename(path))}\n{display_name(analysis.classes[analysis.labels[row]])}"
        )
        if kind != "none":
            text += f" · {SUSPICION_NAMES[kind]}"
        self._hover_text.setText(text)
        source_row = self._thumbnails.row_of(path)
        pixmap = None
        if source_row is not None:  # the grid's cache, or a background decode that refreshes the card
            pixmap = self._thumbnails.data(self._thumbnails.index(source_row), Qt.ItemDataRole.DecorationRole)
        self._hover_image.setPixmap(pixmap if isinstance(pixmap, QPixmap) else QPixmap())

    def _on_thumbnail_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, _roles: object = None
    ) -> None:
        analysis = self.analysis
        if analysis is None or not self.hover_card.isVisible() or self._hovered < 0:
            return
        row = self._thumbnails.row_of(analysis.paths[self._hovered])
        if row is not None and top_left.row() <= row <= bottom_right.row():
            self._fill_card(self._hovered)

    def _hide_hover(self) -> None:
        self._hovered = -1
        self.hover_card.hide()

    # ---- curation follows ----------------------------------------------------------------------
    def follow_move(self, old_path: str, new_path: str, new_class: str | None) -> None:
        """A file moved (curation or its undo): the point keeps its place, takes the new path and class."""
        analysis = self.analysis
        if analysis is None:
            return
        try:
            row = analysis.paths.index(old_path)
        except ValueError:
            return
        analysis.paths[row] = new_path
        if new_class is not None and new_class in analysis.classes:
            analysis.labels[row] = analysis.classes.index(new_class)
            if self.colour_by.currentText() == "class":
                self._draw()
