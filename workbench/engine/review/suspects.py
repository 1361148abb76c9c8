"""A review as one list of questions for the user: each suspect image with its kind, its label, what the review
suggests (relabel to a class, or exclude) and why. The app's Review view walks this list; the answers are
kept by `decisions.ReviewDecisions` under each suspect's `key`, so answered suspects are not asked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from workbench.engine.review.kinds import KIND_NAMES

if TYPE_CHECKING:  # the app imports Suspect while the window paints: no torch
    from workbench.engine.review.embeddings import DatasetEmbeddings
    from workbench.engine.review.report import Review

__all__ = ["KIND_NAMES", "LABEL_SUSPECT_SCORE", "Suspect", "list_suspects"]
# A label is questioned when the image is this much less likely to be its class than its classmates typically
# are, and another class is likelier. Planted wrong-class images score ≤ 0.05 (tests/engine/
# test_review_decisions.py, the screenshot folder); typical images ≈ 1. On 550 Fashion-MNIST images with one
# planted error, 0.35 listed 44 (8%: shirts that look like pullovers), 0.15 about half as many.
LABEL_SUSPECT_SCORE = 0.15


@dataclass(frozen=True)
class Suspect:
    kind: str  # "label" | "duplicate" | "outlier"
    row: int  # the image's row in the embeddings
    path: str  # the image to act on
    label: str  # its class (as spelled on disk)
    split: str
    suggested: str  # the class it should move to ("" when the suggestion is to exclude it)
    action: str  # "relabel" | "exclude": what R or X would do is the user's choice; this is the advice
    score: float  # kind's own scale: label ≈ 0 suspect, duplicate similarity, outlier ≥ 1.6
    reason: str
    other: str = ""  # a duplicate's other image (the one kept)

    @property
    def key(self) -> str:
        """What a decision about this suspect is filed under: kind and the file(s)."""
        return "\t".join([self.kind, self.path, *([self.other] if self.other else [])])


def list_suspects(embedded: DatasetEmbeddings, review: Review) -> list[Suspect]:
    """Label errors (least likely label first), then duplicates and leaks, then outliers (strangest first)."""
    classes, paths, splits = embedded.classes, embedded.paths, embedded.splits
    labels = [int(c) for c in embedded.labels]
    found: list[Suspect] = []
    for issue in review.label_issues:
        if issue.score >= LABEL_SUSPECT_SCORE:
            break  # sorted: the rest are likelier still
        if issue.suggested == issue.given:
            continue
        given, suggested = classes[issue.given], classes[issue.suggested]
        found.append(Suspect(
            "label", issue.index, paths[issue.index], given, splits[issue.index], suggested, "relabel",
            issue.score,
            f"looks like '{suggested}' ({issue.suggested_probability:.0%}); '{given}' only "
            f"{issue.given_probability:.0%}",
        ))  # fmt: skip
    order = {"leak": 0, "label": 1, "copy": 2}  # leaks and two labels cost accuracy; copies only weigh twice
    # how likely each image's label is (label_issues' score): of one picture under two labels, the image whose
    # label the network believes less is the one asked about, with the other's class as the suggestion
    belief = {issue.index: issue.score for issue in review.label_issues}
    listed: set[int] = set()  # one question per copy: thousands of copies of one picture are N rows, not N×8
    for pair in sorted(review.duplicates, key=lambda p: (order[p.kind], -p.similarity)):
        keep, copy = pair.first, pair.second
        if pair.kind == "label" and belief.get(copy, 1.0) > belief.get(keep, 1.0):
            keep, copy = copy, keep
        if copy in listed:
            continue
        listed.add(copy)
        a, b = classes[labels[keep]], classes[labels[copy]]
        if pair.kind == "leak":
            reason = f"the same picture is in '{splits[keep]}' too: a leak inflates {splits[copy]} accuracy"
        elif pair.kind == "label":
            reason = f"the same picture is in '{a}' too: one of the two labels is wrong"
        else:
            reason = f"a copy of another '{a}' image: it weighs twice in training"
        found.append(Suspect(
            "duplicate", copy, paths[copy], b, splits[copy], a if pair.kind == "label" else "", "exclude",
            pair.similarity, f"{reason} (similarity {pair.similarity:.3f})", other=paths[keep],
        ))  # fmt: skip
    for outlier in review.outliers:
        label = classes[labels[outlier.index]]
        if outlier.blank:
            reason = "a blank image (one flat tone)"
        elif outlier.nearest == labels[outlier.index]:
            reason = f"far even from the other '{label}' images ({outlier.score:.1f}× their typical distance)"
        else:
            reason = (f"unlike every class ({outlier.score:.1f}× the typical distance; nearest "
                      f"'{classes[outlier.nearest]}')")  # fmt: skip
        found.append(Suspect(
            "outlier", outlier.index, paths[outlier.index], label, splits[outlier.index], "", "exclude",
            outlier.score, reason,
        ))  # fmt: skip
    return found
