"""Reviewing a dataset before (or after) training on it: the images whose label looks wrong, ranked.

Built on the frozen pretrained network of the few-shot path (features/): every image is embedded once and the
vectors are cached, so a review after a run (or a second review) costs seconds. `embeddings` gets the vectors
of a folder, `label_issues` ranks the images by how unlikely their folder's label is.
"""

from workbench.engine.review.embeddings import DatasetEmbeddings, embed_dataset
from workbench.engine.review.label_issues import LabelIssue, out_of_fold_probabilities, rank_label_issues

__all__ = ["DatasetEmbeddings", "LabelIssue", "embed_dataset", "out_of_fold_probabilities", "rank_label_issues"]
