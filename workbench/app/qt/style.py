"""The app's look: Fusion style (the same on every platform) plus a few touches of style sheet."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

STYLE_SHEET = """
QTabBar::tab { padding: 6px 18px; font-weight: 600; }
QGroupBox { font-weight: 600; margin-top: 10px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 3px; }
QPushButton#startButton { font-weight: 700; padding: 4px 22px; }
QPushButton#startButton:enabled { background: #2e7d32; color: white; border: 1px solid #1b5e20; border-radius: 3px; }
QPushButton#startButton:enabled:hover { background: #388e3c; }
QLabel#warningLabel { color: #9a5b00; }
QLabel#errorLabel { color: #b00020; }
QLabel#hintLabel { color: #555555; }
QLabel#dropHint { color: #666666; font-size: 15px; border: 2px dashed #b8b8b8; border-radius: 10px; padding: 24px; }
"""


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
