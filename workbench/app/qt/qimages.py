"""NumPy pictures from the engine (overlay.py: RGB/RGBA uint8 arrays) as Qt images and pixmaps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

if TYPE_CHECKING:  # NumPy is imported by the first picture, not with the window (start-up time)
    import numpy as np


def array_to_qimage(array: np.ndarray) -> QImage:
    """(H, W), (H, W, 3) or (H, W, 4) uint8 → a QImage owning its own copy of the pixels."""
    import numpy as np

    pixels = np.ascontiguousarray(array)
    if pixels.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
    if pixels.ndim == 2:
        pixels = np.ascontiguousarray(np.repeat(pixels[:, :, None], 3, axis=2))
    height, width, depth = pixels.shape
    formats = {3: QImage.Format.Format_RGB888, 4: QImage.Format.Format_RGBA8888}
    if depth not in formats:
        raise ValueError(f"expected 1, 3 or 4 channels, got {depth}")
    image = QImage(pixels.data, width, height, width * depth, formats[depth])
    return image.copy()  # the QImage above borrows NumPy's buffer, which may go away


def array_to_pixmap(array: np.ndarray, side: int | None = None, *, smooth: bool = False) -> QPixmap:
    """A pixmap of the array, scaled so its longer side is `side` (nearest neighbour by default, so small
    feature maps and kernels stay crisp instead of blurring)."""
    pixmap = QPixmap.fromImage(array_to_qimage(array))
    if side is not None and max(pixmap.width(), pixmap.height()) != side:
        mode = (
            Qt.TransformationMode.SmoothTransformation if smooth else Qt.TransformationMode.FastTransformation
        )
        pixmap = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode)
    return pixmap


def file_thumbnail(path: str, side: int) -> QPixmap:
    """A file's image scaled to fit `side` (a null pixmap when the file cannot be read)."""
    pixmap = QPixmap(path)
    if pixmap.isNull():
        return pixmap
    return pixmap.scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
    )
