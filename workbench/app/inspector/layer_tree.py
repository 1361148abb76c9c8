"""The inspector's layer tree: the model's modules with their type and output shape, of which only the layers
the inspector can read are selectable."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

LAYER_ROLE = Qt.ItemDataRole.UserRole


def shape_text(shape: list[int] | None) -> str:
    return "×".join(str(size) for size in shape) if shape else "–"


class LayerTree(QTreeWidget):
    layer_chosen = Signal()  # an inspectable layer became current, or the current one was selected again

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setHeaderLabels(["layer", "type", "output"])
        self.setColumnWidth(0, 150)
        self.setColumnWidth(1, 90)
        self.currentItemChanged.connect(self._on_item)

    def fill(self, root: Any, muted: QBrush) -> None:
        """The engine's layer tree (`root`), with the layers that cannot be inspected greyed by `muted`."""
        self.blockSignals(True)
        self.clear()

        def add(node: Any, parent: QTreeWidget | QTreeWidgetItem) -> None:
            label = node.name.rsplit(".", 1)[-1] if node.name else "model"
            output = shape_text(node.output_shape) + (f" (1st of {node.calls} calls)" if node.calls > 1 else "")
            item = QTreeWidgetItem(parent, [label, node.type, output])
            item.setData(0, LAYER_ROLE, node.name)
            tip = f"{node.name or 'the whole model'} · {node.kind} · {node.params:,} parameters"
            if node.calls > 1:  # torchvision's ResNet blocks reuse one ReLU, for one
                tip += (
                    f"\nThe model runs this module {node.calls} times per image: its feature maps are its "
                    "first call's output"
                )
            for column in range(3):
                item.setToolTip(column, tip)
            if not node.inspectable or not node.name:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                item.setForeground(0, muted)
            for child in node.children:
                add(child, item)

        add(root, self)
        self.expandToDepth(1)
        self.blockSignals(False)

    def layer_items(self) -> list[QTreeWidgetItem]:
        """The tree's inspectable layers in order (parents before children)."""
        found: list[QTreeWidgetItem] = []

        def walk(item: QTreeWidgetItem) -> None:
            if item.flags() & Qt.ItemFlag.ItemIsSelectable:
                found.append(item)
            for index in range(item.childCount()):
                walk(item.child(index))

        for index in range(self.topLevelItemCount()):
            walk(self.topLevelItem(index))
        return found

    def layer_names(self) -> list[str]:
        return [item.data(0, LAYER_ROLE) for item in self.layer_items()]

    def current_layer(self) -> str | None:
        item = self.currentItem()
        return item.data(0, LAYER_ROLE) if item is not None else None

    def select_layer(self, name: str) -> bool:
        for item in self.layer_items():
            if item.data(0, LAYER_ROLE) == name:
                if item is self.currentItem():
                    self.layer_chosen.emit()  # no currentItemChanged for the current item: show it anyway
                else:
                    self.setCurrentItem(item)
                return True
        return False

    def step_layer(self, step: int) -> None:
        """The next (step 1) or previous (-1) inspectable layer."""
        items = self.layer_items()
        if not items:
            return
        current = self.currentItem()
        index = items.index(current) + step if current in items else (0 if step > 0 else len(items) - 1)
        item = items[max(0, min(index, len(items) - 1))]
        self.scrollToItem(item)
        self.setCurrentItem(item)

    def _on_item(self, current: QTreeWidgetItem | None, _previous: Any) -> None:
        if current is not None and current.flags() & Qt.ItemFlag.ItemIsSelectable:
            self.layer_chosen.emit()
