"""File → Export…: a run's model as ONNX (dynamic batch), TorchScript, or safetensors weights + JSON metadata.

The export and its numerical check against PyTorch (`export_run`) run in a worker while a busy bar shows;
the dialog then reports the file written and the largest difference between the two models' outputs.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.app.qt.run_picker import RunPicker
from workbench.app.qt.workers import Failure, run_in_background

FORMATS = {
    "onnx": "ONNX (dynamic batch; onnxruntime, other frameworks)",
    "torchscript": "TorchScript (C++ / PyTorch without Python code)",
    "safetensors": "safetensors weights + JSON metadata",
}


def export(run_id: str, format: str, out: str | None) -> Any:  # worker thread: imports torch
    from workbench.engine.export import export_run

    return export_run(run_id, format, out or None)


class ExportDialog(QDialog):
    exported = Signal(object)  # ExportResult
    failed = Signal(str)

    def __init__(self, run_id: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.setObjectName("exportDialog")
        self.result_value: Any = None
        self.busy = False

        self.runs = RunPicker()
        self.runs.refresh(select=run_id)
        self.format = QComboBox()
        for key, text in FORMATS.items():
            self.format.addItem(text, key)
        self.out = QLineEdit()
        self.out.setPlaceholderText("default: the run's exports/ folder")
        self.out.setToolTip("A folder, or a file name with the format's extension")
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda: self._browse())
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Run:", self.runs)
        form.addRow("Format:", self.format)
        form.addRow("Save to:", out_row)

        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.hide()
        self.message = QLabel("The exported model is checked against PyTorch on a few images.")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(lambda: self.start_export())
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.busy_bar)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(620, 220)

    def set_format(self, key: str) -> None:
        self.format.setCurrentIndex(self.format.findData(key))

    def _browse(self) -> None:
        record = self.runs.current_record()
        exports = os.path.join(record.run_dir, "exports") if record is not None else None
        typed = os.path.dirname(self.out.text()) if os.path.splitext(self.out.text())[1] else self.out.text()
        start = dialogs.start_folder(typed if os.path.isdir(typed) else exports)
        folder = QFileDialog.getExistingDirectory(self, "Export into folder", start)
        if folder:
            dialogs.remember_folder(folder)
            self.out.setText(folder)

    def start_export(self) -> None:
        run_id = self.runs.current_run_id()
        if not run_id:
            self.message.setText("No run to export: train a model first.")
            return
        if self.busy:
            return
        self.busy = True
        self.export_button.setEnabled(False)
        self.busy_bar.show()
        self.message.setText(f"Exporting {run_id} as {self.format.currentData()} and checking it…")
        run_in_background(
            self,
            export,
            run_id,
            self.format.currentData(),
            self.out.text().strip() or None,
            on_done=self._done,
            on_error=self._failed,
            on_finished=self._idle,
        )

    def _idle(self) -> None:
        self.busy = False
        self.export_button.setEnabled(True)
        self.busy_bar.hide()

    def _done(self, result: Any) -> None:
        self.result_value = result
        self.message.setText(
            f"Saved <b>{result.path}</b><br>metadata {result.metadata_path}<br>"
            f"max |difference| from PyTorch on {result.check_batch} images: <b>{result.max_abs_diff:.2e}</b> "
            f"(tolerance {result.tolerance:.0e})"
        )
        self.exported.emit(result)

    def _failed(self, failure: Failure) -> None:
        self.message.setText(f"<b>Export failed:</b> {failure.message}")
        self.failed.emit(failure.message)
        dialogs.show_error(
            self, "Export failed", failure.message, "" if failure.is_user_error else failure.details
        )
