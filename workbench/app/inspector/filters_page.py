"""The inspector's "Filters" page: the first layer's kernels as RGB tiles and, for a deeper convolution
selected in the tree, its first kernels per input channel."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from workbench.app.inspector import work
from workbench.app.qt.qimages import array_to_pixmap


class FiltersPage(QScrollArea):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.filters_label = QLabel()
        self.filters_title = QLabel("")
        self.deep_filters_label = QLabel()
        self.deep_filters_title = QLabel("")
        page = QWidget()
        layout = QVBoxLayout(page)
        for widget in (
            self.filters_title,
            self.filters_label,
            self.deep_filters_title,
            self.deep_filters_label,
        ):
            layout.addWidget(widget)
        layout.addStretch(1)
        self.setWidget(page)
        self.setWidgetResizable(True)

    def show_filters(self, pictures: work.FilterPictures) -> None:
        self.filters_title.setText(
            f"<b>First layer ({pictures.first_layer})</b>: {pictures.first_count} kernels as images"
        )
        self.filters_label.setPixmap(array_to_pixmap(pictures.first_tiles))
        if pictures.deep_tiles is not None and pictures.deep_shape is not None:
            kernels, inputs = pictures.deep_shape
            self.deep_filters_title.setText(
                f"<b>{pictures.layer}</b>: first {kernels} kernels (rows) × {inputs} input channels "
                "(grey = 0, white positive, black negative)"
            )
            self.deep_filters_label.setPixmap(array_to_pixmap(pictures.deep_tiles))
        else:
            self.deep_filters_title.setText("Select a deeper convolution in the tree to see its kernels.")
            self.deep_filters_label.clear()
