"""Training → Save configuration…: the current settings as a TOML file, and the exact torchrun command
that trains them with DistributedDataParallel on a multi-GPU machine or a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from workbench.app.qt import dialogs


class ClusterDialog(QDialog):
    def __init__(self, config: Any, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Save configuration / train on a cluster")
        self.resize(760, 520)
        self.config = config
        self.saved_path: Path | None = None
        self.toml = QPlainTextEdit(config.to_toml())
        self.toml.setReadOnly(True)
        self.nodes = QSpinBox(minimum=1, maximum=1024, value=1)
        self.gpus = QSpinBox(minimum=1, maximum=64, value=8)
        self.command = QLineEdit(readOnly=True)
        self.save_button = QPushButton("Save TOML…")
        self.copy_button = QPushButton("Copy command")
        form = QFormLayout()
        form.addRow("Nodes", self.nodes)
        form.addRow("GPUs per node", self.gpus)
        form.addRow("Command", self.command)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel("These settings, as a file that <code>workbench train --config</code> reads:")
        )
        layout.addWidget(self.toml, 1)
        layout.addLayout(form)
        layout.addWidget(
            QLabel(
                "Run the command on each node (set <code>NODE_RANK</code> and <code>HEAD_NODE</code>"
                " for several nodes); rank 0 records one ordinary run."
            )
        )
        layout.addWidget(buttons)
        self.save_button.clicked.connect(self.choose_and_save)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.command.text()))
        self.nodes.valueChanged.connect(self._update_command)
        self.gpus.valueChanged.connect(self._update_command)
        self._update_command()

    def _config_path(self) -> str:
        return str(self.saved_path) if self.saved_path else "run.toml"

    def _update_command(self) -> None:
        from workbench.engine.training.distributed import torchrun_command

        self.command.setText(
            torchrun_command(self._config_path(), nproc_per_node=self.gpus.value(), nnodes=self.nodes.value())
        )

    def save_to(self, path: str | Path) -> Path:
        from workbench.engine.atomic import write_bytes_atomic

        path = Path(path)
        write_bytes_atomic(path, self.config.to_toml().encode())
        self.saved_path = path
        self._update_command()
        return path

    def choose_and_save(self) -> None:
        start = str(self.saved_path) if self.saved_path else dialogs.start_folder(file_name="run.toml")
        path, _ = QFileDialog.getSaveFileName(self, "Save training configuration", start, "TOML (*.toml)")
        if path:
            dialogs.remember_folder(path)
            try:
                self.save_to(path)
            except OSError as exc:
                dialogs.show_error(self, "Could not save the configuration", f"{path}: {exc.strerror or exc}")
