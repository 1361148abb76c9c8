"""The Map and Review pages' shared header: the button that embeds, reviews and maps the dataset in the background
(`analysis_job`), its progress and Cancel, and the engine's notes about the result."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

# The side images are embedded at; None = the review's own rule (≥ 160 px). Tests use a small side.
ANALYSIS_SIZE: int | None = None

STAGES = {"decode": "reading images", "embed": "embedding images", "review": "looking for suspects",
          "map": "laying out the map"}  # fmt: skip


def analysis_job(folders: Sequence[str], size: int | None) -> Generator[Any, None, Any]:
    """A BackgroundJob generator: `analyse_dataset` in a helper thread, its progress as (stage, done, total)."""
    from workbench.app.qt.workers import callback_steps
    from workbench.engine.review.analysis import analyse_dataset  # heavy (torch): only when asked

    def call(report: Any, should_stop: Any) -> Any:
        return analyse_dataset(
            list(folders), size=size, should_stop=should_stop,
            progress=lambda stage, done, total: report((stage, done, total)),
        )  # fmt: skip

    return (yield from callback_steps(call))


class AnalysisBar(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.start_button = QPushButton("Find suspects and draw the map")
        self.start_button.setToolTip(
            "Embed every image with the offline pretrained network (cached), look for wrong labels, "
            "near-duplicates and outliers, and lay the images out in 2-D. Moves nothing."
        )
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.cancel_button = QPushButton("Cancel")
        self.notes = QLabel("")
        self.notes.setObjectName("hintLabel")
        self.notes.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.start_button)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.notes)
        self.set_running(False)

    def set_running(self, running: bool) -> None:
        self.progress.setVisible(running)
        self.cancel_button.setVisible(running)
        self.start_button.setEnabled(not running)
        if running:
            self.progress.setRange(0, 0)
            self.progress.setFormat("starting…")

    def show_progress(self, value: Any) -> None:
        if not isinstance(value, tuple) or len(value) != 3:
            return
        stage, done, total = value
        if total and stage in ("decode", "embed"):
            self.progress.setRange(0, int(total))
            self.progress.setValue(int(done))
            self.progress.setFormat(f"{STAGES[stage]} %v / %m")
        else:
            self.progress.setRange(0, 0)
            self.progress.setFormat(STAGES.get(stage, stage))
        self.progress.setToolTip(STAGES.get(stage, stage))

    def set_notes(self, text: str) -> None:
        self.notes.setText(text)
        self.notes.setVisible(bool(text))
