"""How the user picks dataset folders: dropping them on the window, or the File menu's folder dialogs."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QFileDialog, QWidget

DROP_FOLDERS_HINT = "Drop folders, not files: a folder of class folders, or one folder per class."


def dropped_folders(urls: list[Any]) -> list[str]:
    """The local folders among dropped URLs (files and remote URLs are ignored)."""
    return [url.toLocalFile() for url in urls if url.isLocalFile() and os.path.isdir(url.toLocalFile())]


def accept_folder_drag(event: QDragEnterEvent) -> None:
    """Let a drag in only if it carries at least one local folder."""
    if event.mimeData().hasUrls() and dropped_folders(event.mimeData().urls()):
        event.acceptProposedAction()
    else:
        event.ignore()


def take_dropped_folders(event: QDropEvent) -> list[str]:
    """The dropped folders; the drop is accepted if there are any, else ignored."""
    folders = dropped_folders(event.mimeData().urls())
    if folders:
        event.acceptProposedAction()
    else:
        event.ignore()
    return folders


def choose_dataset_folder(parent: QWidget, start: str) -> str:
    """One folder (of class folders, or of split folders) from the native dialog; "" if cancelled."""
    return QFileDialog.getExistingDirectory(parent, "Open a dataset folder", start)


def choose_class_folders(parent: QWidget, start: str = "") -> list[str]:
    """Qt's native dialog picks one folder; the non-native one allows several (each a class). It opens in
    `start` (the window passes the dataset's folder; "" = Qt's choice, the process's working folder)."""
    dialog = QFileDialog(parent, "Choose one folder per class", start)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    for view in dialog.findChildren(QWidget):  # enable multi-selection in the dialog's views
        if hasattr(view, "setSelectionMode") and hasattr(view, "selectionMode"):
            view.setSelectionMode(view.SelectionMode.ExtendedSelection)
    if dialog.exec():
        return [f for f in dialog.selectedFiles() if os.path.isdir(f)]
    return []
