"""Near-duplicates by content: re-encoded, resized or slightly cropped copies of one picture, classified as
copies within a class, one picture under two labels (a label error) or shared between train/val/test (leakage).

Byte-identical files are already reported by the scan (data/duplicates.py); this finds the copies that are
not identical. The signature is each image's 16×16 grey thumbnail, mean removed, compared by cosine (i.e.
normalized cross-correlation). Measured on Fashion-MNIST with planted JPEG-70 / 0.8×-resized / 8%-cropped
copies (benchmarks/near_duplicates.py, 1,280 images): 95% of the copies with 12 false pairs, where the cosine
of the pretrained network's embeddings finds 1% at the same number of false pairs — they are made to call two
different shirts alike, not to tell a copy of one shirt from another shirt — and an average hash 49% with
1,370 false pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.engine.review.neighbours import top_matches, unit_rows

THUMBNAIL = 16  # side of the grey thumbnail: JPEG noise and resampling vanish below it
# Each image is also compared by its centre (92% of the side): a copy cropped by ~8% no longer lines up with
# the whole image's thumbnail (edges move by a pixel at 16×16), but with its centre's it does.
ZOOM = 0.92
# Chosen on benchmarks/near_duplicates.py (recall of planted copies / false pairs among 1,280 images):
# 0.98: 99% / 118, 0.985: 97% / 43, 0.99: 95% / 12, 0.993: 88% / 3.
THRESHOLD = 0.99
NEIGHBOURS = 8  # pairs kept per image: thousands of copies of one picture stay N×8 pairs, one group
BLANK_SPREAD = 2.0  # thumbnail standard deviation (grey levels) below which an image is blank
SPLIT_ORDER = ("train", "val", "test")


@dataclass(frozen=True)
class NearDuplicate:
    first: int  # row of the earlier split's image (or the first path): the one to keep
    second: int
    similarity: float
    kind: str  # "leak" (two splits) | "label" (two classes: one is wrong) | "copy" (same class and split)


def thumbnails(images: torch.Tensor) -> torch.Tensor:
    """(N, 2, 256) grey 16×16 thumbnails in 0…255 of uint8 (N, C, S, S) images: [:, 0] of the whole image,
    [:, 1] of its centre (ZOOM of the side), which is what a slightly cropped copy shows whole."""
    rows = []
    side = images.shape[-1]
    margin = round(side * (1 - ZOOM) / 2)
    for start in range(0, len(images), 2048):
        grey = images[start : start + 2048].float().mean(1, keepdim=True)
        centre = grey[..., margin : side - margin, margin : side - margin]
        pool = torch.nn.functional.adaptive_avg_pool2d
        rows.append(torch.stack([pool(grey, THUMBNAIL).flatten(1), pool(centre, THUMBNAIL).flatten(1)], 1))
    return torch.cat(rows) if rows else torch.empty(0, 2, THUMBNAIL * THUMBNAIL)


def is_blank(thumbs: torch.Tensor) -> torch.Tensor:
    """Images of one flat tone (empty scans, black frames): their signature is zero, similar to nothing."""
    return thumbs[:, 0].std(1) < BLANK_SPREAD


def find_near_duplicates(
    thumbs: torch.Tensor,
    labels: torch.Tensor,
    splits: list[str],
    *,
    threshold: float = THRESHOLD,
    neighbours: int = NEIGHBOURS,
) -> list[NearDuplicate]:
    """Pairs of images whose signatures correlate ≥ `threshold`, most similar first (each pair once).
    `thumbs` as made by `thumbnails`: each image's whole thumbnail, then its centre's."""
    n = len(thumbs)
    signature = thumbs.float() - thumbs.float().mean(2, keepdim=True)
    signature[is_blank(thumbs)] = 0  # blank images are outliers, not copies of each other's noise
    whole, centre = unit_rows(signature[:, 0]), unit_rows(signature[:, 1])
    # queries: every whole image, then every centre; keys: the whole images (a crop of B matches B's centre)
    own = torch.arange(n).repeat(2)
    similarities, indices = top_matches(torch.cat([whole, centre]), whole, own, neighbours, floor=threshold)
    found: dict[tuple[int, int], float] = {}
    for row, column in (similarities >= threshold).nonzero().tolist():
        mine, other = row % n, int(indices[row, column])
        key = (min(mine, other), max(mine, other))
        found[key] = max(found.get(key, -1.0), float(similarities[row, column]))
    pairs = [_classified(a, b, s, labels, splits) for (a, b), s in found.items()]
    return sorted(pairs, key=lambda p: (-p.similarity, p.first, p.second))


def duplicate_groups(pairs: list[NearDuplicate]) -> list[list[int]]:
    """Rows connected by pairs (copies of copies are one picture), largest group first."""
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in pairs:
        parent[root(pair.first)] = root(pair.second)
    groups: dict[int, list[int]] = {}
    for i in parent:
        groups.setdefault(root(i), []).append(i)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g[0]))


def _classified(a: int, b: int, similarity: float, labels: torch.Tensor, splits: list[str]) -> NearDuplicate:
    # As with identical files: the copy in the later split is the leak, the earlier one is kept.
    first, second = sorted((a, b), key=lambda i: (_split_rank(splits[i]), i))
    if splits[first] != splits[second]:
        kind = "leak"
    elif int(labels[first]) != int(labels[second]):
        kind = "label"
    else:
        kind = "copy"
    return NearDuplicate(first, second, similarity, kind)


def _split_rank(split: str) -> int:
    return SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)
