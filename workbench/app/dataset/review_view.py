"""The dataset browser's Review page: the suspects the engine found (label errors, duplicates and leaks, outliers),
one per row with its thumbnail, label and suggestion, answered with one key each:

    K  keep — it is fine; not asked again
    R  relabel to the suggested class (through the curation: the file moves, undoable with Ctrl+Z)
    X  exclude (through the curation: into the class's hidden .excluded folder, undoable)

The key press is the user's decision about that one image, so no confirmation dialog follows it; Undo puts the
file back and the question comes back with it. Answers are kept per dataset by the engine
(`ReviewDecisions`), so a new review does not ask again. Nothing moves without a key press or a button.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.app.dataset.image_preview import ScaledImageLabel
from workbench.app.dataset.thumbnails import ThumbnailModel, open_for_display
from workbench.engine.names import display_name
from workbench.engine.review.decisions import ReviewDecisions
from workbench.engine.review.suspects import KIND_NAMES, Suspect

ALL_KINDS = "all kinds"
DETAIL_SIDE = 240


class SuspectModel(QAbstractListModel):
    """The open suspects, as rows; thumbnails come from the grid's model (its cache and background loader)."""

    def __init__(self, thumbnails: ThumbnailModel, parent: Any = None):
        super().__init__(parent)
        self._thumbnails = thumbnails
        self.suspects: list[Suspect] = []
        self._rows_of: dict[str, list[int]] = {}  # path -> rows: a loaded thumbnail refreshes its rows only
        thumbnails.dataChanged.connect(self._on_thumbnail_changed)

    def set_suspects(self, suspects: list[Suspect]) -> None:
        self.beginResetModel()
        self.suspects = list(suspects)
        self._rows_of = {}
        for row, suspect in enumerate(self.suspects):
            self._rows_of.setdefault(suspect.path, []).append(row)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.suspects)

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid() or index.row() >= len(self.suspects):
            return None
        suspect = self.suspects[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return describe(suspect)
        if role == Qt.ItemDataRole.DecorationRole:
            row = self._thumbnails.row_of(suspect.path)
            return self._thumbnails.data(self._thumbnails.index(row), role) if row is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{display_name(suspect.path)}\n{suspect.reason}"
        return None

    def _on_thumbnail_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, _roles: Any = None
    ) -> None:
        if not self.suspects:
            return
        for source_row in range(top_left.row(), min(bottom_right.row() + 1, self._thumbnails.rowCount())):
            for row in self._rows_of.get(self._thumbnails.item(source_row).path, ()):
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def describe(suspect: Suspect) -> str:
    """One row of the list: kind, file, label → suggestion, and why."""
    what = f"{KIND_NAMES[suspect.kind]} · {display_name(os.path.basename(suspect.path))}"
    label = display_name(suspect.label)
    if suspect.suggested:
        advice = f"'{label}' → '{display_name(suspect.suggested)}'?"
    else:
        advice = f"'{label}' · exclude?"
    return f"{what}\n{advice}  {suspect.reason}"


class _SuspectList(QListView):
    """The list, answering K / R / X itself (a key press on the list needs no window-wide shortcut)."""

    def __init__(self, on_key: Callable[[str], bool]) -> None:
        super().__init__()
        self._on_key = on_key

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key = {Qt.Key.Key_K: "keep", Qt.Key.Key_R: "relabel", Qt.Key.Key_X: "exclude"}.get(
            Qt.Key(event.key())
        )
        if (
            key is not None
            and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            and self._on_key(key)
        ):
            event.accept()
            return
        super().keyPressEvent(event)


class ReviewView(QWidget):
    """`show_suspects(suspects, decisions)`; `action_requested(suspect, action)` for R and X, which the panel
    carries out through the curation and answers with `answered(suspect, action)` when the file moved."""

    action_requested = Signal(object, str)  # Suspect, "relabel" | "exclude"
    status_message = Signal(str)

    def __init__(self, thumbnails: ThumbnailModel, parent: QWidget | None = None):
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._all: list[Suspect] = []
        self.decisions: ReviewDecisions | None = None
        self.read_only = ""

        self.kind_filter = QComboBox()
        self.kind_filter.addItem(ALL_KINDS)
        self.kind_filter.addItems(list(KIND_NAMES.values()))
        self.kind_filter.currentTextChanged.connect(lambda _text: self._refill())
        self.summary_label = QLabel("")
        self.summary_label.setObjectName("hintLabel")
        self.summary_label.setWordWrap(True)
        self.forget_button = QPushButton("Ask again")
        self.forget_button.setToolTip(
            "Forget the answers kept for this dataset, so every suspect is listed again"
        )
        self.forget_button.clicked.connect(self.forget_answers)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.kind_filter)
        top.addWidget(self.summary_label, 1)
        top.addWidget(self.forget_button)

        self.model = SuspectModel(thumbnails, self)
        self.list = _SuspectList(self.answer)
        self.list.setModel(self.model)
        self.list.setIconSize(QSize(thumbnails.loader.side, thumbnails.loader.side))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(True)
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.selectionModel().currentChanged.connect(lambda *_: self._show_current())

        # the current suspect, larger, with its duplicate's other image and the three answers
        self.image = ScaledImageLabel("")
        self.image.setMinimumSize(DETAIL_SIDE // 2, DETAIL_SIDE // 2)
        self.other_image = ScaledImageLabel("")
        self.other_image.setMinimumSize(DETAIL_SIDE // 2, DETAIL_SIDE // 2)
        self.other_caption = QLabel("")
        self.other_caption.setObjectName("hintLabel")
        self.other_caption.setWordWrap(True)
        self.detail = QLabel("")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.keep_button = QPushButton("Keep (K)")
        self.keep_button.setToolTip("The image is fine: keep it as it is and do not ask again")
        self.relabel_button = QPushButton("Relabel (R)")
        self.exclude_button = QPushButton("Exclude (X)")
        self.exclude_button.setToolTip("Move it into its class's hidden .excluded folder (undo: Ctrl+Z)")
        self.keep_button.clicked.connect(lambda: self.answer("keep"))
        self.relabel_button.clicked.connect(lambda: self.answer("relabel"))
        self.exclude_button.clicked.connect(lambda: self.answer("exclude"))
        images = QHBoxLayout()
        images.addWidget(self.image, 1)
        other = QVBoxLayout()
        other.addWidget(self.other_image, 1)
        other.addWidget(self.other_caption)
        images.addLayout(other, 1)
        buttons = QHBoxLayout()
        for button in (self.keep_button, self.relabel_button, self.exclude_button):
            buttons.addWidget(button)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addLayout(images, 1)
        side_layout.addWidget(self.detail)
        side_layout.addLayout(buttons)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self._show_current()

    # ---- content -------------------------------------------------------------------------------
    def show_suspects(self, suspects: list[Suspect], decisions: ReviewDecisions | None) -> None:
        self._all = list(suspects)
        self.decisions = decisions
        self._refill()

    def set_read_only(self, reason: str) -> None:
        """Relabel and exclude are off on a dataset whose files must not move; Keep still works."""
        self.read_only = reason
        self.relabel_button.setToolTip(reason or "Move it to the suggested class's folder (undo: Ctrl+Z)")
        self.exclude_button.setToolTip(
            reason or "Move it into its class's hidden .excluded folder (undo: Ctrl+Z)"
        )
        self._show_current()

    def open_suspects(self) -> list[Suspect]:
        """The suspects listed now (unanswered, of the chosen kind, still where the review found them)."""
        return list(self.model.suspects)

    def _is_open(self, suspect: Suspect) -> bool:
        if self.decisions is not None and self.decisions.decided(suspect.key):
            return False
        row = self._thumbnails.row_of(suspect.path)  # moved or excluded since: nothing left to ask
        return row is not None and not self._thumbnails.item(row).excluded

    def _refill(self, keep_position: int = 0) -> None:
        kind = self.kind_filter.currentText()
        wanted = next((k for k, name in KIND_NAMES.items() if name == kind), None)
        shown = [s for s in self._all if (wanted is None or s.kind == wanted) and self._is_open(s)]
        self.model.set_suspects(shown)
        answered = sum(1 for s in self._all if self.decisions is not None and self.decisions.decided(s.key))
        counts = {k: sum(1 for s in self._all if s.kind == k and self._is_open(s)) for k in KIND_NAMES}
        if not self._all:
            text = "No suspects: no label looks wrong, no near-duplicates, no outliers."
        else:
            text = ", ".join(f"{n} {KIND_NAMES[k]}{'s' if n != 1 else ''}" for k, n in counts.items())
            text += " to review" + (f" · {answered} answered earlier (not shown)" if answered else "")
            text += " · keys: K keep, R relabel to the suggestion, X exclude"
        self.summary_label.setText(text)
        if shown:
            self.list.setCurrentIndex(self.model.index(min(keep_position, len(shown) - 1)))
        self._show_current()

    def current_suspect(self) -> Suspect | None:
        index = self.list.currentIndex()
        return (
            self.model.suspects[index.row()]
            if index.isValid() and index.row() < len(self.model.suspects)
            else None
        )

    def _show_current(self) -> None:
        suspect = self.current_suspect()
        moving = suspect is not None and not self.read_only
        self.keep_button.setEnabled(suspect is not None and self.decisions is not None)
        self.exclude_button.setEnabled(moving)
        self.relabel_button.setEnabled(moving and bool(suspect.suggested))
        self.relabel_button.setText(
            f"Relabel to '{display_name(suspect.suggested)}' (R)"
            if suspect and suspect.suggested
            else "Relabel (R)"
        )
        if suspect is None:
            self.image.set_image(None)
            self.other_image.set_image(None)
            self.other_caption.setText("")
            self.detail.setText("Nothing to review." if self._all else "")
            return
        self.image.set_image(_decoded(suspect.path))
        self.other_image.set_image(_decoded(suspect.other) if suspect.other else None)
        self.other_image.setVisible(bool(suspect.other))  # the suspect alone gets the whole width
        self.other_caption.setText(f"its copy: {display_name(suspect.other)}" if suspect.other else "")
        lines = [
            f"{KIND_NAMES[suspect.kind]}: {display_name(suspect.path)}",
            f"label '{display_name(suspect.label)}' ({suspect.split})"
            + (f"; suggested '{display_name(suspect.suggested)}'" if suspect.suggested else ""),
            suspect.reason,
        ]
        if self.read_only:
            lines.append(f"Relabel and exclude are off: {self.read_only}")
        self.detail.setText("\n".join(lines))

    # ---- answers -------------------------------------------------------------------------------
    def answer(self, action: str) -> bool:
        """The user's answer to the current suspect; True when the key meant something here."""
        suspect = self.current_suspect()
        if suspect is None:
            return False
        if action == "keep":
            if self.decisions is not None:
                self.decisions.set(suspect.key, "keep")
            self.status_message.emit(f"Kept {display_name(os.path.basename(suspect.path))}.")
            self._after_answer()
            return True
        if self.read_only:
            self.status_message.emit(f"Cannot {action}: {self.read_only}")
            return True
        if action == "relabel" and not suspect.suggested:
            self.status_message.emit("No class is suggested for this image: keep it (K) or exclude it (X).")
            return True
        self.action_requested.emit(suspect, action)
        return True

    def answered(self, suspect: Suspect, action: str, new_path: str = "") -> None:
        """The panel moved the file for `action`: file the answer and go on to the next suspect."""
        if self.decisions is not None:
            self.decisions.set(suspect.key, action, moved_to=new_path)
        self._after_answer()

    def _after_answer(self) -> None:
        position = self.list.currentIndex().row()
        self._refill(keep_position=max(0, position))
        self.list.setFocus()

    def forget_answers(self) -> None:
        if self.decisions is None:
            return
        for suspect in self._all:
            self.decisions.forget(suspect.key)
        self._refill()

    def follow_undo(self, restored_path: str) -> None:
        """An undo put `restored_path` back: answers that moved it are forgotten, so it is asked again."""
        if self.decisions is None:
            return
        for key in self.decisions.keys_about(restored_path):
            if self.decisions.get(key) in ("relabel", "exclude"):
                self.decisions.forget(key)
        self._refill(keep_position=max(0, self.list.currentIndex().row()))


def _decoded(path: str) -> Any:
    """The image fitted to DETAIL_SIDE (one small decode per key press), or None if it cannot be read."""
    try:
        image, _ = open_for_display(path, DETAIL_SIDE, upscale=False)
    except Exception:  # noqa: BLE001 - a file gone or broken shows no picture; the row still says which
        return None
    return image
