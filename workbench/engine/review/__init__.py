"""Reviewing a dataset before (or after) training on it: suspect images, ranked — labels that look wrong,
near-duplicates (within a class, under two labels, across train/val/test) and outliers.

Built on the frozen pretrained network of the few-shot path (features/): every image is embedded once and the
vectors are cached, so a review after a run (or a second review) costs seconds. `embeddings` gets the vectors
of a folder, `label_issues` ranks the images by how unlikely their folder's label is, `near_duplicates` pairs
copies, `outliers` ranks images unlike every class, `report` runs them all.
"""

from workbench.engine.review.embeddings import DatasetEmbeddings, embed_dataset
from workbench.engine.review.label_issues import LabelIssue, out_of_fold_probabilities, rank_label_issues
from workbench.engine.review.near_duplicates import NearDuplicate, duplicate_groups, find_near_duplicates
from workbench.engine.review.outliers import Outlier, rank_outliers
from workbench.engine.review.report import KINDS, Review, review_dataset

__all__ = [
    "KINDS",
    "DatasetEmbeddings",
    "LabelIssue",
    "NearDuplicate",
    "Outlier",
    "Review",
    "duplicate_groups",
    "embed_dataset",
    "find_near_duplicates",
    "out_of_fold_probabilities",
    "rank_label_issues",
    "rank_outliers",
    "review_dataset",
]
