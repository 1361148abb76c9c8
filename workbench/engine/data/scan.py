"""Index a dataset folder: which image files exist, their class and split — without decoding anything.

Three layouts are understood:

- "class-folders": ``ROOT/<class>/**/image``; train/val/test are drawn per class (stratified, seeded);
- "pre-split": ``ROOT/{train,val|valid|validation,test}/<class>/**/image``; the folders keep their split,
  and a missing val (or test) split is carved from train with the requested fraction;
- "folders-as-classes": several folders given at once (dropped onto the app), each one class.

Images in nested sub-folders belong to their class folder (``ROOT/cat/2019/cat/x.png`` is class "cat" by
``ROOT/cat``); `class_folder_of` and `destination_for` (in `layouts`) apply the same rule to one file, for
anything that moves files between classes. Hidden files and folders (a leading dot, or the hidden attribute
on Windows) are ignored. Class names are folder names, sorted, exactly as on disk (a name that is not UTF-8
stays surrogate-escaped for file access; see `names` for showing and comparing them). Files that cannot be
used (zero bytes, broken links, link loops, pipes or sockets named like images) are reported as `Problem`s
and never abort the scan; decode-time failures are reported later by the cache loader. Byte-identical files
are found too (see `duplicates`): a test image that is also a training image is reported as leakage.

This is the entry point; the work is done by `walk` (list files), `layouts` (read the folder structure),
`splits` (draw train/val/test) and `duplicates`, into the `index` dataclasses re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from workbench.engine.data.duplicates import describe_duplicates, find_identical_files
from workbench.engine.data.index import LAYOUTS, SPLITS, DatasetIndex, Problem, Sample, ScanCancelled
from workbench.engine.data.layouts import (
    SPLIT_FOLDERS,
    ClassPlace,
    class_folder_of,
    destination_for,
    folders_as_classes,
    one_root_layout,
)
from workbench.engine.data.splits import IMBALANCE_RATIO, TINY_CLASS, build_index
from workbench.engine.data.walk import IMAGE_EXTENSIONS, FolderWalker, check_folder
from workbench.engine.errors import ConfigError, DatasetError
from workbench.engine.names import display_name, shown_list

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMBALANCE_RATIO",
    "LAYOUTS",
    "SPLITS",
    "SPLIT_FOLDERS",
    "TINY_CLASS",
    "ClassPlace",
    "DatasetIndex",
    "Problem",
    "Sample",
    "ScanCancelled",
    "class_folder_of",
    "destination_for",
    "scan_dataset",
]


def scan_dataset(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    find_duplicates: bool = True,
) -> DatasetIndex:
    """Index one dataset folder, or several folders that are one class each.

    `progress(n_files_seen)` is called every few hundred files; `should_stop()` is checked as often and
    raises `ScanCancelled` when it returns True. Raises `DatasetError` for folders that cannot be used.
    `find_duplicates`: look for byte-identical images (reads only files whose size another file shares).
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val fraction {val_fraction} and test fraction {test_fraction}: each must be in [0, 1) "
            "and together below 1"
        )
    given = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not given:
        raise DatasetError("no dataset folder given")
    roots = [os.path.abspath(os.fspath(p)) for p in given]
    for root in roots:
        check_folder(root)

    walker = FolderWalker(progress, should_stop)
    if len(roots) > 1:
        layout = "folders-as-classes"
        by_split = {"train": folders_as_classes(roots, walker)}
    else:
        layout, by_split = one_root_layout(roots[0], walker)
    walker.report()

    index = build_index(roots, layout, by_split, walker, val_fraction, test_fraction, seed)
    if not index.samples:
        raise DatasetError(display_name(_no_images_message(roots, layout, walker)))
    if len(index.classes) < 2:
        raise DatasetError(
            f"{shown_list(roots)}: only one class "
            f"({', '.join(repr(display_name(c)) for c in index.classes)}) has images; a classifier needs at "
            "least two (e.g. ROOT/cats/... and ROOT/dogs/...)"
        )
    if find_duplicates:
        _add_duplicates(index, walker)
    return index


def _add_duplicates(index: DatasetIndex, walker: FolderWalker) -> None:
    paths = [s.path for s in index.samples]
    index.duplicates = find_identical_files(paths, walker.sizes, should_stop=walker.should_stop)
    walker.report()  # raises ScanCancelled when the hashing above was cut short by a stop
    if index.duplicates:
        split_of = {s.path: s.split for s in index.samples}
        class_of = {s.path: index.classes[s.label] for s in index.samples}
        root = index.roots[0] if len(index.roots) == 1 else os.path.commonpath(index.roots)
        described = describe_duplicates(index.duplicates, split_of, class_of, root)
        index.warnings.extend(display_name(w) for w in described)  # as build_index does for its own


def _no_images_message(roots: list[str], layout: str, walker: FolderWalker) -> str:
    where = roots[0] if len(roots) == 1 else ", ".join(roots)
    if walker.loose_images:
        return (
            f"{where}: no images inside class sub-folders ({walker.loose_images} lie directly in the folder); "
            "put each class's images in its own sub-folder, e.g. ROOT/cats/*.jpg and ROOT/dogs/*.jpg"
        )
    if walker.seen == 0 and not walker.problems:
        empty = len(roots) == 1 and not walker.entries(roots[0])
        structure = (
            "" if layout == "folders-as-classes" else "; expected class sub-folders, e.g. ROOT/cats/*.jpg"
        )
        return f"{where}: no images found ({'the folder is empty' if empty else 'no image files'}){structure}"
    details = []
    if walker.other_files:
        details.append(
            f"{walker.other_files} file(s) without an image extension ({' '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if walker.problems:
        first = walker.problems[0]
        details.append(f"{len(walker.problems)} unusable file(s), e.g. {first.path}: {first.reason}")
    return f"{where}: no usable images found; saw {'; '.join(details)}"
