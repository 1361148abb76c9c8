"""The training panel's log pane: read-only, time-stamped lines, the newest LOG_LIMIT kept."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QPlainTextEdit, QWidget

LOG_LIMIT = 5000  # lines kept in the log pane


class RunLog(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(LOG_LIMIT)
        self.setPlaceholderText("Run log: choices the engine made, epochs, checkpoints, skipped files…")

    def add(self, text: str) -> None:
        self.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")
