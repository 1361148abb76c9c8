"""The model zoo: every architecture the workbench offers, found by name.

Adding a model is one registration: decorate its builder with `register_model(...)` in the module of
its family (listed in `_FAMILY_MODULES`). A builder is `fn(num_classes, in_channels, **kwargs) -> nn.Module`
and always builds the same structure for the same arguments, whether or not weights are loaded later,
so checkpoints rebuild with `build_model(name, classes, channels, **model_args)`.

`build_model(..., pretrained=True)` or `weights_path=...` loads weights in the layout they were
published in (ImageNet: 1000 classes, 3 channels), checks every name and shape, then adapts the head
and the first convolution to the dataset (see `adapt.py`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.engine.errors import Mention, ModelError, WeightsError

if TYPE_CHECKING:
    from torch import nn

    from workbench.engine.models.weights import PretrainedWeights

SOURCES = ("torchvision", "workbench")

# Modules whose import registers their models; imported on first use so `import workbench.engine.models`
# stays cheap.
_FAMILY_MODULES = (
    "course_cnn",
    "compact",
    "lenet",
    "alexnet_lrn",
    "nin",
    "se_resnet",
    "efficientnet_lite",
    "small_variants",
    "torchvision_zoo",
)


@dataclass(frozen=True)
class ModelSpec:
    """What the model picker, the CLI's `workbench models` and the defaults need to know about a model."""

    name: str
    family: str
    year: int
    description: str  # one line
    min_size: int  # smallest input side that works
    default_size: int  # the size it is meant for (28/32 for small models, 224 for ImageNet ones)
    pretrained: bool  # ImageNet weights available (torchvision download or offline package)
    source: str  # "torchvision" | "workbench"
    # Model arguments a run with a linear-probe stage adds (EfficientNet-Lite's `taps`, `tap_max`: what else
    # its head reads besides the last layer's pooled features); empty = none.
    probe_args: dict[str, Any] = field(default_factory=dict)

    def input_size_for(self, typical_size: int) -> int:
        """The side this model trains at when the user picks it without ImageNet weights (those choose the
        side by a time budget: `defaults.pretrained_input_size`): the images' own, capped at the size the
        model is made for and raised to the smallest it accepts. The trainer and the model picker ask this."""
        return max(min(typical_size, self.default_size), self.min_size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Entry:
    spec: ModelSpec
    builder: Callable[..., nn.Module]
    weights: PretrainedWeights | None


_ENTRIES: dict[str, _Entry] = {}
_loaded = False


def register_model(
    name: str,
    *,
    family: str,
    year: int,
    description: str,
    min_size: int,
    default_size: int,
    pretrained: bool = False,
    source: str = "workbench",
    weights: PretrainedWeights | None = None,
    probe_args: dict[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering `builder(num_classes, in_channels, **kwargs)` under `name`.

    `weights` says where the ImageNet weights come from; it is required when `pretrained` is True.
    `probe_args`: builder arguments (such as `taps=`, blocks whose pooled features join the head's input)
    that a run with a linear-probe stage uses by default.
    """
    if pretrained != (weights is not None):
        raise ValueError(f"model {name}: pretrained=True needs a weights source, and only then")
    if source not in SOURCES:
        raise ValueError(f"model {name}: source must be one of {SOURCES}")
    if not 1 <= min_size <= default_size:
        raise ValueError(f"model {name}: need 1 <= min_size <= default_size")

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _ENTRIES:
            raise ValueError(f"model {name} is registered twice")
        spec = ModelSpec(
            name, family, year, description, min_size, default_size, pretrained, source, dict(probe_args or {})
        )
        _ENTRIES[name] = _Entry(spec, builder, weights)
        return builder

    return decorator


def _ensure_registered() -> None:
    global _loaded
    if not _loaded:
        for module in _FAMILY_MODULES:  # imports are idempotent and locked: safe from several threads
            importlib.import_module(f"workbench.engine.models.{module}")
        _loaded = True


def _entry(name: str) -> _Entry:
    _ensure_registered()
    entry = _ENTRIES.get(name)
    if entry is None:
        close = difflib.get_close_matches(str(name).lower(), _ENTRIES, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelError(
            f"unknown model '{name}': {hint}`workbench models` lists the {len(_ENTRIES)} available"
        )
    return entry


def list_models() -> list[ModelSpec]:
    """Every registered model, grouped by family then name."""
    _ensure_registered()
    return sorted(
        (entry.spec for entry in _ENTRIES.values()), key=lambda spec: (spec.family.lower(), spec.name)
    )


def get_spec(name: str) -> ModelSpec:
    """The spec of `name`; ModelError (with close matches) for an unknown name."""
    return _entry(name).spec


def check_input_size(name: str, size: int) -> None:
    """ModelError when `size` (the side of the square training images) is too small for `name`."""
    spec = get_spec(name)
    if size < spec.min_size:
        small = [s.name for s in list_models() if s.min_size <= size and s.default_size <= 64][:3]
        hint = f", or a model made for small images ({', '.join(small)})" if small else ""
        raise ModelError(
            f"{name} needs images of at least {spec.min_size}×{spec.min_size} pixels, but the image size is "
            f"{size}: use ",
            Mention("img_size", spec.min_size),
            f" or more (images are resized){hint}",
        )


def pretrained_weights_file(name: str, progress: Callable[[int, int], None] | None = None) -> Path:
    """The local file of `name`'s ImageNet weights, downloading it into torch's cache first if needed
    (so a client can fetch weights ahead of training; raise from `progress` to cancel a download)."""
    entry = _entry(name)
    if entry.weights is None:
        raise WeightsError(f"{name} has no pretrained weights")
    return entry.weights.locate(progress)


def build_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    *,
    pretrained: bool = False,
    weights_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build `name` for `num_classes` classes and `in_channels` input channels.

    pretrained: load its ImageNet weights (downloaded once into torch's cache, `progress(done, total)` bytes;
        offline -> WeightsError telling the user to pass a weights file).
    weights_path: a torchvision-style state dict (.pth/.pt/.safetensors) loaded instead; every name and shape
        must fit the architecture (WeightsError naming the layers that do not).
    With weights, the head is replaced when the class count differs and the first convolution is adapted
    to `in_channels` by summing (1 channel) or replicating its pretrained kernels, never re-initialized.
    """
    entry = _entry(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(
            f"{name}: the number of classes must be a positive whole number, got {num_classes!r}"
        )
    if not isinstance(in_channels, int) or in_channels < 1:
        raise ModelError(f"{name}: the number of input channels must be 1 or more, got {in_channels!r}")
    try:
        model = entry.builder(num_classes, in_channels, **kwargs)
    except TypeError as exc:
        if "argument" not in str(exc):
            raise
        raise ModelError(f"{name}: bad model option(s) {kwargs}: {exc}") from None
    if weights_path is None and not pretrained:
        return model

    from workbench.engine.models import weights as weights_io

    if weights_path is not None:
        state = weights_io.read_state_dict(weights_path)
        origin = str(weights_path)
    else:
        if entry.weights is None:
            with_weights = ", ".join(s.name for s in list_models() if s.pretrained)
            raise WeightsError(f"{name} has no pretrained weights; models that have them: {with_weights}")
        state, origin = entry.weights.fetch(progress)
    weights_io.load_into(
        model,
        state,
        origin=origin,
        source=entry.weights,
        num_classes=num_classes,
        in_channels=in_channels,
        name=name,
    )
    return model
