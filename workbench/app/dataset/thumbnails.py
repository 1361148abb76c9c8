"""A virtualized thumbnail grid: a list model over dataset images whose pictures load lazily off the UI thread.

Qt's view asks only for the rows it paints, so 70,000 images cost 70,000 small Python objects and nothing
more until scrolled to. A thumbnail not yet in memory is requested from a small thread pool (newest request
first, so the rows on screen win after a fast scroll), decoded with Pillow and cached twice: QImages in an
LRU in memory, PNGs on disk under `paths.cache_dir()/thumbnails` keyed by path, size, mtime and side.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from workbench.engine import paths
from workbench.engine.atomic import write_bytes_atomic
from workbench.engine.names import name_bytes

THUMB_SIDE = 72
MAX_QUEUED = 1000  # about ten screenfuls of thumbnail requests
MEMORY_CACHE_ITEMS = 6000
ALL = "(all)"

ClassRole = Qt.ItemDataRole.UserRole + 1
SplitRole = Qt.ItemDataRole.UserRole + 2
PathRole = Qt.ItemDataRole.UserRole + 3
ExcludedRole = Qt.ItemDataRole.UserRole + 4


@dataclass(slots=True)  # no per-item __dict__: 70,000 of them stay light for the garbage collector
class ThumbItem:
    path: str
    class_name: str
    split: str
    excluded: bool = False


def rows_by_path(items: list[ThumbItem]) -> dict[str, int]:
    return {item.path: row for row, item in enumerate(items)}


def pil_to_qimage(image: Image.Image) -> QImage:
    """An RGB(A) copy the QImage owns (Pillow's buffer may go away)."""
    image = (
        image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
        else image.convert("RGB")
    )
    fmt = QImage.Format.Format_RGBA8888 if image.mode == "RGBA" else QImage.Format.Format_RGB888
    data = image.tobytes()
    bytes_per_line = image.width * (4 if image.mode == "RGBA" else 3)
    return QImage(data, image.width, image.height, bytes_per_line, fmt).copy()


FAST_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA"})  # Pillow shows these right as they are


def open_for_display(path: str, side: int, *, upscale: bool = False) -> tuple[QImage, dict[str, Any]]:
    """Decode `path` fitted into side×side as a QImage (see `render`); also its pixel size, mode and format.
    A file that cannot be shown raises the engine's `BadImageError`, whose reason a person can read
    ("not an image", "truncated PNG file"), not Pillow's "UnidentifiedImageError: cannot identify…"."""
    from workbench.engine.errors import BadImageError

    try:
        shown, info = render(path, side, upscale=upscale)
    except BadImageError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises assorted types on damaged files
        raise BadImageError(path, failure_reason(path, exc)) from exc
    return pil_to_qimage(shown), info


def render(path: str, side: int, *, upscale: bool = False) -> tuple[Image.Image, dict[str, Any]]:
    """Decode `path` fitted into side×side (EXIF orientation applied); also its pixel size, mode and format.

    Common modes take a fast path (JPEG draft decoding at reduced scale); 16-bit, float, CMYK and other modes
    go through the engine's `open_image`, so they look the way the network will see them. With `upscale`,
    small images (28×28 digits) grow to fill the box, pixelated on purpose: their pixels are the data.
    """
    with Image.open(path) as image:
        info = {
            "width": image.width,
            "height": image.height,
            "mode": image.mode,
            "format": image.format or "",
        }
        if image.mode in FAST_MODES:
            image.draft("RGB", (side, side))  # JPEG: decode at a reduced scale, much faster for big photos
            shown = ImageOps.exif_transpose(image)
        else:
            from workbench.engine.data.decode import open_image  # heavy (torch), and only for unusual modes

            shown = open_image(path)
        shown.thumbnail((side, side), Image.Resampling.BILINEAR)
        if upscale and max(shown.size) < side:
            factor = side / max(shown.size)
            size = (max(1, round(shown.width * factor)), max(1, round(shown.height * factor)))
            shown = shown.resize(size, Image.Resampling.NEAREST if factor >= 2 else Image.Resampling.BILINEAR)
        shown.load()
        return shown, info


def failure_reason(path: str, exc: Exception) -> str:
    """The engine's short reason for a file it cannot use ("truncated", "not an image"…), else Pillow's words."""
    from workbench.engine.errors import BadImageError

    try:
        from workbench.engine.data.decode import image_header, open_image

        image_header(path)
        open_image(path)
    except BadImageError as bad:
        return bad.reason
    except Exception:  # noqa: BLE001 - fall back to the display error below
        pass
    return str(exc) or type(exc).__name__


def _cache_key(path: str, side: int) -> str | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    text = f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{side}"
    return hashlib.sha1(name_bytes(text)).hexdigest()  # any file name, UTF-8 or not


class _LoaderSignals(QObject):
    # object, not str: a str signal argument goes through QString, which drops the lone surrogates Python
    # uses for file names that are not UTF-8, and the path would no longer match the request
    loaded = Signal(object, QImage)  # path, thumbnail
    failed = Signal(object, str)  # path, reason


def _load_thumbnail(path: str, side: int, disk_cache: Path | None, signals: _LoaderSignals) -> None:
    """Worker thread: from the disk cache, else decoded (and then cached). Pillow and QImage only: QPixmap
    belongs to the UI thread."""
    key = _cache_key(path, side) if disk_cache else None
    cached = disk_cache / key[:2] / f"{key}.png" if key and disk_cache else None
    if cached is not None and cached.exists():
        image = QImage(str(cached))
        if not image.isNull():
            signals.loaded.emit(path, image)
            return
    try:
        shown, _ = render(path, side, upscale=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file becomes a "broken" tile, never a crash
        signals.failed.emit(path, failure_reason(path, exc))
        return
    if cached is not None:
        buffer = io.BytesIO()
        shown.save(buffer, format="PNG")
        with contextlib.suppress(OSError):  # a read-only or full cache folder only costs speed
            write_bytes_atomic(cached, buffer.getvalue())
    signals.loaded.emit(path, pil_to_qimage(shown))


class ThumbnailLoader(QObject):
    """Decodes thumbnails on a few threads of its own pool (training keeps the global one busy).

    Requests go on a stack and the threads take the newest first, so after a fast scroll the rows now on
    screen decode before the ones scrolled past; the stack keeps only the latest MAX_QUEUED requests (older
    ones are forgotten and asked for again if they come back into view).
    """

    loaded = Signal(object, QImage)  # path (object: see _LoaderSignals), thumbnail
    failed = Signal(object, str)

    def __init__(self, side: int = THUMB_SIDE, use_disk_cache: bool = True, parent: QObject | None = None):
        super().__init__(parent)
        self.side = side
        self.pool = QThreadPool(self)
        self.threads = max(1, min(2, (os.cpu_count() or 2) - 1))
        self.pool.setMaxThreadCount(self.threads)
        self.disk_cache = paths.cache_dir() / "thumbnails" if use_disk_cache else None
        self._signals = _LoaderSignals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)
        self._pending: set[str] = set()  # requested and not yet delivered (UI thread only)
        self._stack: list[str] = []  # shared with the threads, under the lock
        self._lock = threading.Lock()
        self._draining = 0

    def request(self, path: str) -> None:
        if path in self._pending:
            return
        self._pending.add(path)
        with self._lock:
            self._stack.append(path)
            forgotten = self._stack[:-MAX_QUEUED]
            del self._stack[:-MAX_QUEUED]
            start = self._draining < self.threads
            if start:
                self._draining += 1
        self._pending.difference_update(forgotten)
        if start:
            self.pool.start(self._drain)

    def _drain(self) -> None:  # worker thread
        while True:
            with self._lock:
                if not self._stack:
                    self._draining -= 1
                    return
                path = self._stack.pop()
            try:
                _load_thumbnail(path, self.side, self.disk_cache, self._signals)
            except RuntimeError as exc:  # the window closed while this decode ran: nobody waits for it
                if "deleted" not in str(exc):
                    raise
                return

    def cancel_pending(self) -> None:
        """Forget queued requests (a new dataset or filter); decodes already under way still finish."""
        with self._lock:
            self._stack.clear()
        self._pending.clear()

    def _on_loaded(self, path: str, image: QImage) -> None:
        self._pending.discard(path)
        self.loaded.emit(path, image)

    def _on_failed(self, path: str, reason: str) -> None:
        self._pending.discard(path)
        self.failed.emit(path, reason)


def _placeholder(side: int, color: str) -> QPixmap:
    pixmap = QPixmap(side, side)
    pixmap.fill(QColor(color))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#bbbbbb"))
    painter.drawRect(0, 0, side - 1, side - 1)
    painter.end()
    return pixmap


class ThumbnailModel(QAbstractListModel):
    """One row per image; DecorationRole is a cached pixmap or a placeholder plus a background request."""

    def __init__(self, loader: ThumbnailLoader | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.loader = loader or ThumbnailLoader(parent=self)
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self._items: list[ThumbItem] = []
        self._row_of: dict[str, int] | None = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._broken: dict[str, str] = {}
        self._loading = _placeholder(self.loader.side, "#f0f0f0")
        self._broken_pixmap = _placeholder(self.loader.side, "#f4c7c3")

    # ---- content -------------------------------------------------------------------------------
    def set_items(self, items: list[ThumbItem], rows_by_path: dict[str, int] | None = None) -> None:
        """Show `items`. `rows_by_path` ({path: row}, as `rows_by_path()` builds it) may come ready-made from
        a worker thread: for 70,000 items it is ~50 ms the UI thread need not spend."""
        self.loader.cancel_pending()
        self.beginResetModel()
        self._items = items
        self._row_of = rows_by_path  # None: built on first lookup
        self.endResetModel()

    def items(self) -> list[ThumbItem]:
        return self._items

    def item(self, row: int) -> ThumbItem:
        return self._items[row]

    def _rows_by_path(self) -> dict[str, int]:
        if self._row_of is None:
            self._row_of = rows_by_path(self._items)
        return self._row_of

    def row_of(self, path: str) -> int | None:
        return self._rows_by_path().get(path)

    def update_item(self, old_path: str, new_item: ThumbItem) -> None:
        """Replace one row in place (curation moved or excluded a file)."""
        rows = self._rows_by_path()
        row = rows.pop(old_path, None)
        if row is None:
            return
        self._items[row] = new_item
        rows[new_item.path] = row
        self._pixmaps.pop(old_path, None)
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def cached_count(self) -> int:
        return len(self._pixmaps)

    # ---- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or index.row() >= len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap_for(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            extra = f"\n⚠ {self._broken[item.path]}" if item.path in self._broken else ""
            return f"{item.path}\nclass: {item.class_name} · split: {item.split}{' · excluded' if item.excluded else ''}{extra}"
        if role == ClassRole:
            return item.class_name
        if role == SplitRole:
            return item.split
        if role == PathRole:
            return item.path
        if role == ExcludedRole:
            return item.excluded
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(self.loader.side + 8, self.loader.side + 8)
        return None

    def _pixmap_for(self, path: str) -> QPixmap:
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path in self._broken:
            return self._broken_pixmap
        self.loader.request(path)
        return self._loading

    def _on_loaded(self, path: str, image: QImage) -> None:
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > MEMORY_CACHE_ITEMS:
            self._pixmaps.popitem(last=False)
        self._changed(path)

    def _on_failed(self, path: str, reason: str) -> None:
        self._broken[path] = reason
        self._changed(path)

    def _changed(self, path: str) -> None:
        row = self._rows_by_path().get(path)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a thumbnail centred in its cell, a frame when selected, and excluded images dimmed and crossed."""

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        rect = option.rect.adjusted(2, 2, -2, -2)
        painter.save()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(option.rect, option.palette.highlight())
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            x = rect.x() + (rect.width() - pixmap.width()) // 2
            y = rect.y() + (rect.height() - pixmap.height()) // 2
            if index.data(ExcludedRole):
                painter.setOpacity(0.35)
            painter.drawPixmap(x, y, pixmap)
            painter.setOpacity(1.0)
            if index.data(ExcludedRole):
                painter.setPen(QPen(QColor("#c62828"), 3))
                painter.drawLine(rect.topLeft(), rect.bottomRight())
                painter.drawLine(rect.topRight(), rect.bottomLeft())
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        size = index.data(Qt.ItemDataRole.SizeHintRole)
        return size if isinstance(size, QSize) else super().sizeHint(option, index)
