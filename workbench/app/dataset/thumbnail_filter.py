"""The thumbnail grid's class/split filter: a proxy over `ThumbnailModel` that shows one class and/or split."""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from PySide6.QtCore import QAbstractProxyModel, QModelIndex, QObject, QPersistentModelIndex

from workbench.app.dataset.thumbnails import ALL, ThumbnailModel


class ThumbnailFilter(QAbstractProxyModel):
    """Shows the rows of one class and/or one split (ALL = no restriction), and, while a map selection is
    shown, only the chosen source rows (rows, not paths: a curated file keeps its row under a new path).

    Not a QSortFilterProxyModel: that one asks Python `filterAcceptsRow` once per row on every reset, 140,000
    calls across the Qt/Python boundary (~250 ms on the UI thread) when a 70k-image folder loads. Here the
    visible source rows are one list computed in a single pass (a `range` when nothing is filtered).
    """

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._class = ALL
        self._split = ALL
        self._rows: range | list[int] = range(0)  # source rows shown, ascending
        self._chosen: frozenset[int] | None = (
            None  # a map selection's source rows (None: no such restriction)
        )

    def setSourceModel(self, model: ThumbnailModel) -> None:  # type: ignore[override]
        super().setSourceModel(model)
        model.modelAboutToBeReset.connect(self.beginResetModel)
        model.modelReset.connect(self._on_source_reset)
        model.dataChanged.connect(self._on_source_changed)
        self._rows = self._visible_rows()

    def set_filter(self, class_name: str = ALL, split: str = ALL) -> None:
        self.beginResetModel()
        self._class, self._split = class_name, split
        self._rows = self._visible_rows()
        self.endResetModel()

    def set_chosen_rows(self, rows: Iterable[int] | None) -> None:
        """Show only these source rows (still within the class and split filters); None shows them all."""
        self.beginResetModel()
        self._chosen = None if rows is None else frozenset(rows)
        self._rows = self._visible_rows()
        self.endResetModel()

    @property
    def chosen_rows(self) -> frozenset[int] | None:
        return self._chosen

    def _visible_rows(self) -> range | list[int]:
        model = self.sourceModel()
        if not isinstance(model, ThumbnailModel):
            return range(0)
        chosen = self._chosen
        if chosen is not None:
            items = model.items()
            candidates: Iterable[int] = sorted(row for row in chosen if 0 <= row < len(items))
        elif self._class == ALL and self._split == ALL:
            return range(model.rowCount())
        else:
            candidates = range(model.rowCount())
        wanted_class, wanted_split = self._class, self._split
        items = model.items()
        return [
            row
            for row in candidates
            if (wanted_class == ALL or items[row].class_name == wanted_class)
            and (wanted_split == ALL or items[row].split == wanted_split)
        ]

    def _on_source_reset(self) -> None:
        self._chosen = None  # another dataset: its rows are not the selection's
        self._rows = self._visible_rows()
        self.endResetModel()

    def _on_source_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: list[int]) -> None:
        for source_row in range(top_left.row(), bottom_right.row() + 1):
            index = self.mapFromSource(self.sourceModel().index(source_row, 0))
            if index.isValid():
                self.dataChanged.emit(index, index, roles)

    # ---- Qt proxy model ------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 1

    def index(
        self,
        row: int,
        column: int = 0,
        parent: QModelIndex | QPersistentModelIndex = QModelIndex(),  # noqa: B008
    ) -> QModelIndex:
        if parent.isValid() or column != 0 or not 0 <= row < len(self._rows):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, index: QModelIndex | QPersistentModelIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        return QModelIndex()

    def mapToSource(self, proxy_index: QModelIndex | QPersistentModelIndex) -> QModelIndex:
        if not proxy_index.isValid() or proxy_index.row() >= len(self._rows):
            return QModelIndex()
        return self.sourceModel().index(self._rows[proxy_index.row()], 0)

    def mapFromSource(self, source_index: QModelIndex | QPersistentModelIndex) -> QModelIndex:
        if not source_index.isValid():
            return QModelIndex()
        source_row = source_index.row()
        position = bisect.bisect_left(self._rows, source_row)
        if position < len(self._rows) and self._rows[position] == source_row:
            return self.createIndex(position, 0)
        return QModelIndex()
