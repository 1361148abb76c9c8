"""Nearest neighbours by cosine similarity, a block of rows at a time: at 70,000 images the full N×N
similarity matrix would be 20 GB, one block of rows against all columns stays near 64 MB."""

from __future__ import annotations

import torch

BLOCK_ELEMENTS = 1 << 24  # similarities held at once (64 MB of float32)


def unit_rows(vectors: torch.Tensor) -> torch.Tensor:
    """Rows scaled to length 1 (all-zero rows stay zero: similar to nothing)."""
    vectors = vectors.float()
    return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)


def row_blocks(n: int, columns: int) -> list[tuple[int, int]]:
    step = max(1, BLOCK_ELEMENTS // max(1, columns))
    return [(start, min(n, start + step)) for start in range(0, n, step)]


def top_neighbours(unit: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, indices), each (N, k'), k' = min(k, N − 1): every row's most similar other rows, best
    first. `unit` rows must have length 1 (or 0)."""
    return top_matches(unit, unit, torch.arange(len(unit)), k)


def top_matches(
    queries: torch.Tensor, keys: torch.Tensor, own: torch.Tensor, k: int, *, floor: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(similarities, indices), each (Q, k'): every query's most similar keys, best first, leaving out key
    `own[q]` (the query's own image, or any negative number for none). With `floor`, only rows reaching it
    are sorted (the others get −inf): a row maximum costs a fifth of a top-k, and most rows have no copy."""
    k = min(k, len(keys) - 1)
    similarities = torch.full((len(queries), max(k, 0)), float("-inf"))
    indices = torch.zeros(len(queries), max(k, 0), dtype=torch.long)
    if k < 1:
        return similarities, indices
    for start, end in row_blocks(len(queries), len(keys)):
        block = queries[start:end] @ keys.T
        rows = torch.arange(end - start)
        mine = own[start:end]
        block[rows[mine >= 0], mine[mine >= 0]] = float("-inf")
        chosen = rows if floor is None else (block.amax(1) >= floor).nonzero().flatten()
        if len(chosen):
            values, found = block[chosen].topk(k, dim=1)
            similarities[start + chosen], indices[start + chosen] = values, found
    return similarities, indices


def class_neighbour_distances(unit: torch.Tensor, labels: torch.Tensor, classes: int, k: int) -> torch.Tensor:
    """(N, classes): each row's mean cosine distance to its k nearest images of every class (itself left out;
    fewer than k when a class is smaller; NaN for a class with no other image)."""
    n = len(unit)
    labels = labels.long()
    members = [(labels == c).nonzero().flatten() for c in range(classes)]
    keys = [unit[m] for m in members]  # one contiguous matrix per class: top-k on a column slice is 9× slower
    place = torch.full((n,), -1, dtype=torch.long)  # each row's position within its own class
    for m in members:
        place[m] = torch.arange(len(m))
    distances = torch.full((n, classes), float("nan"))
    for start, end in row_blocks(n, n):
        rows = unit[start:end]
        for c in range(classes):
            reach = min(k, len(keys[c]))
            if reach == 0:
                continue
            block = rows @ keys[c].T
            inside = (labels[start:end] == c).nonzero().flatten()
            block[inside, place[start + inside]] = float("-inf")  # itself
            values = block.topk(reach, dim=1).values
            finite = torch.isfinite(values)
            count = finite.sum(1)
            mean = torch.where(finite, 1 - values, 0).sum(1) / count.clamp_min(1)
            distances[start:end, c] = torch.where(count > 0, mean, float("nan"))
    return distances
