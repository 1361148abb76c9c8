"""Folder → decoded tensors, the first stretch of the data path, as a generator of progress events.

`scan` indexes the folder; `decode` turns each split into cached uint8 tensors at the training size.
Both yield `DataProgress` events and return their result (use `result = yield from ...`). `prepare_data`
is the whole stretch a run (or an LR sweep) takes: scan, fill in the defaults, decode, normalize.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from workbench.engine.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetIndex,
    DecodedSplit,
    Problem,
    channel_mean_std,
    guess_image_geometry,
    load_decoded,
    scan_dataset,
)
from workbench.engine.errors import DatasetError
from workbench.engine.models import check_input_size
from workbench.engine.names import display_name, shown_list
from workbench.engine.training.checkpoint import Preprocessing
from workbench.engine.training.config import TrainConfig, dataset_roots
from workbench.engine.training.defaults import resolve_defaults
from workbench.engine.training.distributed import DistContext
from workbench.engine.training.events import DataProgress, Event, FileSkipped, Message
from workbench.engine.training.resume import ResumeState, previous_run_checkpoint

ShouldStop = Callable[[], bool]
T = TypeVar("T")


@dataclass
class PreparedData:
    index: DatasetIndex
    train: DecodedSplit
    val: DecodedSplit | None
    test: DecodedSplit | None
    preprocessing: Preprocessing

    @property
    def classes(self) -> list[str]:
        return self.index.classes

    @property
    def problems(self) -> list[Problem]:
        found = list(self.index.problems)
        for split in (self.train, self.val, self.test):
            if split is not None:
                found.extend(split.problems)
        return found


@dataclass
class RunData:
    """What `prepare_data` hands on to model setup."""

    config: TrainConfig  # every default filled in
    data: PreparedData
    start_from: dict | None  # the checkpoint of the user's earlier run the weights come from, if any
    notes: list[str]  # the defaults chosen and why


SKIPPED_SHOWN = 5  # skipped files a message names before "and N more"


def prepare_data(
    config: TrainConfig,
    device: torch.device,
    resumed: ResumeState | None = None,
    dist_ctx: DistContext | None = None,
    should_stop: ShouldStop | None = None,
) -> Generator[Event, None, RunData]:
    """Index the folder (or reuse the resumed run's index), fill in defaults, decode once into tensors, and
    normalize as the starting weights expect: ImageNet statistics for ImageNet weights, an earlier run's
    own statistics when starting from it, else the training images'."""
    dist_ctx = dist_ctx or DistContext()
    start_from = previous_run_checkpoint(config.weights) if resumed is None else None
    if start_from is not None:
        config = inherit_architecture(config, start_from)
    if resumed is None:
        index = yield from scan(config, should_stop=should_stop)
        typical_size, channels = guess_image_geometry(index.split("train"))
        config, notes = resolve_defaults(
            config,
            typical_size=typical_size,
            channels=channels,
            num_train_images=len(index.split("train")),
            device_type=device.type,
        )
    else:
        index, notes = resumed.index, [f"resuming from epoch {resumed.epoch}"]
    check_input_size(config.model, config.img_size)
    for problem in index.problems:
        yield FileSkipped(problem.path, problem.reason)
    for warning in index.warnings:
        yield Message(warning, "warning")
    if not dist_ctx.is_main:
        dist_ctx.barrier()  # let rank 0 fill the decoded-image cache, then read it
    data = yield from decode(
        index,
        config.img_size,
        config.channels,
        use_imagenet_stats=config.pretrained or (bool(config.weights) and start_from is None),
        should_stop=should_stop,
    )
    if dist_ctx.is_main:
        dist_ctx.barrier()
    earlier = resumed.payload if resumed else start_from
    if earlier is not None:  # those weights were trained with that normalization: keep it
        data.preprocessing.mean = earlier["preprocessing"]["mean"]
        data.preprocessing.std = earlier["preprocessing"]["std"]
    for split in (data.train, data.val, data.test):
        for problem in split.problems if split is not None else ():
            yield FileSkipped(problem.path, problem.reason)
    return RunData(config, data, start_from, notes)


def inherit_architecture(config: TrainConfig, earlier: dict) -> TrainConfig:
    """A run that starts from one of the user's runs: what its weights need (the model and its arguments,
    such as EfficientNet-Lite's taps, which shape the head) and, unless chosen, its input size and channels."""
    pre = earlier.get("preprocessing") or {}
    return dataclasses.replace(
        config,
        model=config.model or earlier["model"],
        model_args=dict(earlier.get("model_args") or {}),
        img_size=config.img_size or pre.get("size"),
        channels=config.channels or pre.get("channels"),
    )


def data_paths(config: TrainConfig) -> list[str]:
    """The run's dataset folders (a list: see `config.dataset_roots`); none at all is a DatasetError."""
    roots = dataset_roots(config.data)
    if not roots:
        raise DatasetError(
            "no dataset given: pass a folder of class sub-folders (or train/val/test sub-folders), or "
            "several folders that are one class each"
        )
    return roots


def scan(config: TrainConfig, should_stop: ShouldStop | None = None) -> Generator[Event, None, DatasetIndex]:
    paths = data_paths(config)
    # Scanning lists files without decoding them (70k files take a fraction of a second): one event is enough.
    index = scan_dataset(
        paths if len(paths) > 1 else paths[0],
        val_fraction=config.val_split,
        test_fraction=config.test_split,
        seed=config.seed,
        should_stop=should_stop,
    )
    yield DataProgress("scan", len(index.samples), len(index.samples))
    if not index.split("train"):
        raise DatasetError(f"{shown_list(paths)}: no training images found")
    return index


def decode(
    index: DatasetIndex,
    size: int,
    channels: int,
    *,
    use_imagenet_stats: bool,
    should_stop: ShouldStop | None = None,
) -> Generator[Event, None, PreparedData]:
    total = len(index.samples)
    done_before = 0
    decoded: dict[str, DecodedSplit | None] = {}
    for split in ("train", "val", "test"):
        samples = index.split(split)
        if not samples:
            decoded[split] = None
            continue
        offset = done_before
        decoded[split] = yield from with_progress(
            lambda report, samples=samples: load_decoded(
                samples, size, channels, progress=report, should_stop=should_stop
            ),
            lambda done, _total, offset=offset: DataProgress("decode", offset + done, total),
        )
        done_before += len(samples)
    train = decoded["train"]
    assert train is not None
    yield from _check_training_classes(index, train)
    if use_imagenet_stats:
        mean, std = imagenet_stats(channels)
    else:
        mean, std = channel_mean_std(train.images)
    preprocessing = Preprocessing(size=size, channels=channels, mean=mean, std=std)
    return PreparedData(index, train, decoded["val"], decoded["test"], preprocessing)


def _check_training_classes(index: DatasetIndex, train: DecodedSplit) -> Generator[Event, None, None]:
    """Decoding drops bad files; say so when that empties the training set or one of its classes.

    The errors name the files themselves: they end the run before the trainer lists skipped files. A class
    left without training images is a warning (the model can never predict it), an error below two classes.
    """
    if len(train.labels) == 0:
        raise DatasetError(
            f"none of the {len(index.split('train'))} training images could be decoded: "
            f"{describe_skipped(train.problems)}"
        )
    lost = _classes_lost_in_decoding(index, train)
    for name, problems in lost.items():
        yield Message(
            f"class '{display_name(name)}' has no usable training image: all {len(problems)} could not be "
            f"decoded ({describe_skipped(problems)}); the model will never learn to predict it",
            "warning",
        )
    kept = sorted({index.classes[label] for label in train.labels.unique().tolist()})
    if lost and len(kept) < 2:
        raise DatasetError(
            f"only class {shown_list(kept)} has training images that could be decoded; "
            f"{shown_list(list(lost))} lost all of theirs, and a classifier needs at least two classes"
        )


def _classes_lost_in_decoding(index: DatasetIndex, train: DecodedSplit) -> dict[str, list[Problem]]:
    """Classes that had training files in the index but none left after decoding, with their failures."""
    kept = set(train.labels.unique().tolist())
    failed_by_path = {problem.path: problem for problem in train.problems}
    lost: dict[str, list[Problem]] = {}
    for sample in index.split("train"):
        if sample.label not in kept:
            failure = failed_by_path.get(sample.path, Problem(sample.path, "could not be decoded"))
            lost.setdefault(index.classes[sample.label], []).append(failure)
    return lost


def describe_skipped(problems: Sequence[Problem], shown: int = SKIPPED_SHOWN) -> str:
    """'a.png (not an image), b.png (zero bytes) and 3 more': the first few skipped files with their reasons."""
    named = [f"{display_name(p.path)} ({p.reason})" for p in problems[:shown]]
    more = f" and {len(problems) - shown} more" if len(problems) > shown else ""
    return ", ".join(named) + more if named else "no file was reported"


def with_progress(
    work: Callable[[Callable[[int, int], None]], T], event: Callable[[int, int], Event], interval: float = 0.1
) -> Generator[Event, None, T]:
    """Run `work(report)` in a thread and turn its progress reports into events, at most every `interval` s.

    Decoding and downloads are long and report through a callback; a generator yields only from its own frame.
    """
    latest: list[tuple[int, int]] = []
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work(lambda done, total: latest.append((done, total)))
        except BaseException as exc:  # re-raised in the generator's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="workbench-decode", daemon=True)
    thread.start()
    reported = None
    while True:
        thread.join(interval)
        finished = not thread.is_alive()  # read before `latest`, so the final report is never missed
        if latest and latest[-1] != reported:
            reported = latest[-1]
            yield event(*reported)
        if finished:
            break
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def imagenet_stats(channels: int) -> tuple[list[float], list[float]]:
    if channels == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    # A grey image fed to a first conv whose RGB kernels were summed: normalize like the mean channel.
    return [sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3]
