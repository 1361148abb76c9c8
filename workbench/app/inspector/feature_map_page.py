"""The inspector's "Feature maps" page: a layer's channels as heatmap tiles, most active first; clicking a
tile asks for that channel to be enlarged."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from workbench.app.inspector import work
from workbench.app.inspector.layer_tree import shape_text
from workbench.app.qt.qimages import array_to_pixmap

TILE_SIDES = (
    (48, 96),
    (256, 64),
    (None, 40),
)  # (up to this many channels, tile side): few channels, big tiles
CHANNEL_ROLE = Qt.ItemDataRole.UserRole


def tile_side(channels: int) -> int:
    return next(side for limit, side in TILE_SIDES if limit is None or channels <= limit)


class FeatureMapPage(QWidget):
    channel_chosen = Signal(int)  # the channel of the tile made current

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.grid_title = QLabel("")
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.currentItemChanged.connect(self._on_item)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.grid_title)
        layout.addWidget(self.grid, 1)

    def show_layer(self, pictures: work.LayerPictures) -> None:
        """The layer's tiles and title, with no tile current yet."""
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

    def select_first(self) -> None:
        if self.grid.count():
            self.grid.setCurrentRow(0)

    def _on_item(self, item: QListWidgetItem | None, _previous: Any) -> None:
        if item is not None:
            self.channel_chosen.emit(item.data(CHANNEL_ROLE))
