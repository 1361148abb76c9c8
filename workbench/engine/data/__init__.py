"""The data path's first stretch: folder → index → decoded uint8 tensors (cached) → device batches.

Read in that order: `scan` (find files, classes and splits; built from `index`, `walk`, `layouts`,
`splits` and `duplicates`; `layouts` also answers which class folder a file is in, for moves; names that are
not UTF-8 or not NFC are shown and compared by `workbench.engine.names`), `decode` (one file → pixels), `cache`
(a split → one tensor, decoded once; with `memory` for where it lives and `pack_store` for the disk cache),
`stats` (normalization), `augment` and `batches` (the hot loop). `curation` moves a file out of training or to
another class on disk, by the scan's own rule, with undo.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each public name and the module it lives in. Loaded on first use (PEP 562): the scan and the folder rules
# are plain Python, while augment/batches/cache import torch — a client that only scans or moves files
# (the app's dataset browser at start-up) must not pay for torch.
_WHERE = {
    "BatchAugmenter": "augment",
    "BatchIterator": "batches",
    **dict.fromkeys(("DecodeCancelled", "DecodedSplit", "guess_image_geometry", "load_decoded"), "cache"),
    **dict.fromkeys(("MAX_PIXELS", "decode_image", "image_header", "open_image"), "decode"),
    **dict.fromkeys(
        ("IMAGE_EXTENSIONS", "SPLITS", "ClassPlace", "DatasetIndex", "Problem", "Sample", "ScanCancelled",
         "class_folder_of", "destination_for", "scan_dataset"),
        "scan",
    ),
    **dict.fromkeys(("IMAGENET_MEAN", "IMAGENET_STD", "channel_mean_std"), "stats"),
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])

