"""Worker-side half of the dataset browser: scan folders with the engine and summarize what the panel shows.

Runs in a worker thread (no widgets here); the engine is imported inside `scan_for_browser`. Everything
per-image (the grid's items, the counts) is built here, so the UI thread only swaps models when a 70,000-image
folder arrives. `scan_job` is the panel's background job (a `BackgroundJob` generator, see qt/workers.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.app.dataset.thumbnails import ThumbItem, rows_by_path
from workbench.app.qt.workers import callback_steps

SPLITS = ("train", "val", "test")
SPLIT_COLORS = {"train": (31, 119, 180), "val": (255, 127, 14), "test": (44, 160, 44)}


@dataclass
class DatasetSummary:
    folders: list[str]
    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class -> images
    items: list[ThumbItem]  # the grid's rows, handed to its model as they are
    problems: list[tuple[str, str]]  # (path, reason)
    rows_by_path: dict[str, int] = field(default_factory=dict)  # {path: row in items}, built off the UI thread
    warnings: list[str] = field(default_factory=list)
    typical_size: int | None = None
    channels: int | None = None

    @property
    def name(self) -> str:
        if len(self.folders) == 1:
            return Path(self.folders[0]).name or self.folders[0]
        return f"{len(self.folders)} class folders"

    @property
    def total(self) -> int:
        return sum(sum(per_class.values()) for per_class in self.counts.values())

    def split_total(self, split: str) -> int:
        return sum(self.counts.get(split, {}).values())

    @property
    def present_splits(self) -> list[str]:
        return [split for split in SPLITS if self.split_total(split)]

    def status_text(self) -> str:
        splits = " / ".join(f"{self.split_total(s):,} {s}" for s in self.present_splits)
        size = (
            f" · {self.typical_size}px {'grey' if self.channels == 1 else 'colour'}"
            if self.typical_size
            else ""
        )
        return f"{self.name} · {len(self.classes)} classes · {splits}{size}"


def recount(classes: list[str], items: list[Any]) -> dict[str, dict[str, int]]:
    """Images per split and class; items marked `excluded` (curated out of training) are not counted."""
    counts = {split: dict.fromkeys(classes, 0) for split in SPLITS}
    for item in items:
        if getattr(item, "excluded", False):
            continue
        counts.setdefault(item.split, dict.fromkeys(classes, 0))
        counts[item.split][item.class_name] = counts[item.split].get(item.class_name, 0) + 1
    return counts


def scan_for_browser(
    folders: list[str],
    should_stop: Callable[[], bool],
    on_progress: Callable[[int], None],
    val_fraction: float = 0.1,
    seed: int = 0,
) -> DatasetSummary:
    """Index `folders` (one dataset folder, or several that are one class each) without decoding images.

    `val_fraction` and `seed` are the training form's, so the counts shown are the split training will use.
    """
    from workbench.engine.data import guess_image_geometry, scan_dataset

    target: str | list[str] = folders[0] if len(folders) == 1 else list(folders)
    index = scan_dataset(
        target, val_fraction=val_fraction, seed=seed, progress=on_progress, should_stop=should_stop
    )
    classes = list(index.classes)
    items = [ThumbItem(os.fspath(s.path), classes[s.label], s.split) for s in index.samples]
    typical_size, channels = (None, None)
    train = index.split("train")
    if train:
        typical_size, channels = guess_image_geometry(train)
    return DatasetSummary(
        folders=list(folders),
        classes=classes,
        counts=recount(classes, items),
        items=items,
        rows_by_path=rows_by_path(items),
        problems=[(os.fspath(p.path), p.reason) for p in index.problems],
        warnings=list(getattr(index, "warnings", [])),
        typical_size=typical_size,
        channels=channels,
    )


def scan_job(
    folders: list[str], val_fraction: float, seed: int
) -> Generator[int | None, None, DatasetSummary]:
    """`scan_for_browser` as a background job: yields the number of files seen so far (None before the first
    report), ten times a second at most; cancelled, the engine's scan stops at its next check."""
    return (
        yield from callback_steps(
            lambda report, should_stop: scan_for_browser(list(folders), should_stop, report, val_fraction, seed)
        )
    )
