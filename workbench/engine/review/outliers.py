"""Outliers: images far from their own class and from every other class (wrong files, blank scans, pictures
of something else), ranked.

An image's distance to a class is its mean cosine distance to that class's K nearest images (embeddings),
divided by the class's typical (median) distance between its own members, so a varied class (bags) is not
flagged wholesale against a uniform one (trousers). The score is the smallest of these over all classes: an
image close to any class — its own or, for a label error, another — is not an outlier. K nearest and not
the single nearest: a few blank scans or foreign files resemble each other, and must not vouch for each
other. On benchmarks/near_duplicates.py (20 blank, noise, text and pattern images planted among 1,280
Fashion-MNIST images) 83% of them rank in the top 20 and 97% are listed. Choosing K on one such folder:
K = 3 put 45% of them in the top 20, K = 5 80%, K = 10 90%, K = 20 95% (twice the sorting); the distance to
the single nearest image of the whole dataset, 5%.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.engine.review.neighbours import class_neighbour_distances, unit_rows

K = 10
# Listed as an outlier from here (60% farther than typical members are apart). On benchmarks/near_duplicates.py:
# 1.5 lists all planted foreign images and 31 other images, 1.6 97% and 12 others, 1.8 70% and 1.
SUSPECT_SCORE = 1.6


@dataclass(frozen=True)
class Outlier:
    index: int
    # distance to the nearest class over that class's typical one (≈1 typical; higher = stranger)
    score: float
    nearest: int  # the class it is least far from
    blank: bool = False  # one flat tone (see near_duplicates.is_blank)


def rank_outliers(
    features: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    *,
    blank: torch.Tensor | None = None,
    k: int = K,
) -> list[Outlier]:
    """Every image, strangest first."""
    labels = labels.long()
    distances = class_neighbour_distances(unit_rows(features), labels, classes, k)
    own = distances.gather(1, labels[:, None]).squeeze(1)
    typical = torch.ones(classes)
    for c in range(classes):
        members = own[(labels == c) & ~own.isnan()]
        if len(members):
            typical[c] = members.median()
    # a class whose members are all one picture has typical distance 0: anything else is infinitely far
    relative = distances / typical.clamp_min(1e-4)
    relative = torch.where(relative.isnan(), torch.inf, relative)
    scores, nearest = relative.min(1)
    scores = torch.where(torch.isinf(scores), torch.nan, scores)  # nothing to compare with (one image)
    order = torch.argsort(torch.nan_to_num(scores, nan=-1.0), descending=True, stable=True)
    flat = blank if blank is not None else torch.zeros(len(labels), dtype=torch.bool)
    return [Outlier(int(i), float(scores[i]), int(nearest[i]), bool(flat[i])) for i in order]
