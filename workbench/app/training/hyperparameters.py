"""The hyperparameter form: every training option the panel exposes, with defaults and tooltips.

It reads and writes plain dicts shaped like `TrainConfig` fields (the settings file stores the same dict),
so the panel never duplicates the engine's defaults: an empty field means "let the engine choose".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
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
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from workbench.engine.errors import ConfigError
from workbench.engine.training.config import AugmentConfig, Option, Rule, TrainConfig, options
from workbench.engine.training.config import label as config_label
from workbench.engine.training.policy import SHIFT_FROM_EPOCHS

AUTO = "auto"
AUTO_IS_NONE = "autoIsNone"  # a combo box property: its 'auto' item is the option left to the engine (None)
SPIN_MAX = 2**31 - 1  # QSpinBox holds a C int

# Presentation only: the order of the groups. Each option's label, what it accepts (range, choices), its default
# and its tooltip come from the engine's declaration (`config.options()`), never from here; messages that name
# an option use the same label (qt/wording.py).
_GROUPED: dict[str, tuple[str, ...]] = {
    "Optimization": (
        "epochs", "quick", "batch_size", "lr", "optimizer", "schedule", "weight_decay", "label_smoothing",
    ),
    "Augmentation (training images only)": ("tta",),
    "Data and hardware": ("img_size", "val_split", "seed", "device", "amp"),
}
GROUPS: dict[str, list[tuple[str, str]]] = {
    title: [(name, config_label(name)) for name in names] for title, names in _GROUPED.items()
}
# What a newcomer sets; every other group sits under the "Advanced" disclosure (which remembers its state).
BASICS = ("epochs", "lr", "img_size", "quick")
STEPS = {"weight_decay": (1e-4, 5), "label_smoothing": (0.05, 2), "val_split": (0.05, 2)}  # step, decimals


def _tip(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _spin(low: int, high: int, value: int, tip: str, auto: bool = False) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low - 1 if auto else low, min(high, SPIN_MAX))
    if auto:
        box.setSpecialValueText(AUTO)  # shown for the minimum, which stands for "engine chooses"
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _double(low: float, high: float, value: float, step: float, decimals: int, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
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


def option_widget(name: str, spec: Option, default: Any) -> QWidget:
    """The control for one engine option, shaped by its rule: a spin box (with 'auto' where the engine may
    choose), a number box inside the allowed range, a list of the allowed choices, or a check box."""
    rule, tip = spec.rule, _tip(spec.help)
    if rule.choices and str in rule.kinds:
        if not rule.optional:
            return _combo(tuple(rule.choices), default, tip)
        box = _combo((AUTO, *rule.choices), default or AUTO, tip)  # 'auto' first: the engine chooses (None)
        box.setProperty(AUTO_IS_NONE, True)
        return box
    if bool in rule.kinds:
        box = QCheckBox()
        box.setChecked(bool(default))
        box.setToolTip(tip)
        return box
    if int in rule.kinds:
        return _spin(int(rule.low or 0), int(rule.high or SPIN_MAX), default or 0, tip, auto=rule.optional)
    step, decimals = STEPS.get(name, (0.01, 3))
    high = rule.high - 10.0**-decimals if rule.high_open else rule.high  # a box cannot exclude its maximum
    return _double(rule.low or 0.0, high if high is not None else 1e6, default, step, decimals, tip)


class HyperparameterForm(QWidget):
    """Grouped form; `values()` gives TrainConfig keyword arguments, `set_values()` restores them."""

    changed = Signal()
    lr_find_requested = Signal()
    advanced_toggled = Signal(bool)  # the Advanced disclosure opened (True) or closed

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        d = TrainConfig()
        declared = options()
        self.fields: dict[str, QWidget] = {}
        for rows in GROUPS.values():
            for name, label in rows:
                if name == "lr":
                    continue  # a text box with the LR finder beside it, below
                widget = option_widget(name, declared[name], getattr(d, name))
                if isinstance(widget, QCheckBox):
                    widget.setText(label)
                self.fields[name] = widget
                setattr(self, name, widget)
        self.lr = QLineEdit()
        self.lr.setPlaceholderText(AUTO)
        lr_rule = declared["lr"].rule
        self.lr.setValidator(QDoubleValidator(1e-8, lr_rule.high or 10.0, 8))
        self.lr.setToolTip(_tip(declared["lr"].help) + " Empty = the engine chooses. Try the LR finder.")
        self.lr_find_button = QPushButton("LR finder")
        self.lr_find_button.setToolTip(
            "Sweep the learning rate on a few batches, plot loss against it and suggest a value"
        )
        self.lr_find_button.clicked.connect(self.lr_find_requested)

        shown = d.augment or AugmentConfig()  # what the manual fields start from
        self.augment_auto = QCheckBox("automatic (chosen from the run length)")
        self.augment_auto.setChecked(d.augment is None)
        self.augment_auto.setToolTip(
            f"Let the engine choose: flips always, small shifts for runs of {SHIFT_FROM_EPOCHS} epochs or more, zoom and "
            "larger shifts when fine-tuning a pretrained network on a few images. "
            "Untick to set each augmentation yourself."
        )
        self.flip = QCheckBox("horizontal flip")
        self.flip.setChecked(shown.flip)
        self.flip.setToolTip("Randomly mirror training images left-right (off for text or digits).")
        self.shift = _spin(
            0, 32, shown.crop_padding, "Random shift by up to this many pixels (padded crop); 0 = off."
        )
        self.zoom = _double(
            0, 0.9, shown.zoom, 0.05, 2, "Random zoom in, showing down to (1 − this) of each side; 0 = off."
        )
        self.brightness = _double(
            0, 1, shown.brightness, 0.05, 2, "Random brightness change of up to ±this fraction; 0 = off."
        )
        self.contrast = _double(
            0, 1, shown.contrast, 0.05, 2, "Random contrast change of up to ±this fraction; 0 = off."
        )

        lr_row = QHBoxLayout()
        lr_row.setContentsMargins(0, 0, 0, 0)
        lr_row.addWidget(self.lr, 1)
        lr_row.addWidget(self.lr_find_button)
        lr_widget = QWidget()
        lr_widget.setLayout(lr_row)
        augment_rows = [
            ("", self.augment_auto),
            ("", self.flip),
            ("Shift (px)", self.shift),
            ("Zoom", self.zoom),
            ("Brightness", self.brightness),
            ("Contrast", self.contrast),
        ]

        def row(name: str, label: str) -> tuple[str, QWidget]:
            return (
                "" if isinstance(self.fields.get(name), QCheckBox) else label,
                lr_widget if name == "lr" else self.fields[name],
            )

        labels = {name: label for rows in GROUPS.values() for name, label in rows}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._group("Training", [row(name, labels[name]) for name in BASICS]))
        self.advanced_button = QToolButton()
        self.advanced_button.setObjectName("advancedButton")
        self.advanced_button.setText("Advanced: optimizer, augmentation, hardware")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setToolTip("Show or hide the detailed settings (the engine chooses them when left alone)")
        layout.addWidget(self.advanced_button)
        self.advanced = QWidget()
        advanced_layout = QVBoxLayout(self.advanced)
        advanced_layout.setContentsMargins(0, 0, 0, 0)
        for title, rows in GROUPS.items():
            shown_rows = [row(name, label) for name, label in rows if name not in BASICS]
            if title.startswith("Augmentation"):
                shown_rows = augment_rows + shown_rows
            advanced_layout.addWidget(self._group(title, shown_rows))
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        self.advanced_button.toggled.connect(self._show_advanced)
        self._show_advanced(False)

        for widget in (*self.fields.values(), self.shift, self.zoom, self.brightness, self.contrast, self.flip):
            _on_change(widget, self.changed)
        self.augment_auto.toggled.connect(self._update_augment_fields)
        self.augment_auto.toggled.connect(self.changed)
        self._update_augment_fields()
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

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.advanced_toggled.emit(shown)

    def advanced_shown(self) -> bool:
        return self.advanced_button.isChecked()

    def set_advanced_shown(self, shown: bool) -> None:
        self.advanced_button.setChecked(shown)
        self._show_advanced(shown)

    def show_automatic_augment(self, augment: AugmentConfig | None) -> None:
        """While "automatic" is ticked, the greyed fields show what the engine will use for this run (not the
        values a manual setting would start from): unticking then starts from the engine's choice."""
        if augment is None or not self.augment_auto.isChecked():
            return
        fields = (self.flip, self.shift, self.zoom, self.brightness, self.contrast)
        blocked = [QSignalBlocker(widget) for widget in fields]  # showing a choice is not a change
        self.flip.setChecked(augment.flip)
        self.shift.setValue(augment.crop_padding)
        self.zoom.setValue(augment.zoom)
        self.brightness.setValue(augment.brightness)
        self.contrast.setValue(augment.contrast)
        del blocked

    def _update_augment_fields(self) -> None:
        manual = not self.augment_auto.isChecked()
        for widget in (self.flip, self.shift, self.zoom, self.brightness, self.contrast):
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
        values = {name: _read(widget) for name, widget in self.fields.items()}
        values["lr"] = self.learning_rate()
        values["augment"] = (
            None
            if self.augment_auto.isChecked()
            else AugmentConfig(
                crop_padding=self.shift.value(),
                zoom=self.zoom.value(),
                flip=self.flip.isChecked(),
                brightness=self.brightness.value(),
                contrast=self.contrast.value(),
            )
        )
        return values

    def to_settings(self) -> dict[str, Any]:
        """`values()` as plain JSON types, for the settings file."""
        values = self.values()
        augment: AugmentConfig | None = values["augment"]
        values["augment"] = None if augment is None else dataclasses.asdict(augment)
        return values

    def set_values(self, values: dict[str, Any]) -> None:
        """Restore from a settings dict or a run's config; unknown keys and values the engine's rule refuses
        are skipped (a settings file edited by hand, or written by another version)."""
        declared = options()
        for name, widget in self.fields.items():
            if name in values and _acceptable(declared[name].rule, name, values[name]):
                _write(widget, values[name])
        if "lr" in values and _acceptable(declared["lr"].rule, "lr", values["lr"]):
            self.lr.setText(f"{values['lr']:.3g}" if values["lr"] else "")
        augment = values.get("augment")
        if "augment" in values:
            self.augment_auto.setChecked(augment is None)
        if isinstance(augment, AugmentConfig):
            augment = dataclasses.asdict(augment)
        if isinstance(augment, dict):
            self.flip.setChecked(bool(augment.get("flip", self.flip.isChecked())))
            self.shift.setValue(int(augment.get("crop_padding", self.shift.value()) or 0))
            self.zoom.setValue(float(augment.get("zoom", 0) or 0))
            self.brightness.setValue(float(augment.get("brightness", 0) or 0))
            self.contrast.setValue(float(augment.get("contrast", 0) or 0))


def _acceptable(rule: Rule, name: str, value: Any) -> bool:
    try:
        rule.check(name, value)
    except ConfigError:
        return False
    return True


def _read(widget: QWidget) -> Any:
    """A control's value as the engine's option: 'auto' (a spin box at its minimum) is None."""
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QComboBox):
        auto = widget.property(AUTO_IS_NONE) and widget.currentText() == AUTO
        return None if auto else widget.currentText()
    if isinstance(widget, QSpinBox):
        auto = widget.specialValueText() == AUTO and widget.value() == widget.minimum()
        return None if auto else widget.value()
    if isinstance(widget, QDoubleSpinBox):
        return widget.value()
    raise TypeError(f"no value reader for {type(widget).__name__}")


def _write(widget: QWidget, value: Any) -> None:
    if isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QComboBox):
        text = AUTO if value is None else str(value)
        if widget.findText(text) >= 0:
            widget.setCurrentText(text)
    elif isinstance(widget, QSpinBox):
        widget.setValue(widget.minimum() if value is None else int(value))
    elif isinstance(widget, QDoubleSpinBox):
        widget.setValue(float(value))


def _on_change(widget: QWidget, signal: Any) -> None:
    if isinstance(widget, QCheckBox):
        widget.toggled.connect(signal)
    elif isinstance(widget, QComboBox):
        widget.currentTextChanged.connect(signal)
    else:
        widget.valueChanged.connect(signal)
