"""The dataset browser's curation buttons: exclude the selected image or move it to another class, each after
the user confirms, and undo, all through a `Curator`; the thumbnail model follows every move."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from workbench.app.dataset.thumbnails import ThumbItem, ThumbnailModel
from workbench.app.qt import dialogs
from workbench.engine.data.curation import Curator, FileMove
from workbench.engine.errors import WorkbenchError
from workbench.engine.names import display_name


class CurationActions(QWidget):
    """Acts on `selected_item()`; `curated` carries a message once a file has moved (or moved back)."""

    curated = Signal(str)
    status_message = Signal(str)
    moved = Signal(object, bool)  # FileMove, undone: the map and the review follow files by it

    def __init__(
        self,
        thumbnails: ThumbnailModel,
        selected_item: Callable[[], ThumbItem | None],
        parent: QWidget | None = None,
    ):
        super().__init__(parent)
        self.curator = Curator()
        self._classes: list[str] = []
        self._thumbnails = thumbnails
        self._selected_item = selected_item
        self._locked = False
        self._read_only = ""  # why this dataset's files must not move ("" when they may)
        self.exclude_button = QPushButton("Exclude from training")
        self.exclude_button.setToolTip(
            "Move the file into a hidden .excluded folder (after confirmation; undoable)"
        )
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.move_target = QComboBox()
        self.move_button = QPushButton("Move to class")
        self.move_button.setToolTip(
            "Move the file into the chosen class's folder (after confirmation; undoable)"
        )
        self.move_button.clicked.connect(self.move_selected)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last exclusion or move (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        self._tips = {
            button: button.toolTip() for button in (self.exclude_button, self.move_button, self.move_target)
        }
        self.read_only_label = QLabel()
        self.read_only_label.setObjectName("hintLabel")
        self.read_only_label.setWordWrap(True)
        self.read_only_label.hide()
        move_row = QHBoxLayout()
        move_row.addWidget(self.move_button)
        move_row.addWidget(self.move_target, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)  # its buttons line up with the preview above them
        layout.addWidget(self.exclude_button)
        layout.addLayout(move_row)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.read_only_label)

    def set_classes(self, classes: list[str]) -> None:
        """The classes an image can be moved to.

        The combo box shows `display_name`s; the on-disk names stay here, by row: Qt drops the lone
        surrogates of a name that is not UTF-8 (from its text and its item data alike), and a move to the
        mangled name would make a new folder.
        """
        self._classes = list(classes)
        self.move_target.clear()
        self.move_target.addItems([display_name(name) for name in classes])

    def target_class(self) -> str:
        """The on-disk name of the class chosen in the combo box ("" when none)."""
        row = self.move_target.currentIndex()
        return self._classes[row] if 0 <= row < len(self._classes) else ""

    def set_locked(self, locked: bool) -> None:
        """While a run reads the files, curation (which moves them) waits."""
        self._locked = locked
        self.update_buttons()

    def set_read_only(self, reason: str) -> None:
        """A dataset whose files must not move (installed sample, read-only folder): curation is off, and
        its buttons and a note say why."""
        self._read_only = reason
        self.read_only_label.setText(f"Curation is off: {reason}" if reason else "")
        self.read_only_label.setVisible(bool(reason))
        for widget, tip in self._tips.items():
            widget.setToolTip(reason or tip)
        self.update_buttons()

    @property
    def read_only(self) -> str:
        return self._read_only

    def update_buttons(self) -> None:
        item = self._selected_item()
        usable = item is not None and not item.excluded and not self._locked and not self._read_only
        self.exclude_button.setEnabled(usable)
        self.move_button.setEnabled(usable)
        self.move_target.setEnabled(usable)
        self.undo_button.setEnabled(self.curator.can_undo() and not self._locked)

    def exclude_selected(self, *, confirmed: bool = False) -> None:
        self.exclude_item(self._selected_item(), confirmed=confirmed)

    def exclude_item(self, item: ThumbItem | None, *, confirmed: bool = False) -> FileMove | None:
        """Exclude `item` (after the user confirms, unless `confirmed`); the move, or None if nothing moved."""
        if item is None or item.excluded or self._locked:
            return None
        if self._read_only:
            self.status_message.emit(f"Cannot exclude: {self._read_only}")
            return None
        if not confirmed and not dialogs.confirm(
            self,
            "Exclude image",
            f"Move\n{display_name(item.path)}\ninto a hidden '.excluded' folder so training skips it?\n\n"
            "You can undo this (Ctrl+Z).",
        ):
            return None
        return self._apply(lambda: self.curator.exclude(item.path, item.class_name), item)

    def move_selected(self, *, confirmed: bool = False) -> None:
        self.move_item(self._selected_item(), self.target_class(), confirmed=confirmed)

    def move_item(self, item: ThumbItem | None, target: str, *, confirmed: bool = False) -> FileMove | None:
        """Move `item` to class `target` (after the user confirms, unless `confirmed`); the move, or None."""
        if self._read_only:
            self.status_message.emit(f"Cannot move: {self._read_only}")
            return None
        if item is None or item.excluded or self._locked or not target or target == item.class_name:
            if item is not None and target == item.class_name:
                self.status_message.emit(f"The image is already in class '{display_name(target)}'.")
            return None
        if not confirmed and not dialogs.confirm(
            self,
            "Move image",
            f"Move\n{display_name(item.path)}\nfrom class '{display_name(item.class_name)}' to "
            f"'{display_name(target)}'?\n\nYou can undo this (Ctrl+Z).",
        ):
            return None
        return self._apply(lambda: self.curator.relabel(item.path, item.class_name, target), item)

    def _apply(self, action: Callable[[], FileMove], item: ThumbItem) -> FileMove | None:
        try:
            move = action()
        except WorkbenchError as exc:
            dialogs.show_error(self, "Cannot change the dataset", str(exc))
            return None
        if move.action == "exclude":
            new_item = ThumbItem(str(move.destination), item.class_name, item.split, excluded=True)
        else:
            new_item = ThumbItem(str(move.destination), move.new_class, item.split)
        self._thumbnails.update_item(item.path, new_item)
        self.moved.emit(move, False)
        self.curated.emit(
            f"{'Excluded' if move.action == 'exclude' else 'Moved'} {display_name(Path(item.path).name)} "
            f"({move.detail})."
        )
        return move

    def undo(self) -> None:
        if self._locked or not self.curator.can_undo():
            return
        try:
            move = self.curator.undo()
        except WorkbenchError as exc:
            dialogs.show_error(self, "Cannot undo", str(exc))
            return
        if move is None:
            return
        old_class = move.old_class  # on-disk name: the thumbnail items are keyed by it
        current = self._thumbnails.row_of(str(move.destination))
        split = self._thumbnails.item(current).split if current is not None else "train"
        self._thumbnails.update_item(str(move.destination), ThumbItem(str(move.source), old_class, split))
        self.moved.emit(move, True)
        self.curated.emit(
            f"Undone: {display_name(Path(move.source).name)} is back in '{display_name(old_class)}'."
        )
