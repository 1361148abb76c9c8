"""The inspector's right-hand column: the input as the model sees it and, beside the feature maps only, the
channel clicked in the grid, enlarged with its statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from workbench.app.inspector import work
from workbench.app.qt.qimages import array_to_pixmap

if TYPE_CHECKING:
    import numpy as np

LARGE_SIDE = 224
SMALL_SIDE = 96


class InspectorSidePanel(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
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
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Input</b> (as the model sees it)"))
        layout.addWidget(self.input_label)
        layout.addWidget(self.channel_box)
        layout.addStretch(1)

    def show_input(self, rgb: np.ndarray) -> None:
        self.input_label.setPixmap(array_to_pixmap(rgb, LARGE_SIDE))

    def show_channel(self, pictures: work.LayerPictures, channel: int) -> None:
        picture = work.channel_picture(pictures, channel)
        self.channel_label.setPixmap(array_to_pixmap(picture, LARGE_SIDE))
        low, high, mean, zero = pictures.stats[channel]
        self.stats_label.setText(
            f"<b>{pictures.layer}</b> channel <b>{channel}</b><br>min {low:.4g} · max {high:.4g}<br>"
            f"mean {mean:.4g} · zero {zero:.1%}"
        )
