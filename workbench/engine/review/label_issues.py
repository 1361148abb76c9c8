"""Suspected label errors: out-of-fold probabilities from a linear head on frozen features, ranked the
confident-learning way (Northcutt et al., 2021).

Each image is judged by a head that never saw it (k-fold), on the image and its mirror. The penalty is
much stronger than the one that classifies best (linear_probe.L2_GRID picks ≤ 0.1): a ranking wants smooth
probabilities, not sharp ones — on Fashion-MNIST with 50 images per class and 10% moved to a wrong folder,
L2 = 1 finds 85–90% of the moved images among the lowest-ranked, the accuracy-chosen penalty 74–78%
(benchmarks/label_errors.py). A class's probabilities are divided by that class's average self-confidence
(confident learning's per-class threshold), so a class the network finds hard is not flagged wholesale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.engine.training.linear_probe import MAX_FOLDS, fit_standardized_head, stratified_folds

RANKING_L2 = 1.0
# Each feature scaled by its own spread, as the ranking was measured (benchmarks/label_errors.py); the
# classifier's floor (linear_probe.SD_FLOOR, for stable fine-tuning) lost a planted error's true class here.
RANKING_SD_FLOOR = 0.0
FOLD_REPEATS = 3  # the folds drawn three ways and averaged: one unlucky split no longer decides a rank


@dataclass(frozen=True)
class LabelIssue:
    index: int  # row in the embeddings
    given: int  # the class of its folder
    suggested: int  # the class it looks like
    score: float  # its label's probability over the class's typical one: low = suspect (≈1 = typical)
    given_probability: float
    suggested_probability: float


def out_of_fold_probabilities(
    features: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    *,
    mirrored: torch.Tensor | None = None,
    l2: float = RANKING_L2,
    seed: int = 0,
    repeats: int = FOLD_REPEATS,
) -> torch.Tensor:
    """(N, classes) class probabilities of each image from a head fitted on the other folds.

    A class needs at least 2 images to be split over folds; with a single-image class everything is
    judged by a head fitted on all images (noted by the caller: that image's own label cannot be doubted).
    """
    labels = labels.long()
    counts = torch.bincount(labels, minlength=classes)
    folds = min(MAX_FOLDS, int(counts[counts > 0].min()))
    probabilities = torch.zeros(len(labels), classes)
    if folds < 2:
        head = fit_standardized_head(*_rows(features, labels, mirrored, torch.arange(len(labels))), classes, l2, sd_floor=RANKING_SD_FLOOR)
        return _judge(head, features, mirrored, torch.arange(len(labels)))
    for repeat in range(repeats):
        assignment = stratified_folds(labels, folds, seed + repeat)
        for k in range(folds):
            fitted, held = (assignment != k).nonzero().flatten(), (assignment == k).nonzero().flatten()
            head = fit_standardized_head(*_rows(features, labels, mirrored, fitted), classes, l2, sd_floor=RANKING_SD_FLOOR)
            probabilities[held] += _judge(head, features, mirrored, held) / repeats
    return probabilities


def rank_label_issues(probabilities: torch.Tensor, labels: torch.Tensor) -> list[LabelIssue]:
    """Every image, most suspect first."""
    labels = labels.long()
    classes = probabilities.shape[1]
    own = probabilities.gather(1, labels[:, None]).squeeze(1)
    typical = torch.ones(classes)
    for c in range(classes):
        members = labels == c
        if members.any():
            typical[c] = own[members].mean().clamp_min(1e-6)
    scores = own / typical[labels]
    suggested = probabilities.argmax(1)
    order = torch.argsort(scores, stable=True)
    return [
        LabelIssue(
            index=int(i),
            given=int(labels[i]),
            suggested=int(suggested[i]),
            score=float(scores[i]),
            given_probability=float(own[i]),
            suggested_probability=float(probabilities[i, suggested[i]]),
        )
        for i in order
    ]


def _rows(
    features: torch.Tensor, labels: torch.Tensor, mirrored: torch.Tensor | None, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if mirrored is None:
        return features[index].float(), labels[index]
    return torch.cat([features[index], mirrored[index]]).float(), labels[index].repeat(2)


def _judge(head, features: torch.Tensor, mirrored: torch.Tensor | None, index: torch.Tensor) -> torch.Tensor:
    logits = head(features[index].float())
    if mirrored is not None:
        logits = (logits + head(mirrored[index].float())) / 2
    return logits.softmax(1)
