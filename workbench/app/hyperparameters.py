"""The hyperparameter form: every training option the panel exposes, with defaults and tooltips.

It reads and writes plain dicts shaped like `TrainConfig` fields (the settings file stores the same dict),
so the panel never duplicates the engine's defaults: an empty field means "let the engine choose".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.engine.training.config import DEVICES, OPTIMIZERS, SCHEDULES, AugmentConfig, TrainConfig

AUTO = "auto"


def _spin(low: int, high: int, value: int, tip: str, auto: bool = False) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low - 1 if auto else low, high)
    if auto:
        box.setSpecialValueText(AUTO)  # shown for the minimum, which stands for "engine chooses"
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _double(low: float, high: float, value: float, step: float, decimals: int, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _combo(items: tuple[str, ...], value: str, tip: str) -> QComboBox:
    box = QComboBox()
    box.addItems(list(items))
    box.setCurrentText(value)
    box.setToolTip(tip)
    return box


class HyperparameterForm(QWidget):
    """Grouped form; `values()` gives TrainConfig keyword arguments, `set_values()` restores them."""

    changed = Signal()
    lr_find_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        d = TrainConfig()
        self.epochs = _spin(
            1,
            1000,
            0,
            "Passes over the training images. 'auto' lets the engine choose from the dataset size.",
            auto=True,
        )
        self.batch_size = _spin(
            1,
            4096,
            0,
            "Images per optimization step. Larger is faster per image but needs more memory. 'auto' lets the "
            "engine choose: 128, smaller for small folders so a run takes enough steps.",
            auto=True,
        )
        self.lr = QLineEdit()
        self.lr.setPlaceholderText(AUTO)
        self.lr.setValidator(QDoubleValidator(1e-8, 10.0, 8))
        self.lr.setToolTip("Peak learning rate. Empty = the optimizer's usual value. Try the LR finder.")
        self.lr_find_button = QPushButton("LR finder")
        self.lr_find_button.setToolTip(
            "Sweep the learning rate on a few batches, plot loss against it and suggest a value"
        )
        self.lr_find_button.clicked.connect(self.lr_find_requested)
        self.optimizer = _combo(
            OPTIMIZERS, d.optimizer, "SGD with Nesterov momentum 0.9 (the course's choice), Adam or AdamW."
        )
        self.schedule = _combo(
            SCHEDULES,
            d.schedule,
            "How the learning rate changes: one-cycle warm-up then anneal, cosine decay, /10 every N epochs (step), "
            "/10 when validation accuracy stalls (plateau), or constant.",
        )
        self.weight_decay = _double(
            0, 1, d.weight_decay, 1e-4, 5, "L2 penalty on the weights (regularization)."
        )
        self.label_smoothing = _double(
            0, 0.5, d.label_smoothing, 0.05, 2, "Soften one-hot targets: 0.1 often helps generalization."
        )

        shown = d.augment or AugmentConfig()  # what the manual fields start from
        self.augment_auto = QCheckBox("automatic (chosen from the run length)")
        self.augment_auto.setChecked(d.augment is None)
        self.augment_auto.setToolTip(
            "Let the engine choose: flips always, small shifts for runs of 10 epochs or more. "
            "Untick to set each augmentation yourself."
        )
        self.flip = QCheckBox("horizontal flip")
        self.flip.setChecked(shown.flip)
        self.flip.setToolTip("Randomly mirror training images left-right (off for text or digits).")
        self.shift = _spin(
            0, 32, shown.crop_padding, "Random shift by up to this many pixels (padded crop); 0 = off."
        )
        self.brightness = _double(
            0, 1, shown.brightness, 0.05, 2, "Random brightness change of up to ±this fraction; 0 = off."
        )
        self.contrast = _double(
            0, 1, shown.contrast, 0.05, 2, "Random contrast change of up to ±this fraction; 0 = off."
        )

        self.img_size = _spin(
            8,
            1024,
            0,
            "Side in pixels images are resized to. 'auto' = from the data and the model.",
            auto=True,
        )
        self.val_split = _double(
            0, 0.5, d.val_split, 0.05, 2, "Fraction held out for validation when the folder has no val split."
        )
        self.seed = _spin(0, 2**31 - 1, d.seed, "Random seed for the split, initialization and augmentation.")
        self.device = _combo(
            DEVICES, d.device, "Where to train: auto picks CUDA, then Apple MPS, then the CPU."
        )
        self.amp = QCheckBox("mixed precision")
        self.amp.setChecked(d.amp)
        self.amp.setToolTip(
            "bf16/fp16 on a GPU, bf16 on CPUs that have it natively (AMX, AVX512-BF16): faster and lighter."
        )
        self.tta = QCheckBox("test on image + mirror")
        self.tta.setChecked(d.tta)
        self.tta.setToolTip(
            "When training flips images, judge the test set (and predictions) on each image and its mirror,\n"
            "averaged: one more forward pass, usually a few tenths of a point more accuracy."
        )

        lr_row = QHBoxLayout()
        lr_row.setContentsMargins(0, 0, 0, 0)
        lr_row.addWidget(self.lr, 1)
        lr_row.addWidget(self.lr_find_button)
        lr_widget = QWidget()
        lr_widget.setLayout(lr_row)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(
            self._group(
                "Optimization",
                [
                    ("Epochs", self.epochs),
                    ("Batch size", self.batch_size),
                    ("Learning rate", lr_widget),
                    ("Optimizer", self.optimizer),
                    ("Schedule", self.schedule),
                    ("Weight decay", self.weight_decay),
                    ("Label smoothing", self.label_smoothing),
                ],
            )
        )
        layout.addWidget(
            self._group(
                "Augmentation (training images only)",
                [
                    ("", self.augment_auto),
                    ("", self.flip),
                    ("Shift (px)", self.shift),
                    ("Brightness", self.brightness),
                    ("Contrast", self.contrast),
                    ("", self.tta),
                ],
            )
        )
        layout.addWidget(
            self._group(
                "Data and hardware",
                [
                    ("Image size", self.img_size),
                    ("Validation split", self.val_split),
                    ("Seed", self.seed),
                    ("Device", self.device),
                    ("", self.amp),
                ],
            )
        )
        layout.addStretch(1)

        for box in (self.epochs, self.batch_size, self.shift, self.img_size, self.seed):
            box.valueChanged.connect(self.changed)
        for box in (self.weight_decay, self.label_smoothing, self.brightness, self.contrast, self.val_split):
            box.valueChanged.connect(self.changed)
        for combo in (self.optimizer, self.schedule, self.device):
            combo.currentTextChanged.connect(self.changed)
        self.augment_auto.toggled.connect(self._update_augment_fields)
        self._update_augment_fields()
        for check in (self.flip, self.amp, self.tta, self.augment_auto):
            check.toggled.connect(self.changed)
        self.lr.textChanged.connect(self.changed)

    @staticmethod
    def _group(title: str, rows: list[tuple[str, QWidget]]) -> QGroupBox:
        group = QGroupBox(title)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, widget in rows:
            if label:
                form.addRow(label, widget)
            else:
                form.addRow(widget)
        return group

    def _update_augment_fields(self) -> None:
        manual = not self.augment_auto.isChecked()
        for widget in (self.flip, self.shift, self.brightness, self.contrast):
            widget.setEnabled(manual)

    # ---- values --------------------------------------------------------------------------------
    def learning_rate(self) -> float | None:
        text = self.lr.text().strip().replace(",", ".")
        try:
            value = float(text)
        except ValueError:
            return None
        return value if value > 0 else None

    def set_learning_rate(self, lr: float) -> None:
        self.lr.setText(f"{lr:.3g}")

    def values(self) -> dict[str, Any]:
        """TrainConfig keyword arguments (None = the engine chooses)."""
        return {
            "epochs": self.epochs.value() or None,
            "batch_size": self.batch_size.value() or None,
            "lr": self.learning_rate(),
            "optimizer": self.optimizer.currentText(),
            "schedule": self.schedule.currentText(),
            "weight_decay": self.weight_decay.value(),
            "label_smoothing": self.label_smoothing.value(),
            "augment": None
            if self.augment_auto.isChecked()
            else AugmentConfig(
                crop_padding=self.shift.value(),
                flip=self.flip.isChecked(),
                brightness=self.brightness.value(),
                contrast=self.contrast.value(),
            ),
            "img_size": self.img_size.value() if self.img_size.value() >= 8 else None,
            "val_split": self.val_split.value(),
            "seed": self.seed.value(),
            "device": self.device.currentText(),
            "amp": self.amp.isChecked(),
            "tta": self.tta.isChecked(),
        }

    def to_settings(self) -> dict[str, Any]:
        """`values()` as plain JSON types, for the settings file."""
        values = self.values()
        augment: AugmentConfig | None = values["augment"]
        values["augment"] = None if augment is None else dataclasses.asdict(augment)
        return values

    def set_values(self, values: dict[str, Any]) -> None:
        """Restore from a settings dict or a run's config; unknown keys and bad values are skipped."""

        def number(key: str, kind: type) -> Any:
            try:
                return kind(values[key]) if values.get(key) is not None else None
            except (TypeError, ValueError):
                return None

        if "epochs" in values:
            self.epochs.setValue(number("epochs", int) or 0)
        if number("batch_size", int):
            self.batch_size.setValue(number("batch_size", int))
        if "lr" in values:
            lr = number("lr", float)
            self.lr.setText(f"{lr:.3g}" if lr else "")
        for key, combo in (
            ("optimizer", self.optimizer),
            ("schedule", self.schedule),
            ("device", self.device),
        ):
            if isinstance(values.get(key), str) and combo.findText(values[key]) >= 0:
                combo.setCurrentText(values[key])
        for key, box in (
            ("weight_decay", self.weight_decay),
            ("label_smoothing", self.label_smoothing),
            ("val_split", self.val_split),
        ):
            if number(key, float) is not None:
                box.setValue(number(key, float))
        if "img_size" in values:
            self.img_size.setValue(number("img_size", int) or self.img_size.minimum())
        if number("seed", int) is not None:
            self.seed.setValue(number("seed", int))
        for key, check in (("amp", self.amp), ("tta", self.tta)):
            if isinstance(values.get(key), bool):
                check.setChecked(values[key])
        augment = values.get("augment")
        if "augment" in values:
            self.augment_auto.setChecked(augment is None)
        if isinstance(augment, AugmentConfig):
            augment = dataclasses.asdict(augment)
        if isinstance(augment, dict):
            self.flip.setChecked(bool(augment.get("flip", self.flip.isChecked())))
            self.shift.setValue(int(augment.get("crop_padding", self.shift.value()) or 0))
            self.brightness.setValue(float(augment.get("brightness", 0) or 0))
            self.contrast.setValue(float(augment.get("contrast", 0) or 0))
