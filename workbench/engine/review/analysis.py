"""Everything the dataset browser's Map and Review pages show, in one background call: embed every image (cached),
review the embeddings for suspects, and lay them out in 2-D. Lists and coordinates only: nothing on disk moves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from workbench.engine.review.kinds import SUSPICION
from workbench.engine.review.suspects import Suspect, list_suspects


@dataclass
class DatasetAnalysis:
    roots: list[str]
    paths: list[str]  # one per point
    labels: np.ndarray  # (N,) int: index into `classes`
    classes: list[str]
    splits: list[str]
    xy: np.ndarray  # (N, 2) float32 map coordinates
    suspicion: np.ndarray  # (N,) int8: index into SUSPICION
    suspects: list[Suspect]
    method: str
    map_seconds: float
    notes: list[str] = field(default_factory=list)
    problems: list = field(default_factory=list)


def analyse_dataset(
    roots: str | Sequence[str],
    *,
    size: int | None = None,
    device: str = "auto",
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DatasetAnalysis:
    """`progress(stage, done, total)` with stage "decode", "embed", "review", "map"."""
    from workbench.engine.review.embeddings import embed_dataset  # torch: only when the work is done
    from workbench.engine.review.projection import project
    from workbench.engine.review.report import review_dataset

    root_list = [roots] if isinstance(roots, str | os.PathLike) else list(roots)
    embedded = embed_dataset(
        root_list if len(root_list) > 1 else root_list[0], size=size, device=device, progress=progress,
        should_stop=should_stop,
    )  # fmt: skip
    if progress is not None:
        progress("review", 0, 1)
    review = review_dataset(embedded)
    suspects = list_suspects(embedded, review)
    if progress is not None:
        progress("map", 0, 1)
    projection = project(embedded.features, should_stop=should_stop)
    suspicion = np.zeros(len(embedded.paths), np.int8)
    for suspect in reversed(suspects):  # reversed: the first listed kind of an image wins
        suspicion[suspect.row] = SUSPICION.index(suspect.kind)
    return DatasetAnalysis(
        roots=[os.path.abspath(os.fspath(r)) for r in root_list],
        paths=list(embedded.paths),
        labels=embedded.labels.numpy().astype(np.int64),
        classes=list(embedded.classes),
        splits=list(embedded.splits),
        xy=projection.xy,
        suspicion=suspicion,
        suspects=suspects,
        method=projection.method,
        map_seconds=projection.seconds,
        notes=[*embedded.notes, *review.notes, *projection.notes],
        problems=list(embedded.problems),
    )
