"""How an accuracy figure was measured, in the words every screen uses: which checkpoint (best.pt, the model
the run keeps, or last.pt, the last epoch) and which test procedure (a single view of each image, or each
image averaged with its mirror). Imports no torch, so the app's views can word figures on the UI thread.

A run's own test accuracy (trainer `_finish`) is best.pt (last.pt if there is no best.pt) judged with the
procedure `uses_flip_tta(config)` picks; `workbench eval` and the app's Evaluate do the same by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BEST_FILE, LAST_FILE = "best.pt", "last.pt"  # as training/checkpoint.py names them
CHECKPOINT_ROLES = {
    BEST_FILE: "the model the run keeps (best on validation)",
    LAST_FILE: "the last epoch",
}
# A history record's flag (training/probe_stage.py): stage 1's head was fitted once more on the training and
# validation images together, after its validation figure was taken.
HEAD_REFIT_ON_VAL = "head_refit_on_val"
FLIP_AVERAGED = "each image averaged with its mirror"
SINGLE_VIEW = "single view of each image"


def uses_flip_tta(config: Mapping[str, Any]) -> bool:
    """Whether a run with this (TrainConfig-as-dict) config is evaluated flip-averaged: only when it asked
    for it (the default) and trained with flips — a model never shown mirrored images gains nothing."""
    augment = config.get("augment") or {}
    return bool(config.get("tta", True) and augment.get("flip"))


def checkpoint_text(file_name: str) -> str:
    """E.g. "best.pt, the model the run keeps (best on validation)"."""
    role = CHECKPOINT_ROLES.get(file_name)
    return f"{file_name}, {role}" if role else file_name


def procedure_text(flip_averaged: bool) -> str:
    return FLIP_AVERAGED if flip_averaged else SINGLE_VIEW


def provenance(file_name: str, flip_averaged: bool) -> str:
    """E.g. "best.pt, the model the run keeps (best on validation) · single view of each image"."""
    return f"{checkpoint_text(file_name)} · {procedure_text(flip_averaged)}"


def run_test_provenance(config: Mapping[str, Any], has_best: bool) -> str:
    """How a run's own test accuracy was measured (trainer `_finish`)."""
    return provenance(BEST_FILE if has_best else LAST_FILE, uses_flip_tta(config))


HELD_OUT_VALIDATION = (
    "stage 1's head before it was refitted on the training and validation images together: the saved model "
    "has seen the validation images"
)


def validation_held_out(history: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a run's best validation accuracy belongs to a head the kept model no longer has: the kept model
    is stage 1's, and its head was refitted on the validation images after the figure was taken."""
    kept = [record for record in history if isinstance(record, Mapping) and record.get("best")]
    return bool(kept and kept[-1].get(HEAD_REFIT_ON_VAL))


def validation_provenance(history: Sequence[Mapping[str, Any]]) -> str:
    """How a run's best validation accuracy was measured: during training, on best.pt's network, unless it is
    a held-out head's (`validation_held_out`)."""
    return HELD_OUT_VALIDATION if validation_held_out(history) else f"{BEST_FILE}, {SINGLE_VIEW}, during training"
