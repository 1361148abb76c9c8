"""Worker-side half of the model picker: zoo specs, summaries at the dataset's size, weight downloads.

Everything here runs in worker threads and imports the engine (torch) lazily. Summaries are computed on
PyTorch's `meta` device: shapes, parameters and MACs without allocating weights or computing anything,
so even VGG-19 summarizes in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

DEFAULT_INPUT = (28, 1, 10)  # image side, channels, classes before a dataset is loaded (Fashion-MNIST's)


class DownloadCancelled(Exception):
    """Raised from the download's progress callback to abandon it (the partial file is removed)."""


@dataclass(frozen=True)
class ZooRow:
    name: str
    family: str
    year: int
    description: str
    pretrained: bool
    img_size: int  # the side this model trains at on the current dataset
    params: int | None
    macs: int | None
    dataset_input: tuple[int, int, int]  # (typical image side, channels, classes) these numbers are for
    error: str = ""
    depth: int | None = None  # layers with weights
    weights_mb: float | None = None  # pretrained weights file
    top1: float | None = None  # ImageNet-1K accuracy of the pretrained weights, percent
    top5: float | None = None
    metrics_source: str = ""
    ms_per_image: float | None = None  # inference on this machine's CPU at img_size (measured, cached)


def list_specs() -> list[Any]:
    from workbench.engine.models import list_models

    return list_models()


def _build_and_summarize(
    name: str, img_size: int, channels: int, num_classes: int, model_args: dict | None = None
) -> tuple[Any, int]:
    """The engine's ModelSummary and depth of `name` built with `model_args`, computed on the meta device
    (falls back to a real pass if an op lacks it)."""
    import torch

    from workbench.engine.models import build_model, summarize
    from workbench.engine.models.catalog import depth

    try:
        with torch.device("meta"):
            model = build_model(name, num_classes, channels, **(model_args or {}))
        summary = summarize(model, img_size=img_size, in_channels=channels, num_classes=num_classes)
    except (NotImplementedError, RuntimeError):
        model = build_model(name, num_classes, channels, **(model_args or {}))
        summary = summarize(model, img_size=img_size, in_channels=channels, num_classes=num_classes)
    return summary, depth(model)


def summary_for(name: str, img_size: int, channels: int, num_classes: int, model_args: dict | None = None) -> Any:
    """The engine's ModelSummary of the model a run would build (`model_args`: e.g. stage 1's taps)."""
    return _build_and_summarize(name, img_size, channels, num_classes, model_args)[0]


def planned_summary(
    name: str,
    pretrained: bool,
    typical_size: int,
    channels: int,
    num_classes: int,
    num_train_images: int,
    img_size: int | None = None,
) -> Any:
    """The ModelSummary of the network a run of `name` (from ImageNet weights or not) would build on this
    dataset, at the input side the engine picks for it (`default_choice`; `img_size`: the user's), with its
    model arguments."""
    from workbench.engine.models.catalog import default_choice

    choice = default_choice(
        typical_size, channels, num_train_images, model=name, pretrained=pretrained, img_size=img_size
    )
    return summary_for(name, choice.img_size, channels, num_classes, choice.model_args)


def zoo_rows(
    specs: list[Any], typical_size: int, channels: int, num_classes: int, *, measure_speed: bool = True
) -> Iterator[ZooRow]:
    """One row per model with parameters, depth, MACs at the size it would train at and its published
    ImageNet figures; then (`measure_speed`) each row again with its milliseconds per image measured on this
    machine (cached on disk by the engine). A generator so the table fills progressively and a new dataset
    can abandon the sweep between models."""

    from workbench.engine.errors import WorkbenchError
    from workbench.engine.models.catalog import PublishedMetrics, published_metrics

    rows = []
    for spec in specs:
        size = spec.input_size_for(typical_size)
        depth = None
        try:
            summary, depth = _build_and_summarize(spec.name, size, channels, num_classes)
            params, macs, error = summary.total_params, summary.macs, ""
        except (WorkbenchError, NotImplementedError, RuntimeError) as exc:
            params, macs, error = None, None, str(exc)
        try:
            metrics = published_metrics(spec.name)
        except Exception:  # noqa: BLE001 - a model without metadata still lists
            metrics = PublishedMetrics(None, None, None, "")
        row = ZooRow(
            spec.name,
            spec.family,
            spec.year,
            spec.description,
            spec.pretrained,
            size,
            params,
            macs,
            (typical_size, channels, num_classes),
            error,
            depth,
            metrics.weights_mb,
            metrics.top1,
            metrics.top5,
            metrics.source,
        )
        rows.append(row)
        yield row
    if measure_speed:
        yield from zoo_speeds(rows)


def zoo_speeds(rows: list[ZooRow]) -> Iterator[ZooRow]:
    """Each row again with its milliseconds per image measured on this machine's CPU (cached on disk by the
    engine). Only while nothing else of the app's computes: a measurement beside a training run is slow by
    a random factor and would be remembered as this machine's speed."""
    import dataclasses

    from workbench.engine.errors import WorkbenchError
    from workbench.engine.models.catalog import ms_per_image

    for row in rows:
        if row.error:
            continue
        try:
            ms = ms_per_image(row.name, row.img_size, row.dataset_input[1])
        except (WorkbenchError, RuntimeError, MemoryError):
            continue
        yield dataclasses.replace(row, ms_per_image=ms)


def weights_on_disk(name: str) -> tuple[str, str]:
    """(model, local path of its ImageNet weights or "" when they still need downloading)."""
    from workbench.engine.models.catalog import weights_location

    path = weights_location(name)
    return name, str(path) if path is not None else ""


def parameter_split(
    name: str, channels: int, num_classes: int, options: dict[str, Any]
) -> tuple[int, int, str]:
    """Trainable and frozen parameters under the strategy of `options` (the engine's TransferPlan)."""
    from workbench.engine.models.catalog import parameter_split as split

    return split(name, channels, num_classes, **options)


def planned_split(
    name: str, channels: int, num_classes: int, typical_size: int, num_train_images: int, options: dict[str, Any]
) -> tuple[int, int, str]:
    """`parameter_split` for the user's own pick with the transfer `options` they set, staged as the engine
    will run it: from ImageNet weights, a linear head first (stage 1) when the engine decides so."""
    from workbench.engine.models.catalog import default_choice

    choice = default_choice(typical_size, channels, num_train_images, model=name, **options)
    return parameter_split(name, channels, num_classes, {**options, "linear_probe": choice.linear_probe})


def default_choice(typical_size: int, channels: int, num_train_images: int) -> Any:
    """The model the engine trains for this dataset when the user picks none (as the CLI does)."""
    from workbench.engine.models.catalog import default_choice as choose

    return choose(typical_size, channels, num_train_images)


def download_weights(name: str, progress: Callable[[int, int], None], should_stop: Callable[[], bool]) -> str:
    """Download (or find in torch's cache) the ImageNet weights of `name`; returns a short confirmation."""
    from workbench.engine.models import pretrained_weights_file

    def report(done: int, total: int) -> None:
        if should_stop():
            raise DownloadCancelled(f"download of {name}'s weights cancelled")
        progress(done, total)

    path = pretrained_weights_file(name, report)
    return f"ImageNet weights for {name} are ready ({path})"


@dataclass(frozen=True)
class StrategyAdvice:
    strategy: str
    unfreeze_blocks: int  # for fine-tune-top: how many top blocks train
    reason: str


def advise(
    num_train_images: int, similar_domain: bool, model: str, channels: int, num_classes: int
) -> StrategyAdvice:
    """The engine's transfer advice for this dataset, with its unfreeze fraction turned into blocks of `model`."""
    import torch

    from workbench.engine.models import build_model
    from workbench.engine.training.transfer import advise_strategy, blocks_to_unfreeze

    advice = advise_strategy(num_train_images, similar_to_imagenet=similar_domain)
    with torch.device("meta"):  # only the block structure is needed
        network = build_model(model, num_classes, channels)
    return StrategyAdvice(
        advice.strategy, blocks_to_unfreeze(network, advice.unfreeze_fraction), advice.reason
    )


def earlier_runs() -> list[Any]:
    """Runs with a checkpoint to start from, newest first."""
    from workbench.engine.runs import RunRegistry

    return [record for record in RunRegistry().list_runs() if record.checkpoint]
