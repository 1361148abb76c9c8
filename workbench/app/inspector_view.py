"""The feature-map inspector: pick a run, an image (dropped, or from the evaluation galleries) and a layer from
the model's module tree; see that layer's channels as heatmaps (sorted by mean activation), one enlarged beside
the input with its statistics, the first layer's filters as RGB tiles, and Grad-CAM with an opacity slider.

Every forward pass runs in a worker (`inspector_work`); each kind of request carries a number, and an answer
that a newer request has overtaken is dropped, so clicking quickly through layers never shows a stale grid.
With "newest checkpoint" the inspector reads the run's last.pt: it works while that run is still training.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.app import dialogs, inspector_work
from workbench.app.predictions_view import IMAGE_FILTER
from workbench.app.qimages import array_to_pixmap
from workbench.app.run_picker import RunPicker
from workbench.app.workers import Failure, run_in_background

TILE_SIDES = (
    (48, 96),
    (256, 64),
    (None, 40),
)  # (up to this many channels, tile side): few channels, big tiles
LARGE_SIDE = 224
SMALL_SIDE = 96
LAYER_ROLE = Qt.ItemDataRole.UserRole
CHANNEL_ROLE = Qt.ItemDataRole.UserRole
NEXT_LAYER_KEYS = ("PgDown", "Alt+Down")
PREVIOUS_LAYER_KEYS = ("PgUp", "Alt+Up")


def tile_side(channels: int) -> int:
    return next(side for limit, side in TILE_SIDES if limit is None or channels <= limit)


def shape_text(shape: list[int] | None) -> str:
    return "×".join(str(size) for size in shape) if shape else "–"


class InspectorView(QWidget):
    model_loaded = Signal(str)  # checkpoint path
    layer_shown = Signal(str, int)  # layer name, number of channels
    cam_shown = Signal(int)  # class index
    filters_shown = Signal(int)  # number of first-layer kernels

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.inspector: Any = None
        self.image_path: str | None = None
        self.pictures: inspector_work.LayerPictures | None = None
        self.cam: inspector_work.CamResult | None = None
        self.filters: inspector_work.FilterPictures | None = None
        self._requests: dict[str, int] = {}
        self._loading_run: str | None = None
        self._pending = 0  # requests still running in workers

        self.runs = RunPicker()
        self.runs.run_chosen.connect(self.load_run)
        self.latest = QCheckBox("Newest checkpoint")
        self.latest.setToolTip("Inspect the last epoch saved (works while the run is still training)")
        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Read the run's checkpoint again (newer weights while training)")
        self.reload_button.clicked.connect(lambda: self.load_run(self.runs.current_run_id() or ""))
        self.image_button = QPushButton("Image…")
        self.image_button.setToolTip("Choose an image (or drop one on this view)")
        self.image_button.clicked.connect(self.pick_image)
        self.flip = QCheckBox("Flip")
        self.flip.setToolTip("Mirror the image left-right to see the maps move")
        self.shift_x, self.shift_y = QSpinBox(), QSpinBox()
        for spin, axis in ((self.shift_x, "right"), (self.shift_y, "down")):
            spin.setRange(-32, 32)
            spin.setToolTip(f"Shift the image {axis} by this many pixels")
        self.flip.toggled.connect(self.refresh)
        self.shift_x.valueChanged.connect(self.refresh)
        self.shift_y.valueChanged.connect(self.refresh)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(90)
        self.busy_bar.hide()
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        top.addWidget(self.latest)
        top.addWidget(self.reload_button)
        image_row = QHBoxLayout()  # a second row, so the window can stay narrow
        for widget in (self.image_button, self.flip, QLabel("Shift x/y:"), self.shift_x, self.shift_y):
            image_row.addWidget(widget)
        image_row.addStretch(1)
        image_row.addWidget(self.busy_bar)
        self.status = QLabel("Pick a run, then an image; choose a layer on the left (PageUp/PageDown step).")

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["layer", "type", "output"])
        self.tree.setColumnWidth(0, 150)
        self.tree.setColumnWidth(1, 90)
        self.tree.currentItemChanged.connect(self._on_tree_item)

        self.grid_title = QLabel("")
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.currentItemChanged.connect(self._on_channel_item)
        maps_page = QWidget()
        maps_layout = QVBoxLayout(maps_page)
        maps_layout.setContentsMargins(0, 4, 0, 0)
        maps_layout.addWidget(self.grid_title)
        maps_layout.addWidget(self.grid, 1)

        self.filters_label = QLabel()
        self.filters_title = QLabel("")
        self.deep_filters_label = QLabel()
        self.deep_filters_title = QLabel("")
        filters_page = QWidget()
        filters_layout = QVBoxLayout(filters_page)
        for widget in (
            self.filters_title,
            self.filters_label,
            self.deep_filters_title,
            self.deep_filters_label,
        ):
            filters_layout.addWidget(widget)
        filters_layout.addStretch(1)
        filters_scroll = QScrollArea()
        filters_scroll.setWidget(filters_page)
        filters_scroll.setWidgetResizable(True)

        self.cam_class = QComboBox()
        self.cam_class.addItem("predicted class")
        self.cam_class.setToolTip("Where is the evidence for this class?")
        self.cam_class.activated.connect(lambda _i: self.request_cam())
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setToolTip("Heatmap opacity")
        self.opacity.valueChanged.connect(self._draw_cam)
        self.cam_label = QLabel()
        self.cam_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cam_label.setMinimumSize(SMALL_SIDE, SMALL_SIDE)
        self.cam_info = QLabel("")
        cam_page = QWidget()
        cam_layout = QVBoxLayout(cam_page)
        cam_form = QFormLayout()
        cam_form.addRow("Class:", self.cam_class)
        cam_form.addRow("Opacity:", self.opacity)
        cam_layout.addLayout(cam_form)
        cam_layout.addWidget(self.cam_info)
        cam_layout.addWidget(self.cam_label, 1)

        self.pages = QTabWidget()
        self.pages.addTab(maps_page, "Feature maps")
        self.pages.addTab(filters_scroll, "Filters")
        self.pages.addTab(cam_page, "Grad-CAM")
        self.pages.currentChanged.connect(self._on_page)

        self.input_label = QLabel("no image")
        self.channel_label = QLabel("")
        for label in (self.input_label, self.channel_label):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            # an explicit minimum overrides the pixmap's: in a small window the picture is cut, the window
            # is not forced wider
            label.setMinimumSize(SMALL_SIDE, SMALL_SIDE)
        self.stats_label = QLabel("Click a channel to enlarge it.")
        self.stats_label.setWordWrap(True)
        self.channel_box = QWidget()  # only beside the feature maps: the other pages have no channel
        channel_layout = QVBoxLayout(self.channel_box)
        channel_layout.setContentsMargins(0, 0, 0, 0)
        channel_layout.addWidget(QLabel("<b>Channel</b>"))
        channel_layout.addWidget(self.channel_label)
        channel_layout.addWidget(self.stats_label)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(QLabel("<b>Input</b> (as the model sees it)"))
        side_layout.addWidget(self.input_label)
        side_layout.addWidget(self.channel_box)
        side_layout.addStretch(1)

        splitter = QSplitter()
        splitter.addWidget(self.tree)
        splitter.addWidget(self.pages)
        splitter.addWidget(side)
        splitter.setSizes([330, 640, 260])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(image_row)
        layout.addWidget(self.status)
        layout.addWidget(splitter, 1)

        for keys, step in ((NEXT_LAYER_KEYS, 1), (PREVIOUS_LAYER_KEYS, -1)):
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(lambda step=step: self.step_layer(step))

    # ---- choosing the model and the image ------------------------------------------------------
    def set_run(self, run_id: str, *, latest: bool | None = None) -> None:
        if latest is not None:
            self.latest.setChecked(latest)
        self.runs.refresh(select=run_id)
        self.load_run(run_id)

    def load_run(self, run_id: str) -> None:
        if not run_id:
            dialogs.show_error(self, "No run", "Train a model first, or pick a run from the list.")
            return
        self._loading_run = run_id
        self._start(
            "load",
            inspector_work.load_inspector,
            run_id,
            self.latest.isChecked(),
            on_done=self._on_loaded,
            message=f"Loading {run_id}…",
        )

    def checkpoint_saved(self, run_id: str | None) -> None:
        """A run saved a checkpoint: follow it if this view shows that run's newest checkpoint."""
        if run_id and self.latest.isChecked() and self.runs.current_run_id() == run_id:
            self.load_run(run_id)

    def _on_loaded(self, result: tuple[Any, Any]) -> None:
        self.inspector, tree = result
        current = self.current_layer()
        self._fill_tree(tree)
        self.cam_class.blockSignals(True)
        self.cam_class.clear()
        self.cam_class.addItem("predicted class")
        self.cam_class.addItems(self.inspector.classes)
        self.cam_class.blockSignals(False)
        self.status.setText(f"Model: {self.inspector.checkpoint}")
        self.model_loaded.emit(str(self.inspector.checkpoint))
        if current and self.select_layer(current):
            return
        self._refresh_page()

    def pick_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image to inspect", self.image_path or "", IMAGE_FILTER)
        if path:
            self.set_image(path)

    def set_image(self, path: str) -> None:
        self.image_path = path
        self.refresh()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and self._dropped_image(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_image(event.mimeData().urls())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.set_image(path)

    @staticmethod
    def _dropped_image(urls: list[Any]) -> str | None:
        files = [url.toLocalFile() for url in urls if url.isLocalFile() and os.path.isfile(url.toLocalFile())]
        return files[0] if files else None

    def image_request(self) -> inspector_work.ImageRequest | None:
        if self.image_path is None:
            return None
        return inspector_work.ImageRequest(
            self.image_path, self.flip.isChecked(), (self.shift_x.value(), self.shift_y.value())
        )

    # ---- layers --------------------------------------------------------------------------------
    def _fill_tree(self, root: Any) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()

        def add(node: Any, parent: QTreeWidget | QTreeWidgetItem) -> None:
            label = node.name.rsplit(".", 1)[-1] if node.name else "model"
            item = QTreeWidgetItem(parent, [label, node.type, shape_text(node.output_shape)])
            item.setData(0, LAYER_ROLE, node.name)
            item.setToolTip(0, f"{node.name or 'the whole model'} · {node.kind} · {node.params:,} parameters")
            if not node.inspectable or not node.name:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                item.setForeground(0, self.palette().placeholderText())
            for child in node.children:
                add(child, item)

        add(root, self.tree)
        self.tree.expandToDepth(1)
        self.tree.blockSignals(False)

    def layer_items(self) -> list[QTreeWidgetItem]:
        """The tree's inspectable layers in order (parents before children)."""
        found: list[QTreeWidgetItem] = []

        def walk(item: QTreeWidgetItem) -> None:
            if item.flags() & Qt.ItemFlag.ItemIsSelectable:
                found.append(item)
            for index in range(item.childCount()):
                walk(item.child(index))

        for index in range(self.tree.topLevelItemCount()):
            walk(self.tree.topLevelItem(index))
        return found

    def layer_names(self) -> list[str]:
        return [item.data(0, LAYER_ROLE) for item in self.layer_items()]

    def current_layer(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, LAYER_ROLE) if item is not None else None

    def select_layer(self, name: str) -> bool:
        for item in self.layer_items():
            if item.data(0, LAYER_ROLE) == name:
                if item is self.tree.currentItem():
                    self._refresh_page()  # no currentItemChanged for the current item: show it anyway
                else:
                    self.tree.setCurrentItem(item)
                return True
        return False

    def step_layer(self, step: int) -> None:
        """The next (step 1) or previous (-1) inspectable layer, from the keyboard."""
        items = self.layer_items()
        if not items:
            return
        current = self.tree.currentItem()
        index = items.index(current) + step if current in items else (0 if step > 0 else len(items) - 1)
        item = items[max(0, min(index, len(items) - 1))]
        self.tree.scrollToItem(item)
        self.tree.setCurrentItem(item)

    def _on_tree_item(self, current: QTreeWidgetItem | None, _previous: Any) -> None:
        if current is not None and current.flags() & Qt.ItemFlag.ItemIsSelectable:
            self._refresh_page()

    # ---- requests ------------------------------------------------------------------------------
    def _on_page(self, page: int) -> None:
        self.channel_box.setVisible(page == 0)
        self._refresh_page()

    def refresh(self) -> None:
        self._refresh_page()

    def _refresh_page(self) -> None:
        if self.inspector is None:
            return
        page = self.pages.currentIndex()
        if page == 1:
            self.request_filters()
            return
        if self.image_request() is None:
            self.status.setText("Choose an image (Image… or drop one here) to see its feature maps.")
            return
        if page == 2:
            self.request_cam()
        elif self.current_layer():
            self.request_layer(self.current_layer())

    def request_layer(self, layer: str) -> None:
        request = self.image_request()
        if self.inspector is None or request is None:
            return
        self._start(
            "layer",
            inspector_work.layer_pictures,
            self.inspector,
            request,
            layer,
            on_done=self._show_layer,
            message=f"Computing {layer}…",
        )

    def request_cam(self) -> None:
        request = self.image_request()
        if self.inspector is None or request is None:
            return
        index = self.cam_class.currentIndex() - 1  # item 0 is "predicted class"
        self._start(
            "cam",
            inspector_work.grad_cam,
            self.inspector,
            request,
            index if index >= 0 else None,
            on_done=self._show_cam,
            message="Computing Grad-CAM…",
        )

    def request_filters(self) -> None:
        if self.inspector is None:
            return
        self._start(
            "filters",
            inspector_work.filter_pictures,
            self.inspector,
            self.current_layer(),
            on_done=self._show_filters,
            message="Reading the filters…",
        )

    def _start(self, kind: str, func: Any, *args: Any, on_done: Any, message: str) -> None:
        number = self._requests.get(kind, 0) + 1
        self._requests[kind] = number

        def done(result: Any) -> None:
            if self._requests.get(kind) == number:  # a newer request of this kind supersedes this answer
                on_done(result)

        def finished() -> None:
            self._pending -= 1
            self.busy_bar.setVisible(self._pending > 0)

        self._pending += 1
        self.busy_bar.show()
        self.status.setText(message)
        run_in_background(self, func, *args, on_done=done, on_error=self._failed, on_finished=finished)

    @property
    def busy(self) -> bool:
        return self._pending > 0

    def _failed(self, failure: Failure) -> None:
        self.status.setText(failure.message)
        dialogs.show_error(
            self, "Inspection failed", failure.message, "" if failure.is_user_error else failure.details
        )

    # ---- drawing -------------------------------------------------------------------------------
    def _show_layer(self, pictures: inspector_work.LayerPictures) -> None:
        self.pictures = pictures
        self.grid.blockSignals(True)
        self.grid.clear()
        side = tile_side(pictures.channels)
        self.grid.setIconSize(QSize(side, side))
        self.grid.setGridSize(QSize(side + 8, side + 20))
        for channel, tile in zip(pictures.order, pictures.tiles, strict=False):
            caption = (
                str(channel) if pictures.output_shape[1:] else f"{channel}: {pictures.stats[channel][2]:.3g}"
            )
            item = QListWidgetItem(QIcon(array_to_pixmap(tile, side)), caption)
            item.setData(CHANNEL_ROLE, channel)
            low, high, mean, zero = pictures.stats[channel]
            item.setToolTip(f"channel {channel}: mean {mean:.3g}, max {high:.3g}, {zero:.0%} zero")
            self.grid.addItem(item)
        self.grid.blockSignals(False)
        shown = len(pictures.tiles)
        more = f" (showing the {shown} most active)" if shown < pictures.channels else ""
        self.grid_title.setText(
            f"<b>{pictures.layer}</b> ({pictures.type}) · output {shape_text(pictures.output_shape)} · "
            f"<b>{pictures.channels} channels</b>{more}, sorted by mean activation"
        )
        self.input_label.setPixmap(array_to_pixmap(pictures.input_rgb, LARGE_SIDE))
        self.status.setText(f"{pictures.layer}: {pictures.channels} channels")
        if self.grid.count():
            self.grid.setCurrentRow(0)
        self.layer_shown.emit(pictures.layer, pictures.channels)

    def tile_count(self) -> int:
        return self.grid.count()

    def _on_channel_item(self, item: QListWidgetItem | None, _previous: Any) -> None:
        if item is not None and self.pictures is not None:
            self.show_channel(item.data(CHANNEL_ROLE))

    def show_channel(self, channel: int) -> None:
        pictures = self.pictures
        if pictures is None:
            return
        picture = inspector_work.channel_picture(pictures, channel)
        self.channel_label.setPixmap(array_to_pixmap(picture, LARGE_SIDE))
        low, high, mean, zero = pictures.stats[channel]
        self.stats_label.setText(
            f"<b>{pictures.layer}</b> channel <b>{channel}</b><br>min {low:.4g} · max {high:.4g}<br>"
            f"mean {mean:.4g} · zero {zero:.1%}"
        )

    def _show_cam(self, result: inspector_work.CamResult) -> None:
        self.cam = result
        self.cam_info.setText(
            f"Evidence for <b>{result.class_name}</b> (p = {result.probability:.1%}) at layer {result.layer}"
        )
        self.input_label.setPixmap(array_to_pixmap(result.input_rgb, LARGE_SIDE))
        self._draw_cam()
        self.status.setText(f"Grad-CAM for {result.class_name}")
        self.cam_shown.emit(result.class_index)

    def _draw_cam(self) -> None:
        if self.cam is None:
            return
        overlay = inspector_work.cam_overlay(self.cam, self.opacity.value() / 100)
        self.cam_label.setPixmap(array_to_pixmap(overlay, 2 * LARGE_SIDE, smooth=True))

    def _show_filters(self, pictures: inspector_work.FilterPictures) -> None:
        self.filters = pictures
        self.filters_title.setText(
            f"<b>First layer ({pictures.first_layer})</b>: {pictures.first_count} kernels as images"
        )
        self.filters_label.setPixmap(array_to_pixmap(pictures.first_tiles))
        if pictures.deep_tiles is not None and pictures.deep_shape is not None:
            kernels, inputs = pictures.deep_shape
            self.deep_filters_title.setText(
                f"<b>{pictures.layer}</b>: first {kernels} kernels (rows) × {inputs} input channels "
                "(grey = 0, white positive, black negative)"
            )
            self.deep_filters_label.setPixmap(array_to_pixmap(pictures.deep_tiles))
        else:
            self.deep_filters_title.setText("Select a deeper convolution in the tree to see its kernels.")
            self.deep_filters_label.clear()
        self.status.setText("Filters")
        self.filters_shown.emit(pictures.first_count)
