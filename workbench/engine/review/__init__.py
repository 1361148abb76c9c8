"""Reviewing a dataset before (or after) training on it: suspect images, ranked — labels that look wrong,
near-duplicates (within a class, under two labels, across train/val/test) and outliers — and a 2-D map of it.

Built on the frozen pretrained network of the few-shot path (features/): every image is embedded once and the
vectors are cached, so a review after a run (or a second review) costs seconds. `embeddings` gets the vectors
of a folder, `label_issues` ranks the images by how unlikely their folder's label is, `near_duplicates` pairs
copies, `outliers` ranks images unlike every class, `report` runs them all; `suspects` turns a report into the
questions the app's Review page asks, `decisions` keeps the answers, `projection` lays the embeddings out in
2-D, and `analysis` does all of it for the dataset browser in one call.

The names below load on first use: the app imports `kinds` and `decisions` (no torch) while the window paints.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatasetEmbeddings": "embeddings",
    "embed_dataset": "embeddings",
    "LabelIssue": "label_issues",
    "out_of_fold_probabilities": "label_issues",
    "rank_label_issues": "label_issues",
    "NearDuplicate": "near_duplicates",
    "duplicate_groups": "near_duplicates",
    "find_near_duplicates": "near_duplicates",
    "Outlier": "outliers",
    "rank_outliers": "outliers",
    "KINDS": "report",
    "Review": "report",
    "review_dataset": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
