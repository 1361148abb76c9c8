"""The inspector's image row: which image it looks at (chosen here, or dropped on the view) and how it is
augmented (flip, shift), as the `ImageRequest` that every page sends to the workers."""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from workbench.app.inspector import work
from workbench.app.qt import dialogs


class ImageChooser(QWidget):
    changed = Signal()  # another image, flip or shift: the pictures are out of date

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.path: str | None = None
        self.dataset_folder: str | None = None  # where the image dialog starts (the run's dataset)
        self.image_button = QPushButton("Image…")
        self.image_button.setToolTip("Choose an image (or drop one on this view)")
        self.image_button.clicked.connect(lambda: self.pick())
        self.flip = QCheckBox("Flip")
        self.flip.setToolTip("Mirror the image left-right to see the maps move")
        self.shift_x, self.shift_y = QSpinBox(), QSpinBox()
        for spin, axis in ((self.shift_x, "right"), (self.shift_y, "down")):
            spin.setRange(-32, 32)
            spin.setToolTip(f"Shift the image {axis} by this many pixels")
        self.flip.toggled.connect(self.changed)
        self.shift_x.valueChanged.connect(self.changed)
        self.shift_y.valueChanged.connect(self.changed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)  # lies in the view's row as if its widgets were the row's own
        for widget in (self.image_button, self.flip, QLabel("Shift x/y:"), self.shift_x, self.shift_y):
            layout.addWidget(widget)

    def pick(self) -> None:
        start = os.path.dirname(self.path) if self.path else dialogs.start_folder(self.dataset_folder)
        path, _ = QFileDialog.getOpenFileName(self, "Image to inspect", start, dialogs.IMAGE_FILTER)
        if path:
            dialogs.remember_folder(path)
            self.set_path(path)

    def set_path(self, path: str) -> None:
        self.path = path
        self.changed.emit()

    def request(self) -> work.ImageRequest | None:
        if self.path is None:
            return None
        return work.ImageRequest(
            self.path, self.flip.isChecked(), (self.shift_x.value(), self.shift_y.value())
        )
