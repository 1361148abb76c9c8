"""The dataset browser's image grid: the virtualized thumbnail grid with its class and split filters, or a hint
on what to drop while no dataset is loaded."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.dataset.scan import DatasetSummary
from workbench.app.dataset.thumbnail_filter import ThumbnailFilter
from workbench.app.dataset.thumbnails import ALL, ThumbItem, ThumbnailDelegate, ThumbnailModel

DROP_HINT = (
    "Drop a folder of labeled images here\n\n"
    "• a folder with one sub-folder per class\n"
    "• or with train / val / test sub-folders, each holding class folders\n"
    "• or several folders at once: each becomes one class"
)


class ImageGrid(QWidget):
    """`thumbnails` (every image) seen through `filter_model` (the chosen class and split) in `grid`."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.thumbnails = ThumbnailModel(parent=self)
        self.filter_model = ThumbnailFilter(self)
        self.filter_model.setSourceModel(self.thumbnails)
        self.class_filter = QComboBox()
        self.split_filter = QComboBox()
        for combo in (self.class_filter, self.split_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self.class_filter.currentTextChanged.connect(self.apply_filter)
        self.split_filter.currentTextChanged.connect(self.apply_filter)
        self.shown_label = QLabel()
        self.shown_label.setObjectName("hintLabel")
        self.shown_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.shown_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Class"))
        filters.addWidget(self.class_filter)
        filters.addWidget(QLabel("Split"))
        filters.addWidget(self.split_filter)
        filters.addWidget(self.shown_label, 1)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)  # lets the view lay out 70k rows without asking each one
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(500)
        side = self.thumbnails.loader.side
        self.grid.setIconSize(QSize(side, side))
        self.grid.setGridSize(QSize(side + 8, side + 8))
        self.grid.setItemDelegate(ThumbnailDelegate(self.grid))
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setModel(self.filter_model)
        # while a map selection is shown: how many, and the way back to every image
        self.selection_label = QLabel()
        self.selection_label.setObjectName("hintLabel")
        self.show_all_button = QPushButton("Show all images")
        self.show_all_button.clicked.connect(lambda: self.show_rows(None))
        self.selection_bar = QWidget()
        selection_row = QHBoxLayout(self.selection_bar)
        selection_row.setContentsMargins(0, 0, 0, 0)
        selection_row.addWidget(self.selection_label, 1)
        selection_row.addWidget(self.show_all_button)
        self.selection_bar.hide()
        self.drop_hint = QLabel(DROP_HINT)
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setWordWrap(True)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.centre_stack = QStackedWidget()
        self.centre_stack.addWidget(self.drop_hint)
        self.centre_stack.addWidget(self.grid)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(filters)
        layout.addWidget(self.selection_bar)
        layout.addWidget(self.centre_stack, 1)

    def show_dataset(self, summary: DatasetSummary) -> None:
        """Show `summary`'s images and offer its classes and splits as filters (applied by `apply_filter`)."""
        self.selection_bar.hide()
        # the scan's list and index as they are: no per-item work on the UI thread for 70k images
        self.thumbnails.set_items(summary.items, summary.rows_by_path or None)
        self.centre_stack.setCurrentWidget(self.grid)
        for combo, values in (
            (self.class_filter, summary.classes),
            (self.split_filter, summary.present_splits),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([ALL, *values])
            combo.blockSignals(False)

    def apply_filter(self) -> None:
        self.filter_model.set_filter(
            self.class_filter.currentText() or ALL, self.split_filter.currentText() or ALL
        )
        self.shown_label.setText(f"{self.filter_model.rowCount():,} of {self.thumbnails.rowCount():,} images")

    def show_rows(self, rows: list[int] | None, what: str = "selected on the map") -> None:
        """Show only these images (source rows), e.g. a box drawn on the map; None: every image again."""
        self.filter_model.set_chosen_rows(rows)
        self.selection_bar.setVisible(rows is not None)
        if rows is not None:
            self.selection_label.setText(f"{len(rows):,} image{'s' if len(rows) != 1 else ''} {what}")
        self.apply_filter()

    def selected_item(self) -> ThumbItem | None:
        indexes = self.grid.selectionModel().selectedIndexes()
        if not indexes:
            return None
        return self.thumbnails.item(self.filter_model.mapToSource(indexes[0]).row())

    def select_row(self, row: int) -> None:
        """Select the `row`-th visible thumbnail (keyboard users and tests)."""
        self.grid.setCurrentIndex(self.filter_model.index(row, 0))
