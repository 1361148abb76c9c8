"""The data path's first stretch: folder → index → decoded uint8 tensors (cached) → device batches.

Read in that order: `scan` (find files, classes and splits; built from `index`, `walk`, `layouts`,
`splits` and `duplicates`), `decode` (one file → pixels), `cache` (a split → one tensor, decoded once;
with `memory` for where it lives and `pack_store` for the disk cache), `stats` (normalization),
`augment` and `batches` (the hot loop).
"""

from __future__ import annotations

from workbench.engine.data.augment import BatchAugmenter
from workbench.engine.data.batches import BatchIterator
from workbench.engine.data.cache import DecodeCancelled, DecodedSplit, guess_image_geometry, load_decoded
from workbench.engine.data.decode import MAX_PIXELS, decode_image, image_header, open_image
from workbench.engine.data.scan import (
    IMAGE_EXTENSIONS,
    SPLITS,
    DatasetIndex,
    Problem,
    Sample,
    ScanCancelled,
    scan_dataset,
)
from workbench.engine.data.stats import IMAGENET_MEAN, IMAGENET_STD, channel_mean_std

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "SPLITS",
    "BatchAugmenter",
    "BatchIterator",
    "DatasetIndex",
    "DecodeCancelled",
    "DecodedSplit",
    "Problem",
    "Sample",
    "ScanCancelled",
    "channel_mean_std",
    "decode_image",
    "guess_image_geometry",
    "image_header",
    "load_decoded",
    "open_image",
    "scan_dataset",
]
