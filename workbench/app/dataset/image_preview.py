"""The dataset browser's image preview: the selected image, larger, with its path, class, pixel size and mode.

The file is decoded off the UI thread; a result that arrives after the user moved on is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from workbench.app.dataset.thumbnails import ThumbItem, open_for_display
from workbench.app.qt.workers import Failure, run_in_background

PREVIEW_SIDE = 320


class ScaledImageLabel(QLabel):
    """Shows an image as large as the label allows, keeping its aspect; small images stay crisp (nearest
    neighbour) so a 28×28 digit shows its real pixels."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self._image: QImage | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self._rescale()

    def has_image(self) -> bool:
        return self._image is not None and not self._image.isNull()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if not self.has_image():
            self.setPixmap(QPixmap())
            return
        box = self.contentsRect().size()
        small = self._image.width() * 2 <= box.width() and self._image.height() * 2 <= box.height()
        mode = (
            Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        )
        scaled = self._image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, mode)
        self.setPixmap(QPixmap.fromImage(scaled))


class ImagePreview(QWidget):
    """The picture (`label`) above its description (`info`). `current_item` gives the item selected when
    the decoded picture arrives, so the description shows its latest state (e.g. excluded)."""

    def __init__(self, current_item: Callable[[], ThumbItem | None], parent: QWidget | None = None):
        super().__init__(parent)
        self._current_item = current_item
        self._path: str | None = None
        self.label = ScaledImageLabel("Select an image")
        self.label.setStyleSheet("background: #fafafa; border: 1px solid #dddddd;")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)  # its parts line up with the widgets around it
        layout.addWidget(self.label, 1)
        layout.addWidget(self.info)

    def show_item(self, item: ThumbItem) -> None:
        """Describe `item` at once; its picture follows when decoded."""
        self._path = item.path
        self.info.setText(f"{item.path}\nclass {item.class_name} · {item.split}")
        run_in_background(
            self,
            open_for_display,
            item.path,
            PREVIEW_SIDE,
            on_done=lambda result, path=item.path: self._show_image(path, *result),
            on_error=lambda failure, path=item.path: self._image_failed(path, failure),
        )

    def clear_item(self) -> None:
        self._path = None
        self.label.set_image(None)
        self.label.setText("Select an image")
        self.info.clear()

    def text(self) -> str:
        return self.info.text()

    def _show_image(self, path: str, image: QImage, info: dict[str, Any]) -> None:
        if path != self._path:
            return  # the user has moved on to another image
        self.label.set_image(image)
        item = self._current_item()
        label = (
            f"class {item.class_name} · {item.split}{' · excluded' if item.excluded else ''}\n"
            if item
            else ""
        )
        self.info.setText(
            f"{label}{info['width']} × {info['height']} px · mode {info['mode']} · {info['format']}\n{path}"
        )

    def _image_failed(self, path: str, failure: Failure) -> None:
        if path == self._path:
            self.label.set_image(None)
            self.label.setText("cannot display this file")
            reason = getattr(failure.error, "reason", None) or failure.message  # BadImageError: no path twice
            self.info.setText(f"{path}\n⚠ {reason}")
