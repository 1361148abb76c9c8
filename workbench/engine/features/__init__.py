"""Frozen features of images: a pretrained network's body (`embedder`) and their disk cache (`store`).

Stage 1 of few-shot training (training/probe_stage.py) reads them; later, the dataset map and label-error
review can too.
"""

from workbench.engine.features.embedder import Embedder
from workbench.engine.features.store import EmbeddingStore, embeddings_folder, file_identity

__all__ = ["Embedder", "EmbeddingStore", "embeddings_folder", "file_identity"]
