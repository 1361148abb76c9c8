"""One review of a dataset: suspected label errors, near-duplicates/leaks and outliers of its embeddings,
with notes on what could not be judged. Lists only; nothing on disk is moved or deleted."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from workbench.engine.review.embeddings import DatasetEmbeddings
from workbench.engine.review.label_issues import LabelIssue, out_of_fold_probabilities, rank_label_issues
from workbench.engine.review.near_duplicates import (
    NearDuplicate,
    duplicate_groups,
    find_near_duplicates,
    is_blank,
)
from workbench.engine.review.outliers import SUSPECT_SCORE, Outlier, rank_outliers

KINDS = ("label", "duplicates", "outliers")


@dataclass
class Review:
    label_issues: list[LabelIssue] = field(default_factory=list)  # every image, most suspect first
    duplicates: list[NearDuplicate] = field(default_factory=list)  # most similar first
    groups: list[list[int]] = field(default_factory=list)  # rows that are one picture, largest first
    outliers: list[Outlier] = field(default_factory=list)  # the suspects only, strangest first
    notes: list[str] = field(default_factory=list)


def review_dataset(embedded: DatasetEmbeddings, kinds: tuple[str, ...] = KINDS) -> Review:
    labels, classes = embedded.labels, embedded.classes
    review = Review()
    counts = torch.bincount(labels, minlength=len(classes))
    lonely = [classes[c] for c in range(len(classes)) if counts[c] == 1]
    if lonely:
        review.notes.append(
            f"{len(lonely)} class(es) have a single image ({_some(lonely)}): its label cannot be doubted and it "
            "has no classmates to be an outlier from; add images to these classes"
        )
    thumbs = embedded.thumbnails
    blank = is_blank(thumbs) if len(thumbs) == len(labels) else torch.zeros(len(labels), dtype=torch.bool)
    if "duplicates" in kinds and len(thumbs) == len(labels):
        review.duplicates = find_near_duplicates(thumbs, labels, embedded.splits)
        review.groups = duplicate_groups(review.duplicates)
        if review.groups and len(review.groups[0]) > len(labels) // 2:
            review.notes.append(
                f"{len(review.groups[0])} of the {len(labels)} images are copies of one picture: "
                "the dataset is mostly duplicates"
            )
    spread = (embedded.features - embedded.features[:1]).abs().max() if len(labels) else 0.0
    if len(labels) > 1 and spread <= 1e-4 * float(embedded.features.abs().max().clamp_min(1e-12)):
        review.notes.append(
            f"all {len(labels)} images look the same to the network (identical or blank files?): "
            "nothing can be ranked; check the folder"
        )
        return review
    if "label" in kinds:
        probabilities = out_of_fold_probabilities(
            embedded.features, labels, len(classes), mirrored=embedded.mirrored
        )
        review.label_issues = rank_label_issues(probabilities, labels)
    if "outliers" in kinds:
        ranked = rank_outliers(embedded.features, labels, len(classes), blank=blank)
        review.outliers = [o for o in ranked if o.blank or o.score >= SUSPECT_SCORE]
        review.outliers.sort(key=lambda o: (not o.blank, -o.score))
    return review


def _some(names: list[str], shown: int = 3) -> str:
    listed = ", ".join(repr(n) for n in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")
