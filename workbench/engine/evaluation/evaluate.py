"""Evaluate a trained model (a run or a checkpoint) on a folder of labeled images."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.engine.data import BatchIterator, DatasetIndex, Problem, load_decoded, scan_dataset
from workbench.engine.device import in_inference_layout
from workbench.engine.errors import DatasetError
from workbench.engine.evaluation.calibration import Calibration, calibration_report, fitted_temperature
from workbench.engine.evaluation.metrics import EvaluationReport, classification_report
from workbench.engine.evaluation.tta import FlipAveraged, for_evaluation
from workbench.engine.evaluation.uncertainty import majority_baseline, majority_warning, wilson_interval
from workbench.engine.names import match_classes, shown_list
from workbench.engine.training.checkpoint import HELD_OUT_HEAD, find_checkpoint, load_model
from workbench.engine.training.config import dataset_roots


@dataclass
class Predictions:
    """Everything later views need: per-image logits with their paths and true labels."""

    paths: list[str]
    targets: torch.Tensor  # (N,) int64
    logits: torch.Tensor  # (N, classes) float32
    classes: list[str]
    problems: list[Problem]
    flip_averaged: bool = False  # logits are the mean over each image and its mirror (tta.py)
    roots: list[str] = field(default_factory=list)  # the dataset folders the images came from
    calibration: Calibration = field(default_factory=Calibration)  # the checkpoint's temperature (T = 1: none)
    split: str = "all"  # the split judged ("auto" resolved: see resolve_auto_split)
    split_note: str = ""  # what a reader must know about that split (training images included), or ""
    config: dict = field(default_factory=dict)  # the training config the checkpoint records

    @property
    def calibrated_logits(self) -> torch.Tensor:
        """`logits` divided by the temperature: their softmax is the calibrated probabilities (same argmax)."""
        return self.logits / self.calibration.temperature


def predict_folder(
    ref: str | Path,
    data: str | Path | Sequence[str],
    *,
    split: str = "auto",
    batch_size: int = 256,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    tta: bool = True,
) -> Predictions:
    """Run the model over a labeled folder. `split`: auto (resolve_auto_split), train, val, test or all. On
    the run's own folder, train/val/test are the run's own splits (a seeded random validation split is not
    visible in the folder itself). `tta=False` skips the flip averaging a run trained with flips is
    otherwise judged with (see tta.py)."""
    model, meta = load_model(ref, device=device)
    config = meta.get("config") or {}
    model = for_evaluation(in_inference_layout(model, device, config), config, tta=tta)
    flip_averaged = isinstance(model, FlipAveraged)
    classes: list[str] = meta["classes"]
    pre = meta["preprocessing"]
    roots = dataset_roots(data)  # one dataset folder, or several that are one class each
    own = _runs_own_index(ref, roots) if split != "all" else None
    split_note = ""
    head_saw_val = HELD_OUT_HEAD in meta  # stage 1's head refitted on the run's validation images too
    if split == "auto":
        index, split, split_note = resolve_auto_split(own, roots, head_saw_val=head_saw_val)
    else:
        index = own if own is not None else _scan_as_is(roots)
        if split == "val" and own is not None and head_saw_val:
            split_note = VALIDATION_SEEN
    # Compared in NFC (`class_key`): a model trained on a Mac's NFD "café" folder knows Linux's NFC "café".
    model_index, unknown = match_classes(classes, index.classes)
    if unknown:
        raise DatasetError(
            f"{shown_list(roots)}: classes {shown_list(unknown)} are not among the model's classes "
            f"({shown_list(classes)})"
        )
    samples = index.samples if split == "all" else index.split(split)
    if not samples:
        raise DatasetError(f"{shown_list(roots)}: no images in the {split} split")
    decoded = load_decoded(samples, pre["size"], pre["channels"], progress=progress)
    # Map the folder's class numbering onto the model's.
    remap = torch.tensor(model_index)
    labels = remap[decoded.labels]
    batches = BatchIterator(
        decoded.images, labels, batch_size, shuffle=False, device=device, mean=pre["mean"], std=pre["std"]
    )
    logits = []
    with torch.inference_mode():
        for x, _ in batches:
            logits.append(model(x).float().cpu())
    return Predictions(
        decoded.paths,
        labels,
        torch.cat(logits),
        classes,
        list(index.problems) + list(decoded.problems),
        flip_averaged,
        list(index.roots),
        fitted_temperature(meta),
        split,
        split_note,
        config=meta.get("config") or {},
    )


def _scan_as_is(roots: list[str]) -> DatasetIndex:
    """The folder's files with only the splits its layout names (train/val/test sub-folders)."""
    return scan_dataset(roots, val_fraction=0.0, test_fraction=0.0)


VALIDATION_SEEN = (
    "the model's head was also fitted on these validation images (too few per class to hold out), so this "
    "accuracy is optimistic: the run's cross-validated figure is the honest one"
)


def resolve_auto_split(
    own: DatasetIndex | None, roots: list[str], *, head_saw_val: bool = False
) -> tuple[DatasetIndex, str, str]:
    """What "auto" judges: (index, split, note). On the run's own folder (`own`, its splits as it trained),
    its test split; without one, its validation split (held out too, unless `head_saw_val`: the head was
    refitted on it); without either, every image, with a note that the model trained on most of them. On
    any other folder, its test split if it has one, else every image."""
    if own is not None:
        for split in ("test",) if head_saw_val else ("test", "val"):
            if own.split(split):
                return own, split, ""
        kept = "none aside" if not own.split("val") else "only a few validation images aside, and fitted on those too"
        return own, "all", (
            f"every image, the training images included: the run kept {kept}, so this accuracy says how "
            "well the model fits what it trained on, not how well it does on new images"
        )
    index = _scan_as_is(roots)
    return index, "test" if index.split("test") else "all", ""


def evaluate(
    ref: str | Path,
    data: str | Path | Sequence[str],
    *,
    split: str = "auto",
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    tta: bool = True,
) -> tuple[EvaluationReport, Predictions]:
    predictions = predict_folder(ref, data, split=split, device=device, progress=progress, tta=tta)
    loss = F.cross_entropy(predictions.calibrated_logits, predictions.targets).item()
    report = classification_report(predictions.logits, predictions.targets, predictions.classes, loss=loss)
    report.extra["skipped_files"] = len(predictions.problems)
    report.extra["flip_averaged"] = predictions.flip_averaged
    report.extra["split"], report.extra["split_note"] = predictions.split, predictions.split_note
    report.extra["calibration"] = calibration_report(predictions.logits, predictions.targets, predictions.calibration)
    total = len(predictions.targets)
    report.extra["accuracy_interval_95"] = list(wilson_interval(round(report.accuracy * total), total))
    baseline = majority_baseline(predictions.targets.tolist(), predictions.classes)
    report.extra["largest_class"] = {"class": baseline.class_name, "rate": baseline.rate}
    config = predictions.config
    report.extra["warning"] = majority_warning(
        report.accuracy, total, baseline, "evaluated", pretrained=bool(config.get("pretrained") or config.get("weights"))
    )
    return report, predictions


def _runs_own_index(ref: str | Path, roots: list[str]) -> DatasetIndex | None:
    """The file list and splits the run trained with, when `data` is the folder it trained on."""
    run_dir = find_checkpoint(ref).parent.parent
    try:
        index = DatasetIndex.from_dict(json.loads((run_dir / "dataset.json").read_text()))
    except (OSError, ValueError, KeyError):
        return None  # a bare checkpoint file, or an older run: fall back to scanning
    return index if [os.path.abspath(root) for root in roots] == index.roots else None
