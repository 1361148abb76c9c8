"""How much an accuracy measured on few images can be trusted, and whether it beats the dumbest model.

A validation split of 20 images gives accuracies in steps of 5 points with an uncertainty of ±20: the
workbench shows such figures with a 95% interval (Wilson's score interval: sensible at 0% and 100% and for
small counts, where the normal approximation is not), and warns when a model is not clearly better than
always answering the largest class.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

Z95 = 1.959964
TINY_PER_CLASS = 10  # fewer validation images per class than this: estimate by cross-validation as well


def wilson_interval(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """95% interval for a proportion of `correct` out of `total` (0..1 both ends)."""
    if total <= 0:
        return 0.0, 1.0
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    low = 0.0 if correct <= 0 else max(0.0, centre - half)  # exact ends: no 0.9999999999999999
    high = 1.0 if correct >= total else min(1.0, centre + half)
    return low, high


def format_interval(accuracy: float, total: int) -> str:
    """E.g. "80.0% (95% interval 58–92%, 20 images)"."""
    low, high = wilson_interval(round(accuracy * total), total)
    return f"{accuracy:.1%} (95% interval {low:.0%}–{high:.0%}, {total} images)"


@dataclass(frozen=True)
class Baseline:
    """Always answering the largest class."""

    class_name: str
    rate: float  # its accuracy on the judged images


def majority_baseline(labels: Sequence[int], classes: Sequence[str]) -> Baseline:
    counts = [0] * len(classes)
    for label in labels:
        counts[int(label)] += 1
    best = max(range(len(classes)), key=counts.__getitem__)
    return Baseline(classes[best], counts[best] / max(len(labels), 1))


def clearly_better(accuracy: float, total: int, baseline: Baseline) -> bool:
    """Whether the lower end of the accuracy's 95% interval is above the largest-class rate."""
    low, _ = wilson_interval(round(accuracy * total), total)
    return low > baseline.rate


def majority_warning(
    accuracy: float, total: int, baseline: Baseline, what: str = "validation", *, pretrained: bool = False
) -> str | None:
    """A warning when the model is not clearly better than always answering the largest class, else None.
    The advice leaves out "a pretrained model" for a model that already started from one (`pretrained`)."""
    if total == 0 or clearly_better(accuracy, total, baseline):
        return None
    advice = "More images per class or more epochs may help." if pretrained else (
        "More images per class, a pretrained model, or more epochs may help."
    )
    return (
        f"the model is not clearly better than always answering '{baseline.class_name}' "
        f"({baseline.rate:.1%} of the {what} images): {what} accuracy {format_interval(accuracy, total)}. "
        + advice
    )


def run_split_counts(run_dir: str | Path, split: str = "val") -> list[int] | None:
    """Images per class in one split of a run, from the index it trained with (`<run>/dataset.json`); None when
    the run has no such record (an older run, a bare checkpoint) or the split is empty."""
    try:
        index = json.loads((Path(run_dir) / "dataset.json").read_text())
        counts = [0] * len(index["classes"])
        for label, name in zip(index["labels"], index["splits"], strict=True):
            if name == split:
                counts[int(label)] += 1
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return counts if any(counts) else None


def small_validation_warning(per_class: Sequence[int] | None, best_val_acc: float | None = None) -> str | None:
    """A warning when the validation split has fewer than TINY_PER_CLASS images of some class: the epoch kept
    as "best" may be a lucky one (one image moves the validation accuracy by 100/total points)."""
    if not per_class:
        return None
    total, fewest = sum(per_class), min(per_class)
    if fewest >= TINY_PER_CLASS:
        return None
    figure = f"; best validation accuracy {format_interval(best_val_acc, total)}" if best_val_acc is not None else ""
    return (
        f"the validation set is too small to pick the best epoch reliably: {total} images, as few as {fewest} "
        f"for a class (fewer than {TINY_PER_CLASS} per class), so one image moves validation accuracy by "
        f"{100 / total:.1f} points{figure}"
    )


COLLAPSED_SHARE = 0.9  # a model answering one class for this share of the images has stopped discriminating
MOSTLY_ONE_CLASS = 0.6  # unless the images themselves are this much that class


def collapse_warning(predicted: Sequence[int], true_counts: Sequence[int], classes: Sequence[str]) -> str | None:
    """A warning when a model answers one class for nearly every image although the images are not nearly all
    of that class: training has collapsed (too high a learning rate, typically: fine-tuning Lite0 with SGD at
    0.0125 for every layer answered one class for every image from its second epoch, with a finite loss)."""
    total = sum(predicted)
    if total < 10 or len(classes) < 3:
        return None
    top = max(range(len(predicted)), key=predicted.__getitem__)
    share, true_share = predicted[top] / total, true_counts[top] / max(sum(true_counts), 1)
    if share < COLLAPSED_SHARE or true_share >= MOSTLY_ONE_CLASS:
        return None
    return (
        f"the model answers '{classes[top]}' for {share:.0%} of the validation images, which are "
        f"{true_share:.0%} '{classes[top]}': training has collapsed to one class"
    )
