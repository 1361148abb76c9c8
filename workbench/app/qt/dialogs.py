"""Small dialogs shared by the panels: errors with expandable details, confirmations, cancellable progress,
and the file filter of the image pickers.

Each helper builds the dialog, then `open()`s it (window-modal, non-blocking) unless told to `exec()`, so
tests and the event loop keep running; the dialog stays reachable through its parent for inspection.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

ERROR_DIALOG_NAME = "errorDialog"
# The file dialogs' filter wherever the user picks images to look at (predictions, the inspector).
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)"


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """An error the user can read; a traceback, if any, sits behind "Show Details…"."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName(ERROR_DIALOG_NAME)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def confirm(parent: QWidget | None, title: str, question: str, *, default_yes: bool = False) -> bool:
    """Blocking yes/no question, for actions that change files or end a run."""
    yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
    answer = QMessageBox.question(parent, title, question, yes | no, yes if default_yes else no)
    return answer == yes


def progress_dialog(
    parent: QWidget | None, title: str, label: str, on_cancel: Callable[[], None], maximum: int = 0
) -> QProgressDialog:
    """A window-modal progress dialog whose Cancel button calls `on_cancel`; maximum 0 = busy indicator."""
    dialog = QProgressDialog(label, "Cancel", 0, maximum, parent)
    dialog.setWindowTitle(title)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.canceled.connect(on_cancel)
    dialog.show()
    return dialog
