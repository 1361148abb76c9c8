"""What the Evaluate tab measures, computed in a worker: a run's interpretation and report, and how they were
measured (`EvaluatedWith`), beside what the run itself recorded for the same measurement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EvaluatedWith:
    """How the shown figures were measured, and what the run itself recorded for the same measurement."""

    run_id: str
    checkpoint: str  # file name: best.pt or last.pt
    split: str  # the split actually evaluated (auto resolved)
    split_note: str  # what the reader must know about that split (training images included), or ""
    flip_averaged: bool
    run_test_acc: float | None  # the run's own test accuracy, when it measured this checkpoint the same way
    validation_warning: str | None  # the validation split is too small to pick the best epoch reliably
    read_only: str = ""  # why the run's dataset files must not be moved (the installed sample); "" if they may


def interpret_run(run_ref: str, split: str, checkpoint: str = "kept") -> tuple[Any, Any, EvaluatedWith]:
    """The interpretation and report of a run on the dataset it was trained on (worker thread: imports torch).

    By default the same measurement as the run's own test accuracy: its kept checkpoint, its test split
    ("auto", as the engine resolves it), its test procedure (flip-averaged if it trained with flips)."""
    from workbench.engine.errors import ConfigError, WeightsError
    from workbench.engine.evaluation.interpretation import ClassificationInterpretation
    from workbench.engine.evaluation.uncertainty import run_split_counts, small_validation_warning
    from workbench.engine.runs import RunRegistry
    from workbench.engine.training.checkpoint import LAST, find_checkpoint
    from workbench.engine.training.config import dataset_roots
    from workbench.resources import read_only_reason

    record = RunRegistry().get(run_ref)
    data = dataset_roots(record.config.get("data"))
    if not data:
        raise ConfigError(
            f"run {record.run_id} does not record its dataset folder, so it cannot be evaluated"
        )
    kept = find_checkpoint(record.run_id)  # best.pt, else last.pt: what the run's own test figure judged
    path = kept.parent / LAST if checkpoint == "last" else kept
    if not path.is_file():
        raise WeightsError(f"run {record.run_id} has no {path.name}")
    interpretation = ClassificationInterpretation.from_run(str(path), data, split=split)
    report = interpretation.report()
    split = report.extra["split"]  # "auto" as the engine resolved it: the run's own test split, …
    same_measurement = path == kept and split == "test"
    with_ = EvaluatedWith(
        run_id=record.run_id,
        checkpoint=path.name,
        split=split,
        split_note=report.extra["split_note"],
        flip_averaged=bool(report.extra.get("flip_averaged")),
        run_test_acc=record.test_acc if same_measurement else None,
        validation_warning=small_validation_warning(run_split_counts(record.run_dir), record.best_val_acc),
        read_only=read_only_reason(data),
    )
    return interpretation, report, with_
