"""The dataset the window opens once it is on screen: the folders it was started with, else the last
dataset, else (on the very first launch only) an offer of the bundled sample dataset."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from workbench.app.window.settings import AppSettings, sample_dataset_path

SAMPLE_OFFER_NAME = "sampleOffer"


def folders_to_open(initial_folders: list[str] | None, settings: AppSettings) -> list[str]:
    """The folders given at start, else those of the last dataset that still exist."""
    return initial_folders or [f for f in settings.last_dataset() if os.path.isdir(f)]


def offer_sample_dataset(parent: QWidget, settings: AppSettings, open_sample: Callable[[], None]) -> None:
    """Ask (once ever, without blocking) whether to open the sample dataset; `open_sample()` if yes."""
    settings.set_sample_offered(True)
    if not sample_dataset_path().is_dir():
        return
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Welcome to CNN Workbench",
        "Start with the bundled sample dataset (Fashion-MNIST: clothing pictures in 10 classes)?\n\n"
        "You can also drag folders of your own labeled images onto the window at any time.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        parent,
    )
    box.setObjectName(SAMPLE_OFFER_NAME)
    yes = box.button(QMessageBox.StandardButton.Yes)
    yes.setText("Open the sample dataset")
    box.button(QMessageBox.StandardButton.No).setText("Not now")
    box.finished.connect(lambda _result: open_sample() if box.clickedButton() is yes else None)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
