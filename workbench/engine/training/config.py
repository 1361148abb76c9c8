"""Every option of a training run, in one dataclass that round-trips through JSON.

The CLI fills it from arguments, the app from its panel; the trainer reads nothing else.
`None` means "choose a sensible value from the data" (see `trainer.resolve_defaults`).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workbench.engine.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "plateau", "constant")
STRATEGIES = ("fine-tune-all", "feature-extractor", "fine-tune-top", "fine-tune-gradual")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass
class AugmentConfig:
    """Batched, on-device augmentation (the AlexNet-style ones of the course). Training split only."""

    crop_padding: int = 2  # random translate by up to this many pixels (reflect-padded crop); 0 = off
    flip: bool = True  # random horizontal flip
    brightness: float = 0.0  # jitter factor range [1-b, 1+b]; 0 = off
    contrast: float = 0.0  # jitter factor range [1-c, 1+c]; 0 = off

    @classmethod
    def parse(cls, text: str) -> AugmentConfig | None:
        """Parse a CLI value: 'auto' (None), 'none' or 'flip,crop=4,brightness=0.2,contrast=0.2'."""
        text = text.strip().lower()
        if text in ("auto", "default", ""):
            return None
        if text in ("none", "off"):
            return cls(crop_padding=0, flip=False)
        aug = cls(crop_padding=0, flip=False)
        for part in text.split(","):
            key, _, value = part.strip().partition("=")
            try:
                if key == "flip":
                    aug.flip = True
                elif key in ("crop", "shift", "translate"):
                    aug.crop_padding = int(value or 2)
                elif key == "brightness":
                    aug.brightness = float(value or 0.2)
                elif key == "contrast":
                    aug.contrast = float(value or 0.2)
                else:
                    raise ConfigError(
                        f"unknown augmentation '{key}' in '{text}': use flip, crop=N, brightness=F, contrast=F or none"
                    )
            except ValueError as exc:
                raise ConfigError(f"bad value in augmentation '{part}': {exc}") from None
        return aug


@dataclass
class TrainConfig:
    data: str = ""  # dataset folder (or several, joined by os.pathsep, each a class)
    model: str | None = None  # zoo name; None = chosen from the image size
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None  # None = 128, smaller for small folders (at least ~10 steps an epoch)
    lr: float | None = None  # None = the optimizer's usual default for this schedule
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    step_size: int = 10  # step schedule: epochs between divisions by 10
    plateau_patience: int = 2  # plateau schedule: epochs without val-acc gain before lr /= 10
    label_smoothing: float = (
        0.1  # soft targets: +0.2-0.4 points on Fashion-MNIST (benchmarks), common default
    )
    grad_clip: float | None = None  # max global grad norm; None = off
    early_stopping: int | None = None  # patience in epochs on val accuracy; None = off
    img_size: int | None = None  # None = from the data (and the model's minimum)
    channels: int | None = None  # 1 or 3; None = from the data
    val_split: float = 0.1  # used when the folder has no val split
    test_split: float = 0.0  # used when the folder has no test split
    augment: AugmentConfig | None = None  # None = chosen from the run length (see defaults.default_augment)
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA (bf16 where supported, else fp16 + scaler)
    tta: bool = True  # judge test/eval/predictions on each image and its mirror when training used flips
    channels_last: bool = True  # NHWC on CUDA and CPU (faster convolutions); ignored on MPS
    compile: bool = False  # torch.compile on CUDA
    seed: int = 0
    deterministic: bool = False
    pretrained: bool = False
    weights: str | None = None  # a weights file, or a run id / checkpoint to start from
    strategy: str | None = None  # None: the advisor picks from the data size and `similar_to_imagenet`
    similar_to_imagenet: bool = True  # the user's answer to "do your images look like ImageNet photos?"
    unfreeze: int = 2  # fine-tune-top: number of top blocks to train
    head_epochs: int = 1  # fine-tune-gradual: epochs with the body frozen
    backbone_lr_mult: float = 0.1  # discriminative lr: pretrained layers train at lr * this
    linear_probe: bool | None = (
        None  # stage 1: fit the head on cached frozen features; None = when pretrained
    )
    quick: bool = False  # stop after stage 1 (the instant model), no fine-tuning
    freeze_bn_stats: bool | None = None  # batch norm keeps its running statistics; None = for few images
    checkpoint_every: int = 1  # epochs
    run_name: str | None = None

    def validate(self) -> TrainConfig:
        def bad(name: str, value: Any, why: str) -> ConfigError:
            return ConfigError(f"--{name.replace('_', '-')} {value!r}: {why}")

        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", self.optimizer, f"choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise bad("schedule", self.schedule, f"choose one of {', '.join(SCHEDULES)}")
        if self.strategy is not None and self.strategy not in STRATEGIES:
            raise bad("strategy", self.strategy, f"choose one of {', '.join(STRATEGIES)}")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise bad("device", self.device, f"choose one of {', '.join(DEVICES)} or cuda:N")
        if self.epochs is not None and self.epochs < 1:
            raise bad("epochs", self.epochs, "must be at least 1")
        if self.quick and self.linear_probe is False:
            raise bad("quick", True, "the quick model is the linear probe: it cannot be turned off with it")
        if self.batch_size is not None and self.batch_size < 1:
            raise bad("batch_size", self.batch_size, "must be at least 1")
        if self.lr is not None and not self.lr > 0:
            raise bad("lr", self.lr, "must be a positive number")
        if not 0 <= self.val_split < 1:
            raise bad("val_split", self.val_split, "must be in [0, 1)")
        if not 0 <= self.test_split < 1 or self.val_split + self.test_split >= 1:
            raise bad("test_split", self.test_split, "val + test fractions must stay below 1")
        if self.img_size is not None and not 8 <= self.img_size <= 1024:
            raise bad("img_size", self.img_size, "must be between 8 and 1024 pixels")
        if self.channels not in (None, 1, 3):
            raise bad("channels", self.channels, "must be 1 or 3")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", self.label_smoothing, "must be in [0, 1)")
        if self.weight_decay < 0:
            raise bad("weight_decay", self.weight_decay, "must not be negative")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training options: {', '.join(sorted(unknown))}")
        data = dict(data)
        if isinstance(data.get("augment"), dict):
            data["augment"] = AugmentConfig(**data["augment"])
        return cls(**data)

    # ---- TOML: a run's settings as a file to keep, share, or train on a cluster with --config ------------
    def to_toml(self) -> str:
        lines = ["# CNN Workbench training configuration: workbench train --config THIS_FILE"]
        tables: dict[str, dict[str, Any]] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                tables[key] = value
            elif value is not None:
                lines.append(f"{key} = {_toml_value(value)}")
        for name, table in tables.items():
            if table:
                lines.append(f"\n[{name}]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)
        return "\n".join(lines) + "\n"

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> TrainConfig:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
        try:
            return cls.from_dict(data).validate()
        except TypeError as exc:
            raise ConfigError(f"--config {path}: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} to TOML")
