"""Turn the images found per split and class into the index: carve val/test from train per class (stratified,
seeded), and warn about tiny or unbalanced classes.
"""

from __future__ import annotations

import random

from workbench.engine.data.index import SPLITS, DatasetIndex, Sample
from workbench.engine.data.layouts import ClassFiles
from workbench.engine.data.walk import FolderWalker
from workbench.engine.names import class_key, display_name, name_bytes

TINY_CLASS = 10  # fewer training images than this earns a warning
IMBALANCE_RATIO = 10.0  # largest / smallest training class at or above this earns a warning


def build_index(
    roots: list[str],
    layout: str,
    by_split: dict[str, ClassFiles],
    walker: FolderWalker,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> DatasetIndex:
    """Label classes by sorted name and carve val/test from train where no folder of their own gives them."""
    classes = sorted({name for per_class in by_split.values() for name in per_class})
    label = {name: i for i, name in enumerate(classes)}
    carve = {
        "val": val_fraction if "val" not in by_split else 0.0,
        "test": test_fraction if "test" not in by_split else 0.0,
    }
    warnings = list(walker.warnings)
    assigned: dict[str, ClassFiles] = {split: dict(per_class) for split, per_class in by_split.items()}
    if "train" in by_split and (carve["val"] or carve["test"]):
        for name, files in by_split["train"].items():
            parts = _stratify(files, name, carve["val"], carve["test"], seed)
            if parts is None:
                warnings.append(
                    f"class '{name}' has only {len(files)} image(s): too few to split off "
                    f"{' and '.join(s for s in ('val', 'test') if carve[s])} images; all are used for training"
                )
                continue
            for split, part in parts.items():
                if split == "train" or carve[split]:  # a split that has its own folder keeps it
                    assigned.setdefault(split, {})[name] = part

    samples = [
        Sample(path, label[name], split)
        for split in SPLITS
        for name in classes
        for path in sorted(assigned.get(split, {}).get(name, []))
    ]
    if layout == "pre-split":
        for split, per_class in by_split.items():
            missing = [name for name in classes if name not in per_class]
            if missing:
                warnings.append(f"the {split} folder has no images of class(es) {', '.join(missing)}")
    warnings.extend(_balance_warnings(classes, assigned.get("train", {})))
    warnings.extend(_look_alike_warnings(classes))
    # Warnings are read by people (printed, shown, stored as text): names that are not UTF-8 are shown
    # escaped here, once, rather than by every client that prints them.
    return DatasetIndex(
        roots, layout, classes, samples, list(walker.problems), [display_name(w) for w in warnings]
    )


def _stratify(
    files: list[str], class_name: str, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]] | None:
    """Split one class's files; None when it is too small to give every requested split an image.

    Depends only on the seed, the class name and the sorted file set, so re-scans split identically and
    adding a class leaves the other classes' splits alone.
    """
    n = len(files)
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        return None
    shuffled = sorted(files)
    # Seeded from bytes: Random(str) encodes strictly and a non-UTF-8 folder name would raise. For UTF-8
    # names the bytes are those Random(str) used, so splits stay what they were.
    random.Random(name_bytes(f"{seed}/{class_name}")).shuffle(shuffled)
    return {
        "val": shuffled[:n_val],
        "test": shuffled[n_val : n_val + n_test],
        "train": shuffled[n_val + n_test :],
    }


def _balance_warnings(classes: list[str], train: ClassFiles) -> list[str]:
    counts = {name: len(train.get(name, [])) for name in classes}
    if not any(counts.values()):
        return []
    warnings = [
        f"class '{name}' has only {n} training image(s); aim for at least {TINY_CLASS}"
        for name, n in counts.items()
        if n < TINY_CLASS
    ]
    largest, smallest = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    if counts[smallest] and counts[largest] / counts[smallest] >= IMBALANCE_RATIO:
        warnings.append(
            f"classes are unbalanced: '{largest}' has {counts[largest]} training images, "
            f"'{smallest}' only {counts[smallest]}"
        )
    return warnings


def _look_alike_warnings(classes: list[str]) -> list[str]:
    """Two folders whose names differ only in Unicode form (NFC "café" and NFD "café") look like one class."""
    by_key: dict[str, list[str]] = {}
    for name in classes:
        by_key.setdefault(class_key(name), []).append(name)
    return [
        f"class folders {' and '.join(repr(n) for n in names)} have the same name written in two Unicode "
        "forms (e.g. copied from a Mac and from Windows); they are separate classes: merge them"
        for names in by_key.values()
        if len(names) > 1
    ]
