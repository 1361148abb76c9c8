"""A 2-D map of a dataset's embeddings: one point per image, images the network finds alike close together.

Rows are scaled to length 1 (the review's other parts compare embeddings by cosine), reduced to PCA_DIMS
principal components (most of the variance, and every neighbour search after it is ~25× cheaper than on
1,280 dimensions), then laid out in 2-D by METHOD (chosen on benchmarks/dataset_map.py: see METHOD's
comment). Above LANDMARKS images the layout is fitted on a sample and the rest placed among their nearest. Datasets too small for a neighbour graph, or
whose images all look the same, get the PCA plane with a note instead of an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from workbench.engine.errors import WorkbenchError

PCA_DIMS = 50
METHODS = ("tsne", "umap", "pca")
# t-SNE (openTSNE), chosen on benchmarks/dataset_map.py on this 2-core CPU: on 500 images embedded by the
# review's network it keeps 0.99 of the 50-d space's 10-NN class agreement (UMAP 1.00, PCA's plane 0.58); on
# 70,000 Fashion-MNIST images (pixels), with landmarks, 0.87 in 34 s (UMAP: 0.87 in 57 s), with no
# numba compilation on the first map of each process (UMAP: ~20 CPU s even for 500 images), a callback to
# cancel between iterations, and no numba/llvmlite to install. "umap" stays for comparison when umap-learn is
# installed (it is not a dependency); "pca" is the plain plane.
METHOD = "tsne"
# Iterations: 125 exaggerated + 250 plain instead of openTSNE's 250 + 500: on 10,000 images the class agreement
# is the same (0.774 vs 0.775) for 39% of the CPU time.
EXAGGERATED_ITERATIONS = 125
ITERATIONS = 250
BARNES_HUT_BELOW = 5_000
# Above this many images the layout is fitted on a random LANDMARKS of them and every other image is placed
# at the distance-weighted mean of its PLACE_NEIGHBOURS nearest landmarks (one blocked matmul): the layout's
# cost stops growing with the dataset. 70,000 images: 10,000 landmarks 0.88 class agreement in 63 s (other
# jobs running), 7,000 landmarks 0.87 in 34 s; t-SNE of all 70,000 (openTSNE defaults) took 218 s.
LANDMARKS = 7_000
PLACE_NEIGHBOURS = 5
MIN_FOR_GRAPH = 30  # fewer points than this: the PCA plane (a neighbour graph of a handful says nothing)
NEIGHBOURS = 15  # UMAP's default neighbourhood


class ProjectionCancelled(WorkbenchError):
    pass


@dataclass
class Projection:
    xy: np.ndarray  # (N, 2) float32, centred, largest extent scaled to 1
    method: str  # what was actually used ("pca" for small or degenerate inputs)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def principal_components(features: torch.Tensor | np.ndarray, dims: int = PCA_DIMS) -> np.ndarray:
    """(N, ≤dims) float32 coordinates of the unit-length rows on their leading principal axes."""
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = x - x.mean(0, keepdim=True)
    dims = max(1, min(dims, x.shape[0] - 1, x.shape[1]))
    if x.shape[0] <= 2 * dims or x.shape[1] <= 2 * dims:
        _u, _s, v = torch.linalg.svd(x, full_matrices=False)
        return (x @ v[:dims].T).numpy()
    torch.manual_seed(0)  # pca_lowrank draws a random sketch: the same dataset gives the same map
    _u, _s, v = torch.pca_lowrank(x, q=dims, center=False, niter=3)
    return (x @ v[:, :dims]).numpy()


def project(
    features: torch.Tensor | np.ndarray,
    *,
    method: str = METHOD,
    seed: int = 0,
    landmarks: int | None = LANDMARKS,
    should_stop: Callable[[], bool] | None = None,
) -> Projection:
    """Lay `features` (N, D) out in 2-D. Never fails on odd input (no rows, one row, identical rows): those
    get a trivial layout and a note saying why."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}; one of {', '.join(METHODS)}")
    started = time.perf_counter()
    n = len(features)
    if n == 0:
        return Projection(np.zeros((0, 2), np.float32), "pca", 0.0, ["no images to map"])
    if n == 1:
        return Projection(np.zeros((1, 2), np.float32), "pca", 0.0, ["a single image: nothing to compare"])
    reduced = principal_components(features)
    spread = float(np.abs(reduced).max()) if reduced.size else 0.0
    if spread < 1e-5:
        return Projection(
            np.zeros((n, 2), np.float32), "pca", time.perf_counter() - started,
            [f"all {n} images look the same to the network (identical or blank files?): they are one spot"],
        )  # fmt: skip
    notes = []
    used = method
    if method != "pca" and n < MIN_FOR_GRAPH:
        used = "pca"
        notes.append(f"only {n} images: the map shows their two main directions of difference (PCA)")
    _check(should_stop)
    if used == "pca":
        xy = _plane(reduced)
    else:
        fitted = np.arange(n)
        if landmarks is not None and n > landmarks:
            fitted = np.sort(np.random.default_rng(seed).choice(n, landmarks, replace=False))
            notes.append(
                f"laid out from {landmarks:,} of the {n:,} images; the others placed among their nearest"
            )
        layout = _umap(reduced[fitted], seed) if used == "umap" else _tsne(reduced[fitted], seed, should_stop)
        _check(should_stop)
        xy = layout if len(fitted) == n else place_by_neighbours(reduced, fitted, layout)
    _check(should_stop)
    return Projection(_normalized(xy), used, time.perf_counter() - started, notes)


def place_by_neighbours(
    reduced: np.ndarray, fitted: np.ndarray, layout: np.ndarray, k: int = PLACE_NEIGHBOURS
) -> np.ndarray:
    """2-D positions for every row: the fitted rows keep `layout`, the others go to the inverse-distance
    weighted mean of their k nearest fitted rows (in the PCA space)."""
    from workbench.engine.review.neighbours import row_blocks

    x = torch.from_numpy(np.ascontiguousarray(reduced, dtype=np.float32))
    keys = x[torch.from_numpy(fitted)]
    key_norms = (keys * keys).sum(1)
    placed = torch.from_numpy(layout.astype(np.float32))
    out = torch.empty(len(x), 2)
    out[torch.from_numpy(fitted)] = placed
    rest = torch.from_numpy(np.setdiff1d(np.arange(len(x)), fitted))
    k = min(k, len(keys))
    for start, end in row_blocks(len(rest), len(keys)):
        rows = rest[start:end]
        q = x[rows]
        squared = ((q * q).sum(1, keepdim=True) + key_norms[None, :] - 2 * q @ keys.T).clamp_min(0)
        distance, nearest = squared.topk(k, dim=1, largest=False)
        weight = 1 / (distance.sqrt() + 1e-6)
        out[rows] = (weight[..., None] * placed[nearest]).sum(1) / weight.sum(1, keepdim=True)
    return out.numpy()


def _plane(reduced: np.ndarray) -> np.ndarray:
    if reduced.shape[1] == 1:
        return np.concatenate([reduced, np.zeros_like(reduced)], 1)
    return reduced[:, :2]


def _umap(reduced: np.ndarray, seed: int) -> np.ndarray:
    import warnings

    try:
        import umap  # heavy (numba): only when asked for
    except ImportError:
        raise WorkbenchError("the 'umap' map method needs umap-learn: pip install umap-learn") from None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", numba's deprecations
        reducer = umap.UMAP(
            n_neighbors=min(NEIGHBOURS, len(reduced) - 1),
            min_dist=0.1,
            metric="euclidean",  # on unit rows' PCA coordinates: cosine geometry
            random_state=None,  # a seed forces one thread; the layout then wanders a little between runs
            transform_seed=seed,
            low_memory=True,
        )
        return np.asarray(reducer.fit_transform(reduced), dtype=np.float32)


def _tsne(reduced: np.ndarray, seed: int, should_stop: Callable[[], bool] | None) -> np.ndarray:
    from openTSNE import TSNE

    def callback(_iteration: int, _error: float, _embedding: object) -> bool:
        return bool(should_stop and should_stop())  # True ends the optimisation

    tsne = TSNE(
        perplexity=min(30.0, max(2.0, (len(reduced) - 1) / 3)),  # openTSNE refuses perplexity ≥ N/3
        # FFT gradients cost a fixed grid per iteration: Barnes-Hut is quicker below a few thousand points
        negative_gradient_method="fft" if len(reduced) >= BARNES_HUT_BELOW else "bh",
        early_exaggeration_iter=EXAGGERATED_ITERATIONS,
        n_iter=ITERATIONS,
        n_jobs=max(1, min(4, os.cpu_count() or 1)),
        random_state=seed,
        callbacks=callback,
        callbacks_every_iters=25,
        verbose=False,
    )
    return np.asarray(tsne.fit(reduced), dtype=np.float32)


def _normalized(xy: np.ndarray) -> np.ndarray:
    xy = np.nan_to_num(xy.astype(np.float32))
    xy -= xy.mean(0, keepdims=True)
    extent = float(np.abs(xy).max()) if xy.size else 0.0
    return xy / extent if extent > 0 else xy


def _check(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise ProjectionCancelled("map cancelled")
