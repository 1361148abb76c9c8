"""The zoo as a searchable, sortable table in the manner of the course's "Keras Applications" table: per
model its parameters, depth, MACs, the size and ImageNet top-1/top-5 accuracy of its pretrained weights and
the milliseconds per image measured on this machine (all from the engine's catalog, through the size sweep);
the item model (one row a model), its search filter and the view."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from workbench.app.model.zoo_info import ZooRow
from workbench.app.qt.qt_compat import refilter
from workbench.engine.training.policy import PRETRAINED_SIZES

SortRole = Qt.ItemDataRole.UserRole + 10
NameRole = Qt.ItemDataRole.UserRole + 11
COLUMNS = (
    "Model",
    "Family",
    "Year",
    "Params",
    "Depth",
    "MACs",
    "Size (MB)",
    "Top-1",
    "Top-5",
    "ms/image",
    "Input",
    "Pretrained",
)
(
    PARAMS_COLUMN,
    DEPTH_COLUMN,
    MACS_COLUMN,
    SIZE_COLUMN,
    TOP1_COLUMN,
    TOP5_COLUMN,
    SPEED_COLUMN,
    INPUT_COLUMN,
    PRETRAINED_COLUMN,
) = range(3, 12)
COLUMN_TIPS = {
    "Params": "Parameters (weights and biases) at the dataset's channels and classes",
    "Depth": "Layers with weights: convolutions and fully connected layers",
    "MACs": "Multiply-accumulates for one image at the Input size (FLOPs = 2 × MACs)",
    "Size (MB)": "Size of the pretrained ImageNet weights file",
    "Top-1": "ImageNet-1K validation accuracy of the pretrained weights: the right class is the top guess",
    "Top-5": "ImageNet-1K validation accuracy of the pretrained weights: the right class is among the top 5",
    "ms/image": "Milliseconds per image to classify, measured on this computer's CPU at the Input size "
    "(measured once in the background, then remembered)",
    "Input": "Image side the model trains at on this dataset from scratch; from ImageNet weights the engine "
    f"upscales small images ({min(PRETRAINED_SIZES)}–{max(PRETRAINED_SIZES)} px), and the summary beside the table shows that size",
    "Pretrained": "ImageNet weights available",
}
# Header labels on two lines where one line would be wider than the column's values (the table must fit
# beside the layer summary at the default window size).
HEADER_LABELS = {"Size (MB)": "Size\n(MB)", "ms/image": "ms /\nimage", "Pretrained": "Pre-\ntrained"}
# Columns the sweep fills (blank "…" until it reports, re-blanked for a new dataset).
_SWEPT = (PARAMS_COLUMN, DEPTH_COLUMN, MACS_COLUMN, SPEED_COLUMN)


def human_count(value: int | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return str(value)


def _cell(text: str, sort_value: Any = None, tip: str = "") -> QStandardItem:
    item = QStandardItem(text)
    if isinstance(sort_value, int):
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setData(text.lower() if sort_value is None else sort_value, SortRole)
    item.setEditable(False)
    if tip:
        item.setToolTip(tip)
    return item


class ZooModel(QStandardItemModel):
    """One row a zoo model; Params and MACs show "…" until the size sweep reports them for the dataset."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels([HEADER_LABELS.get(name, name) for name in COLUMNS])
        for column, name in enumerate(COLUMNS):
            if name in COLUMN_TIPS:
                self.horizontalHeaderItem(column).setToolTip(COLUMN_TIPS[name])

    def set_specs(self, specs: list[Any], image_side: int) -> None:
        self.removeRows(0, self.rowCount())
        for spec in specs:
            size = spec.input_size_for(image_side)
            row = [
                _cell(spec.name, tip=spec.description),
                _cell(spec.family),
                _cell(str(spec.year), spec.year),
                _cell("…", -1),
                _cell("…", -1),
                _cell("…", -1),
                _cell("…" if spec.pretrained else "–", -1),
                _cell("…" if spec.pretrained else "–", -1),
                _cell("…" if spec.pretrained else "–", -1),
                _cell("…", -1),
                _cell(f"{size}px", size),
                _cell("yes" if spec.pretrained else "–"),
            ]
            row[0].setData(spec.name, NameRole)
            self.appendRow(row)

    def reset_sizes(self, specs: dict[str, Any], image_side: int) -> None:
        """Blank the Params/MACs columns and set the Input column for a new dataset until the sweep refills."""
        for source_row in range(self.rowCount()):
            spec = specs.get(self.item(source_row, 0).data(NameRole))
            for column in _SWEPT:
                self.item(source_row, column).setText("…")
                self.item(source_row, column).setData(-1, SortRole)
            if spec is not None:
                self._set_input_size(source_row, spec.input_size_for(image_side))

    def show_sizes(self, row: ZooRow, channels: int) -> None:
        """Fill in one model's parameters, MACs and training size from the sweep."""
        for source_row in range(self.rowCount()):
            if self.item(source_row, 0).data(NameRole) != row.name:
                continue
            tip = row.error or f"at {row.img_size}×{row.img_size}×{channels}"
            for column, value in ((PARAMS_COLUMN, row.params), (MACS_COLUMN, row.macs)):
                item = self.item(source_row, column)
                item.setText(human_count(value))
                item.setData(-1 if value is None else value, SortRole)
                item.setToolTip(tip if value is None else f"{value:,} {tip}")
            self._set_number(source_row, DEPTH_COLUMN, row.depth, "{:d}", "")
            source = f"ImageNet-1K, from the {row.metrics_source}" if row.metrics_source else ""
            if row.pretrained:
                self._set_number(source_row, SIZE_COLUMN, row.weights_mb, "{:.1f}", "")
                self._set_number(source_row, TOP1_COLUMN, row.top1, "{:.1f}%", source)
                self._set_number(source_row, TOP5_COLUMN, row.top5, "{:.1f}%", source)
            if row.ms_per_image is not None:
                self._set_number(
                    source_row, SPEED_COLUMN, row.ms_per_image, "{:.1f}", f"measured here at {row.img_size}px"
                )
            self._set_input_size(source_row, row.img_size)
            return

    def _set_number(self, source_row: int, column: int, value: Any, form: str, tip: str) -> None:
        item = self.item(source_row, column)
        item.setText("–" if value is None else form.format(value))
        item.setData(-1 if value is None else value, SortRole)
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        item.setToolTip(tip)

    def value(self, name: str, column: int) -> str:
        """The text of `name`'s cell in `column` (as the table shows it)."""
        for source_row in range(self.rowCount()):
            if self.item(source_row, 0).data(NameRole) == name:
                return self.item(source_row, column).text()
        return ""

    def _set_input_size(self, source_row: int, size: int) -> None:
        item = self.item(source_row, INPUT_COLUMN)
        item.setText(f"{size}px")
        item.setData(size, SortRole)


class ZooFilter(QSortFilterProxyModel):
    """Case-insensitive search over name, family, year and description; optionally only models with weights."""

    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(SortRole)
        self._text = ""
        self.pretrained_only = False

    def set_search(self, text: str, pretrained_only: bool) -> None:
        def change() -> None:
            self._text, self.pretrained_only = text.strip().lower(), pretrained_only

        refilter(self, change)

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        model = self.sourceModel()
        name_item = model.item(source_row, 0)
        if self.pretrained_only and model.item(source_row, PRETRAINED_COLUMN).text() != "yes":
            return False
        year = model.item(source_row, COLUMNS.index("Year"))  # the search box suggests '2014'
        haystack = " ".join(
            [name_item.text(), model.item(source_row, 1).text(), year.text() if year else "", name_item.toolTip()]
        ).lower()
        return all(word in haystack for word in self._text.split())

    def names(self) -> list[str]:
        """Model names in the order the table shows them (after search and sort)."""
        return [self.index(r, 0).data(NameRole) for r in range(self.rowCount())]


def zoo_view(proxy: ZooFilter) -> QTableView:
    """A read-only, single-selection table over the filter, sorted by family; every column as wide as its
    contents (the panel gives the table the width they need, `needed_width`)."""
    table = QTableView()
    table.setModel(proxy)
    table.setSortingEnabled(True)
    table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(22)
    table.setAlternatingRowColors(True)
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table


def needed_width(table: QTableView) -> int:
    """The width at which every column of `table` shows whole: contents or header, whichever is wider."""
    header = table.horizontalHeader()
    columns = sum(
        max(table.sizeHintForColumn(column), header.sectionSizeHint(column))
        for column in range(header.count())
        if not header.isSectionHidden(column)
    )
    return columns + table.verticalScrollBar().sizeHint().width() + 2 * table.frameWidth()
