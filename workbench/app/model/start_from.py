"""The "start from" chooser: scratch, ImageNet weights, a weights file or an earlier run, plus the transfer
strategy the engine's advisor preselects. Turns the choice into TrainConfig fields.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.engine.errors import ConfigError
from workbench.engine.training.config import STRATEGIES

STRATEGY_TEXT = {
    "feature-extractor": "feature extractor (freeze the body, train a new head)",
    "fine-tune-top": "fine-tune the top layers",
    "fine-tune-gradual": "head first, then unfreeze everything",
    "fine-tune-all": "fine-tune all layers",
}
SOURCE_SCRATCH, SOURCE_PRETRAINED, SOURCE_FILE, SOURCE_RUN = range(4)
TITLE = "Starting weights and transfer learning"
# While the workbench chooses, the greyed controls keep the user's own settings for later: the title says
# so, since they may differ from what the run will use (the line above the table says that).
TITLE_WHILE_AUTOMATIC = f"{TITLE}: yours, used once you untick “Let the workbench choose”"


class StartFromBox(QGroupBox):
    """The starting-weights radios with their inputs, the domain question, the strategy and the advice."""

    source_changed = Signal()  # another radio is now checked
    strategy_changed = Signal()  # another strategy, or the advisor's number of top blocks
    changed = Signal()  # anything the run's starting point is made of: source, strategy, file, earlier run

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(TITLE, parent)
        self._unfreeze = 2  # top blocks to train under fine-tune-top (the advisor refines it)
        self._wanted_run: str | None = None  # a restored earlier run, chosen once the runs are listed
        self.source_group = QButtonGroup(self)
        self.scratch_radio = QRadioButton("From scratch")
        self.scratch_radio.setToolTip("Random initialization: every layer learns from your images only")
        self.pretrained_radio = QRadioButton("ImageNet weights")
        self.pretrained_radio.setToolTip(
            "Start from the model's ImageNet-pretrained weights (torchvision download)"
        )
        self.file_radio = QRadioButton("Weights file")
        self.file_radio.setToolTip("A torchvision-style state dict (.pth, .pt or .safetensors)")
        self.run_radio = QRadioButton("Earlier run")
        self.run_radio.setToolTip("Start from the weights of one of your earlier runs")
        for index, radio in enumerate(
            (self.scratch_radio, self.pretrained_radio, self.file_radio, self.run_radio)
        ):
            self.source_group.addButton(radio, index)
        self.scratch_radio.setChecked(True)
        self.source_group.idToggled.connect(lambda _id, on: on and self.source_changed.emit())
        self.download_button = QPushButton("Download now")
        self.download_button.setToolTip(
            "Fetch the ImageNet weights into torch's cache (otherwise done when training starts)"
        )
        self.weights_path = QLineEdit()
        self.weights_path.setPlaceholderText("a .pth / .pt / .safetensors state dict")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_weights)
        self.run_combo = QComboBox()
        self.similar_domain = QComboBox()
        self.similar_domain.addItems(
            ["similar to ImageNet photos", "different from ImageNet (X-rays, drawings, grey…)"]
        )
        self.similar_domain.setToolTip("The transfer advisor weighs how much pretrained features carry over")
        self.strategy = QComboBox()
        for key in STRATEGIES:
            self.strategy.addItem(STRATEGY_TEXT.get(key, key), key)
        self.strategy.currentIndexChanged.connect(lambda _index: self.strategy_changed.emit())
        for signal in (
            self.source_changed, self.strategy_changed, self.weights_path.textChanged, self.run_combo.currentIndexChanged
        ):
            signal.connect(lambda *_args: self.changed.emit())
        for combo in (self.run_combo, self.similar_domain, self.strategy):
            # Long entries must not set the window's minimum width: the combo elides, its popup shows all.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        self.advice_label = QLabel()
        self.advice_label.setObjectName("hintLabel")
        self.advice_label.setWordWrap(True)

        grid = QGridLayout(self)
        grid.addWidget(self.scratch_radio, 0, 0)
        grid.addWidget(self.pretrained_radio, 1, 0)
        grid.addWidget(self.download_button, 1, 1)
        grid.addWidget(self.file_radio, 2, 0)
        grid.addWidget(self.weights_path, 2, 1, 1, 2)
        grid.addWidget(browse, 2, 3)
        grid.addWidget(self.run_radio, 3, 0)
        grid.addWidget(self.run_combo, 3, 1, 1, 3)
        grid.addWidget(QLabel("Your images are"), 0, 4)
        grid.addWidget(self.similar_domain, 0, 5)
        grid.addWidget(QLabel("Strategy"), 1, 4)
        grid.addWidget(self.strategy, 1, 5)
        grid.addWidget(self.advice_label, 2, 4, 2, 2)
        grid.setColumnStretch(2, 1)
        grid.setColumnStretch(5, 1)

    def source(self) -> int:
        return self.source_group.checkedId()

    def set_source(self, source: int) -> None:
        self.source_group.button(source).setChecked(True)

    def update_controls(self, has_weights: bool, downloading: bool, on_disk: str | None = None) -> None:
        """Enable what the checked source uses; ImageNet weights only for a model that has them, and "Download
        now" only while they are not on this computer (`on_disk`: their file; "" not there; None unknown)."""
        self.pretrained_radio.setEnabled(has_weights)
        if not has_weights and self.pretrained_radio.isChecked():
            self.scratch_radio.setChecked(True)
        source = self.source()
        if on_disk:
            self.download_button.setText("Weights on disk")
            self.download_button.setToolTip(
                f"The ImageNet weights are already on this computer, nothing to download:\n{on_disk}"
            )
        else:
            self.download_button.setText("Download now")
            self.download_button.setToolTip(
                "Fetch the ImageNet weights into torch's cache (otherwise done when training starts)"
                if has_weights
                else "This model has no ImageNet weights"
            )
        self.download_button.setEnabled(
            has_weights and source == SOURCE_PRETRAINED and not downloading and on_disk == ""
        )
        self.weights_path.setEnabled(source == SOURCE_FILE)
        self.run_combo.setEnabled(source == SOURCE_RUN)
        transfer = source != SOURCE_SCRATCH
        self.strategy.setEnabled(transfer)
        self.similar_domain.setEnabled(transfer)
        self.advice_label.setVisible(transfer)

    def _browse_weights(self) -> None:
        typed = self.weights_path.text().strip()  # next to the file already chosen, else in the dataset
        start = dialogs.start_folder(os.path.dirname(os.path.expanduser(typed)) if typed else None)
        path, _ = QFileDialog.getOpenFileName(
            self, "Weights file", start, "Weights (*.pth *.pt *.safetensors);;All files (*)"
        )
        if path:
            dialogs.remember_folder(path)
            self.weights_path.setText(path)
            self.file_radio.setChecked(True)

    def set_runs(self, runs: list[Any]) -> None:
        """List the earlier runs (RunRecords), keeping the chosen one (or a restored one) if it is still there."""
        current = self._wanted_run or self.run_combo.currentData()
        self.run_combo.clear()
        for record in runs:
            acc = f" · val {100 * record.best_val_acc:.1f}%" if record.best_val_acc is not None else ""
            self.run_combo.addItem(f"{record.run_id} · {record.model} · {record.status}{acc}", record.run_id)
        self.run_radio.setEnabled(bool(runs))
        if current is not None and self.run_combo.findData(current) >= 0:
            self.run_combo.setCurrentIndex(self.run_combo.findData(current))
            if current == self._wanted_run:
                self.run_radio.setChecked(True)
        self._wanted_run = None

    def state(self) -> dict[str, Any]:
        """What the user set here, kept with the dataset's settings: the source, the file, the earlier run."""
        return {
            "source": self.source(),
            "weights_file": self.weights_path.text().strip(),
            "run": self.run_combo.currentData() or self._wanted_run,
        }

    def restore(self, state: Any) -> None:
        """Put a saved `state` back. ImageNet weights only where the model has them; an earlier run once the
        runs are listed (set_runs), and only while it still exists; anything else stays as it is."""
        if not isinstance(state, dict):
            return
        if isinstance(state.get("weights_file"), str):
            self.weights_path.setText(state["weights_file"])
        source = state.get("source")
        if source == SOURCE_RUN and isinstance(state.get("run"), str):
            self._wanted_run = state["run"]
            if self.run_combo.findData(self._wanted_run) >= 0:  # already listed
                self.run_combo.setCurrentIndex(self.run_combo.findData(self._wanted_run))
                self.run_radio.setChecked(True)
                self._wanted_run = None
        elif source in (SOURCE_SCRATCH, SOURCE_FILE) or (source == SOURCE_PRETRAINED and self.pretrained_radio.isEnabled()):
            self.set_source(source)

    def assume_domain(self, channels: int) -> None:
        """A first guess for a new dataset: colour images resemble ImageNet's photos, grey ones do not."""
        self.similar_domain.setCurrentIndex(0 if channels == 3 else 1)

    def images_like_imagenet(self) -> bool:
        return self.similar_domain.currentIndex() == 0

    def show_advice(self, advice: Any) -> None:
        index = self.strategy.findData(advice.strategy)
        if index >= 0:
            self.strategy.setCurrentIndex(index)
        self._unfreeze = advice.unfreeze_blocks
        self.advice_label.setText(f"Advisor: {advice.reason}")
        self.strategy_changed.emit()

    def unfreeze_blocks(self) -> int:
        """Top blocks that train under fine-tune-top (the advisor's figure for this model and dataset)."""
        return max(1, self._unfreeze)

    def transfer_options(self) -> dict[str, Any]:
        """TrainConfig fields for the chosen starting point."""
        source = self.source()
        if source == SOURCE_SCRATCH:
            return {"pretrained": False, "weights": None, "strategy": "fine-tune-all"}
        options = {
            "pretrained": source == SOURCE_PRETRAINED,
            "weights": None,
            "strategy": self.strategy.currentData(),
        }
        if options["strategy"] == "fine-tune-top":
            options["unfreeze"] = max(1, self._unfreeze)
        if source == SOURCE_FILE:
            options["weights"] = self.weights_path.text().strip()
            if not options["weights"]:
                raise ConfigError(
                    "starting weights: choose a weights file (Model tab), or train from scratch"
                )
        elif source == SOURCE_RUN:
            options["weights"] = self.run_combo.currentData()
            if not options["weights"]:
                raise ConfigError(
                    "starting weights: choose an earlier run (Model tab), or train from scratch"
                )
        return options
