"""Every option of a training run, in one dataclass that round-trips through JSON.

The CLI fills it from arguments, the app from its panel; the trainer reads nothing else.
`None` means "choose a sensible value from the data" (see `trainer.resolve_defaults`).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from workbench.engine.errors import Action, ConfigError, Mention, OptionError, shown_value

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "plateau", "constant")
STRATEGIES = ("fine-tune-all", "feature-extractor", "fine-tune-top", "fine-tune-gradual")
DEVICES = ("auto", "cpu", "cuda", "mps")
IMG_SIZE_RANGE = (8, 1024)  # pixels a side: below 8 no zoo model has an output, above 1024 a batch won't fit


@dataclass(frozen=True)
class Rule:
    """What one option accepts: its type(s), a numeric range, or a fixed set of choices."""

    kinds: tuple[type, ...]
    optional: bool = False
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself is excluded
    high_open: bool = False  # high itself is excluded
    choices: tuple[Any, ...] = ()

    def check(self, name: str, value: Any) -> None:
        if value is None:
            if not self.optional:
                raise OptionError(name, value, f"must be {self._describe()}")
            return
        # bool is an int to Python, never to a user; an int is a fine float.
        is_kind = any(
            isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool) for kind in self.kinds
        ) or (float in self.kinds and isinstance(value, int) and not isinstance(value, bool))
        if not is_kind:
            raise OptionError(name, value, f"must be {self._describe()}")
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(name, value, f"must be a finite number {self._range()}".rstrip())
        if self.choices and value not in self.choices and not self._device_index(value):
            raise OptionError(name, value, f"choose one of {', '.join(map(str, self.choices))}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            raise OptionError(name, value, f"must be {self._range()}")

    def _device_index(self, value: Any) -> bool:
        return self.choices == DEVICES and isinstance(value, str) and value.startswith("cuda:") and value[5:].isdigit()

    def _describe(self) -> str:
        names = {bool: "true or false", int: "a whole number", float: "a number", str: "text", dict: "a table"}
        text = " or ".join(names.get(kind, kind.__name__) for kind in self.kinds)
        if self.choices:
            text = "one of " + ", ".join(map(str, self.choices))
        return text + (f" {self._range()}" if self._range() else "") + (" (or left out)" if self.optional else "")

    def _range(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'above' if self.low_open else 'at least'} {self.low:g}"
        if self.high is not None:
            return f"{'below' if self.high_open else 'at most'} {self.high:g}"
        return ""


def _whole(low: float | None = None, high: float | None = None, optional: bool = False) -> Rule:
    return Rule((int,), optional=optional, low=low, high=high)


def _number(low: float | None = None, high: float | None = None, optional: bool = False, **open_ends: bool) -> Rule:
    return Rule((float,), optional=optional, low=low, high=high, **open_ends)


def _switch(optional: bool = False) -> Rule:
    return Rule((bool,), optional=optional)


def _text(optional: bool = False, choices: tuple[str, ...] = ()) -> Rule:
    return Rule((str,), optional=optional, choices=choices)


def dataset_roots(data: Any) -> list[str]:
    """The dataset folders of a run: a list, each a root ([] = none given). A single string is ONE folder,
    never split on os.pathsep (`ti:me` is a legal folder name); configs written before roots were a list
    hold one string. Several roots are folders that are one class each."""
    if data is None or data == "" or data == []:
        return []
    given = [data] if isinstance(data, str | bytes | os.PathLike) else data
    if not isinstance(given, Sequence) or not all(isinstance(p, str | bytes | os.PathLike) for p in given):
        raise OptionError("data", data, "must be a dataset folder, or a list of folders (each one class)")
    roots = [os.fsdecode(p) for p in given]
    if not all(roots):  # dropping it would quietly change the layout (two roots → one)
        raise OptionError("data", data, "a folder name is empty")
    return roots


@dataclass(frozen=True)
class Option:
    """How one TrainConfig field is offered: its rule, its help, its shape on the command line and the label
of the app's control that sets it (messages name the option by one or the other, see `Mention`)."""

    rule: Rule
    help: str
    cli: str = "value"  # "value": --flag VALUE; "on": --flag turns it on; "off": --no-flag turns it off; "": none
    flag: str = ""  # the flag's name where it is not the field's
    metavar: str | None = None
    label: str = ""  # the app control's label ("" = the field name in words)

    def flag_name(self, field_name: str) -> str:
        name = (self.flag or field_name).replace("_", "-")
        return f"--no-{name}" if self.cli == "off" else f"--{name}"


def option(
    default: Any = None,
    rule: Rule | None = None,
    help: str = "",
    *,
    cli: str = "value",
    flag: str = "",
    metavar: str | None = None,
    factory: Any = None,
    label: str = "",
) -> Any:
    """A dataclass field that carries its Option (read back with `options()`)."""
    assert rule is not None and help, "every option states what it accepts and what it does"
    metadata = {"option": Option(rule, help, cli, flag, metavar, label)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def options() -> dict[str, Option]:
    """Every TrainConfig option by field name, in declaration order."""
    return {f.name: f.metadata["option"] for f in fields(TrainConfig)}


def label(name: str) -> str:
    """The label of the app's control for option `name` (its field name in words if it has none)."""
    spec = options().get(name)
    return (spec.label if spec is not None else "") or name.replace("_", " ").replace(".", " ").capitalize()


def command_line_flag(mention: Mention | Action) -> str:
    """An option named in a message, as the command line spells it (`--img-size 32`, `--no-tta`, `--name X`):
    the CLI's way of saying a `Mention`, from the declarations (flag names, on/off switches); an `Action` as its
    command."""
    if isinstance(mention, Action):
        return mention.flag()
    spec = options().get(mention.option)
    if spec is None or not spec.cli:  # not a flag of `train` (another command's, or a config-file key)
        return mention.flag()
    name = "--" + (spec.flag or mention.option).replace("_", "-")
    if isinstance(mention.value, bool) and not mention.as_given and spec.cli in ("on", "off"):
        return name if mention.value else f"--no-{name[2:]}"
    return f"{name} {mention.shown()}" if mention.has_value else name


@dataclass
class AugmentConfig:
    """Batched, on-device augmentation (the AlexNet-style ones of the course). Training split only."""

    crop_padding: int = 2  # random translate by up to this many pixels (reflect-padded crop); 0 = off
    zoom: float = 0.0  # random zoom in, showing down to (1 - zoom) of each side; 0 = off
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
                elif key == "zoom":
                    aug.zoom = float(value or 0.15)
                elif key == "brightness":
                    aug.brightness = float(value or 0.2)
                elif key == "contrast":
                    aug.contrast = float(value or 0.2)
                else:
                    raise ConfigError(
                        f"unknown augmentation '{key}' in '{text}': use flip, crop=N, zoom=F, brightness=F, contrast=F or none"
                    )
            except ValueError as exc:
                raise ConfigError(f"bad value in augmentation '{part}': {exc}") from None
        return aug


@dataclass
class TrainConfig:
    """Every option, declared once: its default, what it accepts, and the help both clients show."""

    data: list[str] = option(
        rule=Rule((list,)), factory=list, cli="", label="Dataset",
        help="the dataset folder (class sub-folders, or train/val/test ones), or several folders, one class each",
    )
    model: str | None = option(None, _text(optional=True), "zoo model name (see `workbench models`); default: chosen "
                               "from the images", label="Model")
    model_args: dict[str, Any] = option(rule=Rule((dict,)), factory=dict, cli="", help="architecture arguments")
    epochs: int | None = option(None, _whole(1, 100_000, optional=True),
                                "how many times training goes through all the training images; default: "
                                "chosen from the dataset size; raise it if validation accuracy is still climbing "
                                "at the end", label="Epochs")
    batch_size: int | None = option(None, _whole(1, 65_536, optional=True),
                                    "how many images the model sees before each update of its weights; default: 128, "
                                    "fewer for small folders; lower it if memory runs out",
                                    label="Batch size")
    lr: float | None = option(None, _number(0, 10, optional=True, low_open=True),
                              "how big each update of the weights is at its largest; default: chosen for the "
                              "optimizer and recipe; lower it if the loss jumps about or becomes nan",
                              label="Learning rate")
    optimizer: str | None = option(None, _text(optional=True, choices=OPTIMIZERS),
                                   "SGD with Nesterov momentum, Adam or AdamW; default: AdamW when fine-tuning "
                                   "from a fitted head (stage 2), else SGD", label="Optimizer")
    momentum: float = option(0.9, _number(0, 1, high_open=True), "SGD momentum")
    nesterov: bool = option(True, _switch(), "Nesterov's momentum (SGD)", cli="off")
    weight_decay: float = option(5e-4, _number(0, 1),
                                 "pulls every weight a little towards zero so the model does not memorize the "
                                 "training images; raise it if training accuracy is far above validation accuracy",
                                 label="Weight decay")
    schedule: str = option("onecycle", _text(choices=SCHEDULES),
                           "how the learning rate changes over the run: onecycle (warm up, then down), "
                           "cosine, step (divided by 10 every few epochs), plateau (divided by 10 when validation "
                           "accuracy stalls) or constant; keep onecycle unless you follow a recipe",
                           label="Schedule")
    step_size: int = option(10, _whole(1, 100_000), "step schedule: epochs between divisions by 10", cli="")
    plateau_patience: int = option(2, _whole(0, 100_000), "plateau schedule: epochs without val gain before lr /= 10",
                                   cli="")
    # soft targets: +0.2-0.4 points on Fashion-MNIST (benchmarks), a common default
    label_smoothing: float = option(0.1, _number(0, 1, high_open=True),
                                    "lets the model aim slightly below full certainty on the right class, which "
                                    "usually generalizes better; 0 turns it off", label="Label smoothing")
    grad_clip: float | None = option(None, _number(0, None, optional=True, low_open=True),
                                     "clip the global gradient norm to this value",
                                     metavar="NORM", label="Gradient clipping")
    early_stopping: int | None = option(None, _whole(1, 100_000, optional=True),
                                        "ends the run after this many epochs in a row without better validation "
                                        "accuracy; set it to save time on long runs",
                                        metavar="EPOCHS", label="Early stopping")
    img_size: int | None = option(None, _whole(*IMG_SIZE_RANGE, optional=True),
                                  "the side in pixels images are resized to for training; default: from the images "
                                  "and the model; larger sees more detail but trains slower",
                                  label="Image size")
    channels: int | None = option(None, Rule((int,), optional=True, choices=(1, 3)),
                                  "1 (gray) or 3 (colour); default: from the images")
    val_split: float = option(0.1, _number(0, 1, high_open=True),
                              "the fraction of training images kept aside to check each epoch and keep the best "
                              "one (when the folder has no val folder); 0.1 suits most datasets",
                              label="Validation split")
    test_split: float = option(0.0, _number(0, 1, high_open=True),
                               "fraction held out for testing when the folder has no test split")
    augment: AugmentConfig | None = option(None, Rule((AugmentConfig,), optional=True), cli="",
                                           help="batched augmentation of training images; default: chosen from "
                                           "the run length")
    device: str = option("auto", _text(choices=DEVICES), "where training runs: auto takes an NVIDIA GPU (cuda), "
                         "else an Apple GPU (mps), else the CPU; pick cpu to leave the GPU free, cuda:N for one "
                         "GPU of several", label="Device")
    amp: bool = option(True, _switch(), "mixed precision: computes in 16-bit numbers where that is safe, faster and "
                       "lighter on memory; turn it off if the loss becomes nan", cli="off",
                       label="mixed precision")
    tta: bool = option(True, _switch(), "judges each test or predicted image together with its mirror image and "
                       "averages the two (when training flipped images), usually a little more accurate; turn it "
                       "off to judge single images", cli="off", label="test on image + mirror")
    channels_last: bool = option(True, _switch(), "NHWC memory layout (faster convolutions on CUDA and CPU)", cli="")
    compile: bool = option(False, _switch(), "torch.compile the model (CUDA)", cli="on")
    seed: int = option(0, _whole(0, 2**63 - 1), "the number behind every random choice (split, starting weights, "
                        "augmentation); keep it to repeat a run, change it to see how much a result is luck",
                        label="Seed")
    deterministic: bool = option(False, _switch(), "deterministic algorithms (slower; same losses every run)",
                                 cli="on")
    pretrained: bool = option(False, _switch(), "start from ImageNet weights", cli="on")
    weights: str | None = option(None, _text(optional=True),
                                 "start from a weights file (torchvision state dict) or one of your runs",
                                 metavar="FILE_OR_RUN", label="Starting weights")
    strategy: str | None = option(None, _text(optional=True, choices=STRATEGIES),
                                  "transfer-learning strategy; default: advised from the data size and whether the images look like ImageNet photos",
                                  label="Strategy")
    # the user's answer to "do your images look like ImageNet photos?" (CLI: --domain similar|different)
    similar_to_imagenet: bool = option(True, _switch(), "are the images like ImageNet photos?", cli="",
                                       label="Your images are")
    unfreeze: int = option(2, _whole(0, 10_000), "fine-tune-top: number of top blocks to train",
                           metavar="N", label="Unfrozen blocks")
    head_epochs: int = option(1, _whole(0, 100_000), "fine-tune-gradual: epochs with the body frozen", cli="")
    backbone_lr_mult: float | None = option(None, _number(0, 10, optional=True), cli="",
                                            help="pretrained layers train at lr times this; default: 1 in stage 2 "
                                            "with AdamW, else 0.1")
    linear_probe: bool | None = option(None, _switch(optional=True), cli="",
                                       help="stage 1: fit the head on cached frozen features; default: when "
                                       "pretrained")
    quick: bool = option(False, _switch(), "pretrained runs: stop after stage 1, the head fitted on cached features "
                         "(seconds, no fine-tuning; --resume RUN fine-tunes it later)", cli="on",
                         label="Stop after the instant model (stage 1)")
    freeze_bn_stats: bool | None = option(None, _switch(optional=True), cli="",
                                          help="batch norm keeps its running statistics; default: for few images")
    checkpoint_every: int = option(1, _whole(1, 100_000), "epochs between checkpoints", cli="")
    run_name: str | None = option(None, _text(optional=True), "a name for the run", flag="name")

    def __post_init__(self) -> None:
        self.data = dataset_roots(self.data)

    def validate(self) -> TrainConfig:
        """Check every option's type and range before any work starts (the table below names them all)."""
        self.data = dataset_roots(self.data)
        for name, spec in options().items():
            if name not in ("data", "augment"):  # checked by dataset_roots and below
                spec.rule.check(name, getattr(self, name))
        if self.augment is not None:
            if not isinstance(self.augment, AugmentConfig):
                raise OptionError("augment", self.augment, "must be a table of crop_padding, zoom, flip, brightness, contrast")
            for name, rule in _AUGMENT_RULES.items():
                rule.check(f"augment.{name}", getattr(self.augment, name))
        if self.quick and self.linear_probe is False:
            raise OptionError("quick", True, "the quick model is the linear probe: it cannot be turned off with it")
        if self.val_split + self.test_split >= 1:
            raise OptionError("test_split", self.test_split, "val + test fractions must stay below 1")
        if self.device != "auto":  # a GPU that isn't there is said now, not after the dataset is decoded
            from workbench.engine.device import pick_device

            pick_device(self.device)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"training options must be a table of name = value, not {shown_value(data)}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown training options: {', '.join(sorted(unknown))}")
        data = dict(data)
        augment = data.get("augment")
        if isinstance(augment, dict):
            unknown = set(augment) - set(_AUGMENT_RULES)
            if unknown:
                raise ConfigError(f"unknown augmentation options: {', '.join(sorted(unknown))}")
            data["augment"] = AugmentConfig(**augment)
        return cls(**data)

    # ---- TOML: a run's settings as a file to keep, share, or train on a cluster with --config ------------
    def to_toml(self) -> str:
        """The options as a TOML file to keep, share, or train on a cluster with `--config` (None = left out:
        the engine chooses)."""
        import tomli_w

        def present(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: present(v) for k, v in value.items() if v is not None}
            return value

        values = {k: present(v) for k, v in self.to_dict().items() if v is not None and v != {}}
        header = "# CNN Workbench training configuration: workbench train --config THIS_FILE\n"
        return header + tomli_w.dumps(values)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> TrainConfig:
        where = f"--config {os.fsdecode(path)}"
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
            data = tomllib.loads(text)
        except IsADirectoryError:
            raise ConfigError(f"{where}: is a folder, not a TOML file") from None
        except OSError as exc:
            raise ConfigError(f"{where}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML ({exc})") from None
        try:
            return cls.from_dict(data).validate()
        except OptionError as exc:
            raise exc.in_file(path) from None
        except (TypeError, ConfigError) as exc:
            raise ConfigError(f"{where}: {exc}") from None


_AUGMENT_RULES: dict[str, Rule] = {
    "crop_padding": _whole(0, 64),
    "zoom": _number(0, 0.9),
    "flip": _switch(),
    "brightness": _number(0, 1),
    "contrast": _number(0, 1),
}
