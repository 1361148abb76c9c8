"""The inspector's "Grad-CAM" page: where the evidence for a class (the predicted one by default) lies in the
image, as a heatmap over it with an opacity slider."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QSlider, QVBoxLayout, QWidget

from workbench.app.inspector import work
from workbench.app.inspector.side_panel import LARGE_SIDE, SMALL_SIDE
from workbench.app.qt.qimages import array_to_pixmap


class GradCamPage(QWidget):
    class_chosen = Signal()  # the user picked a class in the list: its Grad-CAM is wanted

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.cam: work.CamResult | None = None
        self.cam_class = QComboBox()
        self.cam_class.addItem("predicted class")
        self.cam_class.setToolTip("Where is the evidence for this class?")
        self.cam_class.activated.connect(lambda _i: self.class_chosen.emit())
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(50)
        self.opacity.setToolTip("Heatmap opacity")
        self.opacity.valueChanged.connect(self.draw)
        self.cam_label = QLabel()
        self.cam_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.cam_label.setMinimumSize(SMALL_SIDE, SMALL_SIDE)
        self.cam_info = QLabel("")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        form.addRow("Class:", self.cam_class)
        form.addRow("Opacity:", self.opacity)
        layout.addLayout(form)
        layout.addWidget(self.cam_info)
        layout.addWidget(self.cam_label, 1)

    def set_classes(self, classes: list[str]) -> None:
        self.cam_class.blockSignals(True)
        self.cam_class.clear()
        self.cam_class.addItem("predicted class")
        self.cam_class.addItems(classes)
        self.cam_class.blockSignals(False)

    def class_index(self) -> int | None:
        """The class chosen, or None for the predicted one."""
        index = self.cam_class.currentIndex() - 1  # item 0 is "predicted class"
        return index if index >= 0 else None

    def show_result(self, result: work.CamResult) -> None:
        self.cam = result
        self.cam_info.setText(
            f"Evidence for <b>{result.class_name}</b> (p = {result.probability:.1%}) at layer {result.layer}"
        )
        self.draw()

    def draw(self) -> None:
        if self.cam is None:
            return
        overlay = work.cam_overlay(self.cam, self.opacity.value() / 100)
        self.cam_label.setPixmap(array_to_pixmap(overlay, 2 * LARGE_SIDE, smooth=True))
