"""The main window's status bar: the dataset on the left, the run's state and the compute device on the right,
and passing messages over them."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar

MESSAGE_TIMEOUT_MS = 8000
RUN_STATE_TEXT = {
    "idle": "idle",
    "starting": "preparing data…",
    "running": "training",
    "paused": "paused",
    "stopping": "stopping…",
    "finished": "run finished",
    "stopped": "run stopped",
    "failed": "run failed",
}


class WindowStatus:
    """Puts the three labels in `bar` and keeps their texts up to date."""

    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.device_label = QLabel("device: detecting…")
        self.dataset_label = QLabel("no dataset")
        self.run_label = QLabel("idle")
        for label in (self.dataset_label, self.run_label, self.device_label):
            label.setContentsMargins(6, 0, 6, 0)
        # Status texts can be long (dataset path, GPU name): they may be cut, never widen the window.
        self.dataset_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.dataset_label, 1)
        bar.addPermanentWidget(self.run_label)
        bar.addPermanentWidget(self.device_label)

    def show_message(self, text: str) -> None:
        self.bar.showMessage(text, MESSAGE_TIMEOUT_MS)

    def show_dataset(self, summary: Any) -> None:
        self.dataset_label.setText(summary.status_text())

    def show_run_state(self, state: str, run_id: str | None) -> None:
        text = RUN_STATE_TEXT.get(state, state)
        self.run_label.setText(f"{text}{f' · {run_id}' if run_id and state != 'idle' else ''}")

    def show_device(self, text: str) -> None:
        self.device_label.setText(text)

    def show_device_failure(self, failure: Any) -> None:
        self.device_label.setText(f"device: {failure.message}")


def device_status_text(name: str) -> str:  # worker thread: imports torch
    """The status bar's device text for the form's device `name`."""
    from workbench.engine.device import describe_device, pick_device

    try:
        device = pick_device(name)
    except Exception:  # noqa: BLE001 - a device the form names but this machine lacks: show what auto picks
        device = pick_device("auto")
    return f"device: {describe_device(device)}"
