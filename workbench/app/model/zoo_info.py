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


def training_size(spec: Any, typical_size: int) -> int:
    """The image side the trainer will use for this model (see the engine's `resolve_defaults`)."""
    return max(min(typical_size, spec.default_size), spec.min_size)


def list_specs() -> list[Any]:
    from workbench.engine.models import list_models

    return list_models()


def summary_for(name: str, img_size: int, channels: int, num_classes: int) -> Any:
    """The engine's ModelSummary, computed on the meta device (falls back to a real pass if an op lacks it)."""
    import torch

    from workbench.engine.models import build_model, summarize

    try:
        with torch.device("meta"):
            model = build_model(name, num_classes, channels)
        return summarize(model, img_size=img_size, in_channels=channels, num_classes=num_classes)
    except (NotImplementedError, RuntimeError):
        return summarize(name, img_size=img_size, in_channels=channels, num_classes=num_classes)


def zoo_rows(specs: list[Any], typical_size: int, channels: int, num_classes: int) -> Iterator[ZooRow]:
    """One row per model with parameters and MACs at the size it would train at; a generator so the
    table fills progressively and a new dataset can abandon the sweep between models."""
    from workbench.engine.errors import WorkbenchError

    for spec in specs:
        size = training_size(spec, typical_size)
        try:
            summary = summary_for(spec.name, size, channels, num_classes)
            params, macs, error = summary.total_params, summary.macs, ""
        except (WorkbenchError, NotImplementedError, RuntimeError) as exc:
            params, macs, error = None, None, str(exc)
        yield ZooRow(
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
        )


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
