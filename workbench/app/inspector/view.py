"""The feature-map inspector: pick a run, an image (dropped, or from the evaluation galleries) and a layer from
the model's module tree; see that layer's channels as heatmaps (sorted by mean activation), one enlarged beside
the input with its statistics, the first layer's filters as RGB tiles, and Grad-CAM with an opacity slider.

This view assembles the parts (`layer_tree`, `image_chooser`, `feature_map_page`, `filters_page`,
`grad_cam_page`, `side_panel`) and asks the worker half (`work`) for their pictures through `requests`:
a background job per kind of picture, where a newer request supersedes the older one. With "newest
checkpoint" the inspector reads the run's last.pt: it works while that run is still training.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.inspector import work
from workbench.app.inspector.feature_map_page import FeatureMapPage
from workbench.app.inspector.filters_page import FiltersPage
from workbench.app.inspector.grad_cam_page import GradCamPage
from workbench.app.inspector.image_chooser import ImageChooser
from workbench.app.inspector.layer_tree import LayerTree
from workbench.app.inspector.requests import LatestRequests
from workbench.app.inspector.side_panel import InspectorSidePanel
from workbench.app.qt import dialogs
from workbench.app.qt.run_picker import RunPicker
from workbench.app.qt.workers import Failure

NEXT_LAYER_KEYS = ("PgDown", "Alt+Down")
PREVIOUS_LAYER_KEYS = ("PgUp", "Alt+Up")


class InspectorView(QWidget):
    model_loaded = Signal(str)  # checkpoint path
    layer_shown = Signal(str, int)  # layer name, number of channels
    cam_shown = Signal(int)  # class index
    filters_shown = Signal(int)  # number of first-layer kernels

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.inspector: Any = None
        self.pictures: work.LayerPictures | None = None
        self.filters: work.FilterPictures | None = None
        self._loading_run: str | None = None
        self._layer_tree: Any = None
        self._quiet_failure = False
        self._sample_image: str | None = None  # the run's own image shown until the user picks one

        self.runs = RunPicker()
        self.runs.run_chosen.connect(self.load_run)
        self.runs.runs_listed.connect(self._on_runs_listed)  # open the selected run without a Reload
        self.latest = QCheckBox("Newest checkpoint")
        self.latest.setToolTip("Inspect the last epoch saved (works while the run is still training)")
        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Read the run's checkpoint again (newer weights while training)")
        self.reload_button.clicked.connect(lambda: self.load_run(self.runs.current_run_id() or ""))
        self.image_chooser = ImageChooser()
        self.image_chooser.changed.connect(self.refresh)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(90)
        self.busy_bar.hide()
        self.requests = LatestRequests(self, self.busy_bar, self._failed)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        top.addWidget(self.latest)
        top.addWidget(self.reload_button)
        image_row = QHBoxLayout()  # a second row, so the window can stay narrow
        image_row.addWidget(self.image_chooser)
        image_row.addStretch(1)
        image_row.addWidget(self.busy_bar)
        self.status = QLabel("Pick a run, then an image; choose a layer on the left (PageUp/PageDown step).")

        self.tree = LayerTree()
        self.tree.layer_chosen.connect(self._refresh_page)
        self.maps_page = FeatureMapPage()
        self.maps_page.channel_chosen.connect(self.show_channel)
        self.filters_page = FiltersPage()
        self.cam_page = GradCamPage()
        self.cam_page.class_chosen.connect(self.request_cam)
        self.side = InspectorSidePanel()
        # the widgets under their former names, which tests and the screenshot script reach
        self.grid, self.grid_title = self.maps_page.grid, self.maps_page.grid_title
        self.filters_label = self.filters_page.filters_label
        self.cam_class, self.opacity = self.cam_page.cam_class, self.cam_page.opacity
        self.cam_label, self.cam_info = self.cam_page.cam_label, self.cam_page.cam_info
        self.input_label, self.channel_label = self.side.input_label, self.side.channel_label
        self.stats_label = self.side.stats_label
        self.flip = self.image_chooser.flip

        self.pages = QTabWidget()
        self.pages.addTab(self.maps_page, "Feature maps")
        self.pages.addTab(self.filters_page, "Filters")
        self.pages.addTab(self.cam_page, "Grad-CAM")
        self.pages.currentChanged.connect(self._on_page)

        splitter = QSplitter()
        splitter.addWidget(self.tree)
        splitter.addWidget(self.pages)
        splitter.addWidget(self.side)
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

    @property
    def image_path(self) -> str | None:
        return self.image_chooser.path

    @property
    def cam(self) -> work.CamResult | None:
        """The Grad-CAM answer shown last."""
        return self.cam_page.cam

    # ---- choosing the model and the image ------------------------------------------------------
    def set_run(self, run_id: str, *, latest: bool | None = None) -> None:
        if latest is not None:
            self.latest.setChecked(latest)
        self.runs.refresh(select=run_id)
        self.load_run(run_id)

    def load_run(self, run_id: str) -> None:
        quiet, self._quiet_failure = self._quiet_failure, False
        if not run_id:
            dialogs.show_error(self, "No run", "Train a model first, or pick a run from the list.")
            return
        self._loading_run = run_id
        self._start(
            "load",
            work.load_inspector,
            run_id,
            self.latest.isChecked(),
            on_done=self._on_loaded,
            message=f"Loading {run_id}…",
            on_error=(lambda failure: self.status.setText(failure.message)) if quiet else None,
        )

    def checkpoint_saved(self, run_id: str | None) -> None:
        """A run saved a checkpoint: follow it if this view shows that run's newest checkpoint."""
        if run_id and self.latest.isChecked() and self.runs.current_run_id() == run_id:
            self.load_run(run_id)

    def _on_runs_listed(self, _count: int) -> None:
        """The picker listed the runs: inspect the one it shows, unless that is already loaded or loading."""
        record = self.runs.current_record()
        if record is None or record.run_id == self._loading_run:
            return
        if not record.checkpoint:  # a run that just started: nothing to inspect until its first epoch ends
            self.status.setText(f"Run {record.run_id} has no checkpoint yet; it appears after its first epoch.")
            return
        self._quiet_failure = True  # opened without being asked: a failure is told in the status line only
        self.load_run(record.run_id)

    def first_layer(self) -> str | None:
        """The layer to show first: the first convolution (its maps still look like the image), else the
        first inspectable layer."""
        names = self.layer_names()
        if self._layer_tree is not None:
            convs = {node.name for node in self._layer_tree.walk() if node.kind == "conv"}
            for name in names:
                if name in convs:
                    return name
        return names[0] if names else None

    def _on_loaded(self, loaded: work.LoadedRun) -> None:
        self.inspector, tree = loaded.inspector, loaded.tree
        self._layer_tree = tree
        current = self.current_layer()
        self.tree.fill(tree, self.palette().placeholderText())
        self.cam_page.set_classes(self.inspector.classes)
        self.image_chooser.dataset_folder = loaded.dataset_folder
        if self.image_chooser.path is None and loaded.sample_image:
            self.image_chooser.path = loaded.sample_image  # no signal: the layer below asks for the maps once
            self._sample_image = loaded.sample_image
        self.status.setText(f"Model: {self.inspector.checkpoint}")
        self.model_loaded.emit(str(self.inspector.checkpoint))
        layer = current if current in self.layer_names() else self.first_layer()
        if layer and self.select_layer(layer):
            return
        self._refresh_page()

    def set_image(self, path: str) -> None:
        self.image_chooser.set_path(path)

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

    def image_request(self) -> work.ImageRequest | None:
        return self.image_chooser.request()

    # ---- layers (the tree does the work) -------------------------------------------------------
    def layer_names(self) -> list[str]:
        return self.tree.layer_names()

    def current_layer(self) -> str | None:
        return self.tree.current_layer()

    def select_layer(self, name: str) -> bool:
        return self.tree.select_layer(name)

    def step_layer(self, step: int) -> None:
        """The next (step 1) or previous (-1) inspectable layer, from the keyboard."""
        self.tree.step_layer(step)

    # ---- requests ------------------------------------------------------------------------------
    def _on_page(self, page: int) -> None:
        self.side.channel_box.setVisible(page == 0)
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
            work.layer_pictures,
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
        self._start(
            "cam",
            work.grad_cam,
            self.inspector,
            request,
            self.cam_page.class_index(),
            on_done=self._show_cam,
            message="Computing Grad-CAM…",
        )

    def request_filters(self) -> None:
        if self.inspector is None:
            return
        self._start(
            "filters",
            work.filter_pictures,
            self.inspector,
            self.current_layer(),
            on_done=self._show_filters,
            message="Reading the filters…",
        )

    def _start(self, kind: str, func: Any, *args: Any, on_done: Any, message: str, on_error: Any = None) -> None:
        self.status.setText(message)
        self.requests.start(kind, func, *args, on_done=on_done, on_error=on_error)

    @property
    def busy(self) -> bool:
        return self.requests.busy

    def _failed(self, failure: Failure) -> None:  # `requests` shows the error dialog
        self.status.setText(failure.message)

    # ---- answers, drawn by the pages -----------------------------------------------------------
    def _show_layer(self, pictures: work.LayerPictures) -> None:
        self.pictures = pictures
        self.maps_page.show_layer(pictures)
        self.side.show_input(pictures.input_rgb)
        image = os.path.basename(self.image_path or "")
        self.status.setText(
            f"{pictures.layer}: {pictures.channels} channels · image {image}"
            + (" (from the run's dataset; Image… or a drop picks another)" if self._sample_image == self.image_path else "")
        )
        self.maps_page.select_first()  # enlarges the first channel
        self.layer_shown.emit(pictures.layer, pictures.channels)

    def tile_count(self) -> int:
        return self.grid.count()

    def show_channel(self, channel: int) -> None:
        if self.pictures is not None:
            self.side.show_channel(self.pictures, channel)

    def _show_cam(self, result: work.CamResult) -> None:
        self.cam_page.show_result(result)
        self.side.show_input(result.input_rgb)
        self.status.setText(f"Grad-CAM for {result.class_name}")
        self.cam_shown.emit(result.class_index)

    def _show_filters(self, pictures: work.FilterPictures) -> None:
        self.filters = pictures
        self.filters_page.show_filters(pictures)
        self.status.setText("Filters")
        self.filters_shown.emit(pictures.first_count)
