"""The zoo as the course's "Keras Applications" table, and what a client asks about one model before training.

- `published_metrics(name)`: weights file size (MB) and ImageNet-1K top-1/top-5 accuracy of the model's
  pretrained weights (torchvision's weight metadata; EfficientNet-Lite0's published figure), without
  downloading anything;
- `depth(model)`: layers with weights (convolutions and fully connected layers);
- `ms_per_image(name, size, channels)`: inference time measured on this machine, cached on disk in the
  engine's cache dir (measuring means building and running the model: call it off a UI thread);
- `weights_location(name)`: the local file of a model's ImageNet weights when they are already on this
  computer (torch's download cache, or an offline package), else None, so a client offers "Download now"
  only where there is something to download;
- `parameter_split(...)`: trainable vs frozen parameters under a transfer strategy, as the trainer's
  TransferPlan will set them;
- `default_choice(...)`: the model (and weights, input side, recipe notes) the engine trains on a dataset
  when the user picks none, or with the model and weights they picked — the same `resolve_defaults` the CLI
  and the trainer use.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEED_CACHE_FILE = "model_speed.json"
SPEED_BATCH = 4
_speed_lock = threading.Lock()


@dataclass(frozen=True)
class PublishedMetrics:
    weights_mb: float | None  # size of the pretrained weights file
    top1: float | None  # ImageNet-1K validation accuracy of those weights, in percent
    top5: float | None
    source: str  # where the figures come from


def published_metrics(name: str) -> PublishedMetrics:
    """Weights size and ImageNet accuracy of `name`'s pretrained weights (all None for a model without)."""
    from workbench.engine.models import get_spec

    spec = get_spec(name)
    if not spec.pretrained:
        return PublishedMetrics(None, None, None, "")
    if spec.source == "torchvision":
        from torchvision.models import get_model_weights

        meta = get_model_weights(name).DEFAULT.meta
        metrics = meta.get("_metrics", {}).get("ImageNet-1K", {})
        return PublishedMetrics(
            meta.get("_file_size"), metrics.get("acc@1"), metrics.get("acc@5"), "torchvision weight metadata"
        )
    # EfficientNet-Lite's weights come from TensorFlow: top-1 as published in its model card
    # (tensorflow/tpu, models/official/efficientnet/lite/README.md); it gives no top-5 figure.
    from workbench.engine.models.efficientnet_lite import published_top1

    top1, top5 = published_top1(name), None
    location = weights_location(name)
    size = round(location.stat().st_size / 1e6, 1) if location is not None else None
    return PublishedMetrics(size, top1, top5, "TensorFlow model card" if top1 is not None else "")


def depth(model: Any) -> int:
    """Layers with weights: modules owning a weight of two or more dimensions (convolutions, linear layers)."""
    return sum(1 for module in model.modules() if any(p.ndim >= 2 for p in module.parameters(recurse=False)))


def weights_location(name: str) -> Path | None:
    """The local file of `name`'s ImageNet weights if they are on this computer now; None otherwise (no
    weights, or weights still to download). Never downloads."""
    from workbench.engine.errors import WeightsError
    from workbench.engine.models import get_spec, pretrained_weights_file

    spec = get_spec(name)
    if not spec.pretrained:
        return None
    if spec.source == "torchvision":  # downloaded on demand into torch's cache
        from workbench.engine.models.weights import cache_path, torchvision_weights_url

        path = cache_path(torchvision_weights_url(name))
        return path if path.is_file() else None
    try:  # the workbench's own weights are local files (an offline package): locating them fetches nothing
        path = pretrained_weights_file(name)
    except WeightsError:
        return None
    return path if path.is_file() else None


def parameter_split(
    name: str,
    channels: int,
    num_classes: int,
    *,
    strategy: str = "fine-tune-all",
    pretrained: bool = False,
    unfreeze: int = 2,
    linear_probe: bool = False,
) -> tuple[int, int, str]:
    """(trainable, frozen, one-line description) of `name`'s parameters when training starts under
    `strategy` (the trainer's TransferPlan decides; built on the meta device, so it costs no memory).
    With `linear_probe` only the head trains (stage 1 of LP-FT), and `strategy` is stage 2's."""
    import torch

    from workbench.engine.models import build_model
    from workbench.engine.training.defaults import with_probe_args
    from workbench.engine.training.transfer import TransferPlan

    with torch.device("meta"):  # stage 1's head reads the taps the run will use
        model = build_model(name, num_classes, channels, **(with_probe_args(name, {}) if linear_probe else {}))
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    if linear_probe:
        plan = TransferPlan(model, "feature-extractor", pretrained=True)
        trainable = plan.trainable_count()
        stage_two = TransferPlan(model, strategy, unfreeze=unfreeze, pretrained=True, taps_held_at_zero=True)
        tuned = stage_two.trainable_count()  # held-at-zero tap weights are not counted: then tuned < total
        taps = f" (the head's {stage_two.held_at_zero:,} tap weights stay at zero)" if stage_two.held_at_zero else ""
        return (
            trainable,
            total - trainable,
            "stage 1 trains only the new head on the frozen network's features; stage 2 then fine-tunes "
            + (f"{tuned:,} of {total:,}{taps}" if tuned < total else f"all {total:,}"),
        )
    plan = TransferPlan(model, strategy, unfreeze=unfreeze, pretrained=pretrained)
    trainable = plan.trainable_count()
    return trainable, total - trainable, plan.describe()


@dataclass(frozen=True)
class DefaultChoice:
    model: str
    pretrained: bool
    img_size: int
    linear_probe: bool
    notes: list[str]
    model_args: dict = field(default_factory=dict)  # what the model is built with (stage 1's taps)


def default_choice(typical_size: int, channels: int, num_train_images: int, **fields: Any) -> DefaultChoice:
    """What the engine trains on such a dataset: `resolve_defaults` on a TrainConfig of `fields` (none: the
    user picked nothing; e.g. model=…, pretrained=True: their own pick), for the device a run would use."""
    from workbench.engine.training.config import TrainConfig
    from workbench.engine.training.defaults import resolve_defaults, run_device_type

    config = TrainConfig(**fields)
    config, notes = resolve_defaults(
        config, typical_size=typical_size, channels=channels, num_train_images=num_train_images,
        device_type=run_device_type(config),
    )  # fmt: skip
    return DefaultChoice(
        config.model, bool(config.pretrained), config.img_size, bool(config.linear_probe), notes,
        dict(config.model_args),
    )  # fmt: skip


# --- speed -------------------------------------------------------------------------------------------------


def _speed_key(name: str, size: int, channels: int) -> str:
    import torch

    return f"{name}|{size}|{channels}|cpu|torch {torch.__version__}|{torch.get_num_threads()} threads"


def _speed_cache_path() -> Path:
    from workbench.engine.paths import cache_dir

    return cache_dir() / SPEED_CACHE_FILE


def _read_speed_cache(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return (
        {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
        if isinstance(data, dict)
        else {}
    )


def cached_ms_per_image(name: str, size: int, channels: int) -> float | None:
    """The measured time from the disk cache, or None when this machine has not measured it yet."""
    return _read_speed_cache(_speed_cache_path()).get(_speed_key(name, size, channels))


def ms_per_image(name: str, size: int, channels: int, *, repeats: int = 2) -> float:
    """Milliseconds per image of `name`'s inference on this machine's CPU at `size`×`size`×`channels`
    (a batch of SPEED_BATCH, after one warm-up pass; the best of `repeats`), cached on disk."""
    cached = cached_ms_per_image(name, size, channels)
    if cached is not None:
        return cached
    import torch

    from workbench.engine.models import build_model

    model = build_model(name, 10, channels).eval()
    batch = torch.randn(SPEED_BATCH, channels, size, size)
    best = float("inf")
    with torch.inference_mode():
        model(batch)
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            model(batch)
            best = min(best, time.perf_counter() - start)
    ms = round(1000 * best / SPEED_BATCH, 2)
    path = _speed_cache_path()
    with _speed_lock:
        data = _read_speed_cache(path)
        data[_speed_key(name, size, channels)] = ms
        try:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=0, sort_keys=True), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs a re-measurement
    return ms
