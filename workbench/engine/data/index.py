"""What a scan produces: the dataset index (samples with class and split, problems, warnings).

Plain data: building it is `scan`'s job; a run folder stores it with `to_dict`, reloads it with `from_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.engine.errors import DatasetError, WorkbenchError

SPLITS = ("train", "val", "test")
LAYOUTS = ("class-folders", "pre-split", "folders-as-classes")


class ScanCancelled(WorkbenchError):
    """The caller's `should_stop()` returned True while the folder was being scanned."""


@dataclass(frozen=True, slots=True)  # slots: one light object per image (70k of them)
class Sample:
    path: str
    label: int
    split: str  # "train" | "val" | "test"


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    reason: str  # short and human: "zero bytes", "not an image", ...


@dataclass
class DatasetIndex:
    roots: list[str]
    layout: str  # one of LAYOUTS
    classes: list[str]
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)  # groups of byte-identical sample files

    def split(self, name: str) -> list[Sample]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, list[int]]:
        """Images per class for each split present (train always listed)."""
        table = {split: [0] * len(self.classes) for split in SPLITS}
        for sample in self.samples:
            table[sample.split][sample.label] += 1
        return {split: row for split, row in table.items() if split == "train" or any(row)}

    def to_dict(self) -> dict[str, Any]:
        # Parallel lists keep a 70,000-image index compact in the run folder's JSON.
        return {
            "version": 1,
            "roots": list(self.roots),
            "layout": self.layout,
            "classes": list(self.classes),
            "paths": [s.path for s in self.samples],
            "labels": [s.label for s in self.samples],
            "splits": [s.split for s in self.samples],
            "problems": [[p.path, p.reason] for p in self.problems],
            "warnings": list(self.warnings),
            "duplicates": [list(group) for group in self.duplicates],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetIndex:
        try:
            samples = [
                Sample(path, int(label), split)
                for path, label, split in zip(data["paths"], data["labels"], data["splits"], strict=True)
            ]
            return cls(
                roots=list(data["roots"]),
                layout=data["layout"],
                classes=list(data["classes"]),
                samples=samples,
                problems=[Problem(path, reason) for path, reason in data.get("problems", [])],
                warnings=list(data.get("warnings", [])),
                duplicates=[[str(path) for path in group] for group in data.get("duplicates", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"the stored dataset index is damaged ({type(exc).__name__}: {exc})") from None
