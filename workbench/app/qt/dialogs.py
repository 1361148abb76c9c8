"""Small dialogs shared by the panels: errors with expandable details, confirmations, cancellable progress,
the file filter of the image pickers, the folder every file dialog starts in, and the hook that shows any
exception escaping a slot as an error dialog.

Each helper builds the dialog, then `open()`s it (window-modal, non-blocking) unless told to `exec()`, so
tests and the event loop keep running; the dialog stays reachable through its parent for inspection.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from workbench.app.qt.wording import said

ERROR_DIALOG_NAME = "errorDialog"
# The file dialogs' filter wherever the user picks images to look at (predictions, the inspector).
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp)"

log = logging.getLogger("workbench.app")

# Where file dialogs start: the dataset the user has open, else the folder of the last file picked.
_start_folders: dict[str, str | None] = {"dataset": None, "last": None}


def set_dataset_folder(folder: str | None) -> None:
    """The dataset folder now open (the window calls this when a dataset loads)."""
    _start_folders["dataset"] = folder or None


def remember_folder(path: str | os.PathLike | None) -> None:
    """A file or folder the user just picked: the next dialog without a dataset starts next to it."""
    if path:
        path = os.fspath(path)
        _start_folders["last"] = path if os.path.isdir(path) else os.path.dirname(path)


def start_folder(dataset_folder: str | None = None, file_name: str = "") -> str:
    """The folder a file dialog opens in: the current dataset's folder (`dataset_folder`, else the one the
    window registered), else the last folder used, else home; `file_name` is appended for save dialogs."""
    for candidate in (dataset_folder, _start_folders["dataset"], _start_folders["last"]):
        if candidate and os.path.isdir(candidate):
            folder = candidate
            break
    else:
        folder = str(Path.home())
    return os.path.join(folder, file_name) if file_name else folder


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """An error the user can read; a traceback, if any, sits behind "Show Details…". Options the engine's
    message names are said as the app's controls (wording.py)."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, said(message), QMessageBox.StandardButton.Ok, parent)
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


def exception_message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


UNEXPECTED_TITLE = "Unexpected error"


def show_exception(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
    parent: QWidget | None = None,
    title: str = UNEXPECTED_TITLE,
) -> QMessageBox | None:
    """An exception nobody caught (in a slot, a timer, an event handler), or a bug in a background job:
    logged, and shown as an error dialog with the traceback behind "Show Details…", so a button that fails
    never just does nothing. `title` names what failed where that is known (a job: "Model summary failed").
    UI thread only (`install_exception_hook` brings other threads' exceptions here)."""
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("Unexpected error (%s):\n%s", title, details)
    return _show_unexpected(exception_message(exc), details, parent, title)


def _show_unexpected(
    message: str, details: str, parent: QWidget | None = None, title: str = UNEXPECTED_TITLE
) -> QMessageBox | None:
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        return None
    return show_error(
        parent or QApplication.activeWindow(),
        title,
        f"Something went wrong: {message}\n\nThe app keeps running; the details below help to report it.",
        details,
    )


class _UnexpectedErrors(QObject):
    """Carries an exception's text to the UI thread: a dialog must never be built in a worker thread."""

    raised = Signal(str, str)  # message, details


_reporter: _UnexpectedErrors | None = None


def install_exception_hook() -> Callable[..., None]:
    """Route uncaught exceptions (PySide6 hands those raised in slots to `sys.excepthook`) to an error dialog
    on the UI thread, after logging them; returns the previous hook. Keyboard interrupts still end the app.
    Call it on the UI thread, once the QApplication exists."""
    global _reporter
    previous = sys.excepthook
    _reporter = _UnexpectedErrors()  # lives in the UI thread: its signal is queued from any other
    _reporter.raised.connect(lambda message, details: _show_unexpected(message, details))
    reporter = _reporter

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            details = "".join(traceback.format_exception(exc_type, exc, tb))
            log.error("Unexpected error:\n%s", details)
            reporter.raised.emit(exception_message(exc), details)
        except Exception:  # never let the hook itself fail silently: fall back to the default printout
            previous(exc_type, exc, tb)

    sys.excepthook = hook
    return previous
