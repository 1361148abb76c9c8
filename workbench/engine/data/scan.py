"""Index a dataset folder: which image files exist, their class and split — without decoding anything.

Three layouts are understood:

- "class-folders": ``ROOT/<class>/**/image``; train/val/test are drawn per class (stratified, seeded);
- "pre-split": ``ROOT/{train,val|valid|validation,test}/<class>/**/image``; the folders keep their split,
  and a missing val (or test) split is carved from train with the requested fraction;
- "folders-as-classes": several folders given at once (dropped onto the app), each one class.

Images in nested sub-folders belong to their class folder. Hidden files and folders (a leading dot, or the
hidden attribute on Windows) are ignored. Class names are folder names, sorted. Files that cannot be used
(zero bytes, broken links, link loops, pipes or sockets named like images) are reported as `Problem`s and never
abort the scan; decode-time failures are reported later by the cache loader. Byte-identical files are found
too (see `duplicates`): a test image that is also a training image is reported as leakage.
"""

from __future__ import annotations

import errno
import os
import random
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.engine.data.duplicates import describe_duplicates, find_identical_files
from workbench.engine.errors import ConfigError, DatasetError, WorkbenchError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "val", "test")
SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
LAYOUTS = ("class-folders", "pre-split", "folders-as-classes")

TINY_CLASS = 10  # fewer training images than this earns a warning
IMBALANCE_RATIO = 10.0  # largest / smallest training class at or above this earns a warning
_REPORT_EVERY = 512  # files between progress reports and stop checks: cheap, yet responsive

# macOS zip archives carry resource forks in this folder; they are never part of a dataset.
_IGNORED_FOLDERS = frozenset({"__MACOSX"})


class ScanCancelled(WorkbenchError):
    """The caller's `should_stop()` returned True while the folder was being scanned."""


@dataclass(frozen=True)
class Sample:
    path: str
    label: int
    split: str  # "train" | "val" | "test"


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str  # short and human: "zero bytes", "not an image", ...


@dataclass
class DatasetIndex:
    roots: list[str]
    layout: str  # one of LAYOUTS
    classes: list[str]
    samples: list[Sample]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)  # groups of byte-identical sample files

    def split(self, name: str) -> list[Sample]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, list[int]]:
        """Images per class for each split present (train always listed)."""
        table = {split: [0] * len(self.classes) for split in SPLITS}
        for sample in self.samples:
            table[sample.split][sample.label] += 1
        return {split: row for split, row in table.items() if split == "train" or any(row)}

    def to_dict(self) -> dict[str, Any]:
        # Parallel lists keep a 70,000-image index compact in the run folder's JSON.
        return {
            "version": 1,
            "roots": list(self.roots),
            "layout": self.layout,
            "classes": list(self.classes),
            "paths": [s.path for s in self.samples],
            "labels": [s.label for s in self.samples],
            "splits": [s.split for s in self.samples],
            "problems": [[p.path, p.reason] for p in self.problems],
            "warnings": list(self.warnings),
            "duplicates": [list(group) for group in self.duplicates],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetIndex:
        try:
            samples = [
                Sample(path, int(label), split)
                for path, label, split in zip(data["paths"], data["labels"], data["splits"], strict=True)
            ]
            return cls(
                roots=list(data["roots"]),
                layout=data["layout"],
                classes=list(data["classes"]),
                samples=samples,
                problems=[Problem(path, reason) for path, reason in data.get("problems", [])],
                warnings=list(data.get("warnings", [])),
                duplicates=[[str(path) for path in group] for group in data.get("duplicates", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"the stored dataset index is damaged ({type(exc).__name__}: {exc})") from None


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
        _check_folder(root)

    walker = _Walker(progress, should_stop)
    if len(roots) > 1:
        layout = "folders-as-classes"
        by_split = {"train": _folders_as_classes(roots, walker)}
    else:
        layout, by_split = _one_root(roots[0], walker)
    walker.report()

    index = _build_index(roots, layout, by_split, walker, val_fraction, test_fraction, seed)
    if not index.samples:
        raise DatasetError(_no_images_message(roots, layout, walker))
    if len(index.classes) < 2:
        raise DatasetError(
            f"{roots[0] if len(roots) == 1 else ', '.join(roots)}: only one class "
            f"({', '.join(repr(c) for c in index.classes)}) has images; a classifier needs at least two "
            "(e.g. ROOT/cats/... and ROOT/dogs/...)"
        )
    if find_duplicates:
        _add_duplicates(index, walker)
    return index


def _add_duplicates(index: DatasetIndex, walker: _Walker) -> None:
    paths = [s.path for s in index.samples]
    index.duplicates = find_identical_files(paths, walker.sizes, should_stop=walker.should_stop)
    walker.report()  # raises ScanCancelled when the hashing above was cut short by a stop
    if index.duplicates:
        split_of = {s.path: s.split for s in index.samples}
        class_of = {s.path: index.classes[s.label] for s in index.samples}
        root = index.roots[0] if len(index.roots) == 1 else os.path.commonpath(index.roots)
        index.warnings.extend(describe_duplicates(index.duplicates, split_of, class_of, root))


# ---------------------------------------------------------------------------------------------- walking


class _Walker:
    """Lists image files under folders with `os.scandir`, following folder links once (loops are cut)."""

    def __init__(self, progress: Callable[[int], None] | None, should_stop: Callable[[], bool] | None):
        self.progress = progress
        self.should_stop = should_stop
        self.seen = 0
        self.other_files = 0  # files without an image extension, for the "no images" message
        self.loose_images = 0  # images outside any class folder, for the same message
        self.problems: list[Problem] = []
        self.warnings: list[str] = []
        self.sizes: dict[str, int] = {}  # image path -> bytes, for the duplicate search
        self._visited: set[tuple[int, int]] = set()

    def tick(self) -> None:
        self.seen += 1
        if self.seen % _REPORT_EVERY == 0:
            self.report()

    def report(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise ScanCancelled("dataset scan cancelled")
        if self.progress is not None:
            self.progress(self.seen)

    def entries(self, folder: str) -> list[os.DirEntry]:
        """Visible entries of `folder`, sorted by name; an unreadable folder is reported, not raised."""
        try:
            with os.scandir(folder) as it:
                return sorted((e for e in it if not _hidden(e)), key=lambda e: e.name)
        except OSError as exc:
            self.problems.append(Problem(folder, _os_reason(exc, "cannot read folder")))
            return []

    def enter(self, path: str, is_link: bool) -> bool:
        """Mark a folder as visited; False when it was already (a link back into the tree)."""
        try:
            st = os.stat(path)
        except OSError as exc:
            self.problems.append(Problem(path, _os_reason(exc, "cannot read folder")))
            return False
        key = (st.st_dev, st.st_ino)
        if key in self._visited:
            if is_link:
                self.problems.append(Problem(path, "link to a folder already scanned (not followed)"))
            return False
        self._visited.add(key)
        return True

    def images_under(self, folder: str) -> list[str]:
        """Every usable image file below `folder` (any depth), sorted. `folder` must have been entered:
        callers enter every top-level folder first, so a link into a sibling class is never followed."""
        found: list[str] = []
        stack = [folder]
        while stack:
            for entry in self.entries(stack.pop()):
                kind = self.classify(entry)
                if kind == "dir":
                    if self.enter(entry.path, entry.is_symlink()):
                        stack.append(entry.path)
                elif kind == "image":
                    found.append(entry.path)
        found.sort()
        return found

    def classify(self, entry: os.DirEntry) -> str:
        """'dir', 'image', or 'skip' (reported as a problem when the user would expect it to count)."""
        try:
            if entry.is_dir():
                return "skip" if entry.name in _IGNORED_FOLDERS else "dir"
            if not entry.is_file():
                self._report_special(entry)
                return "skip"
            self.tick()
            if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
                self.other_files += 1
                return "skip"
            size = entry.stat().st_size
            if size == 0:
                self.problems.append(Problem(entry.path, "zero bytes"))
                return "skip"
        except OSError as exc:  # a link loop, a file vanishing or a permission error mid-scan
            self.problems.append(Problem(entry.path, _os_reason(exc, "cannot read")))
            return "skip"
        self.sizes[entry.path] = size
        return "image"

    def _report_special(self, entry: os.DirEntry) -> None:
        """A broken link, or a pipe, socket or device: never opened (reading a pipe would block forever).
        Reported when it is a link or carries an image extension, i.e. when the user may expect an image."""
        is_image = os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS
        if not (is_image or entry.is_symlink()):
            return
        try:
            mode = os.stat(entry.path).st_mode
        except FileNotFoundError:
            reason = "broken link (its target does not exist)"
        except OSError as exc:
            reason = _os_reason(exc, "cannot read")
        else:
            reason = f"not a regular file ({_special_kind(mode)})"
        self.problems.append(Problem(entry.path, reason))


def _os_reason(exc: OSError, prefix: str) -> str:
    if exc.errno == errno.ELOOP:
        return "link loop (the link leads back to itself)"
    if exc.errno == errno.ENAMETOOLONG:
        return "path too long for the operating system"
    return f"{prefix}: {exc.strerror or exc}"


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file or folder"


def _hidden(entry: os.DirEntry) -> bool:
    if entry.name.startswith("."):
        return True
    if sys.platform == "win32":  # stat() is free on Windows: scandir already has the attributes
        try:
            return bool(entry.stat(follow_symlinks=False).st_file_attributes & stat.FILE_ATTRIBUTE_HIDDEN)
        except OSError:
            return False
    return False


def _check_folder(root: str) -> None:
    if not os.path.lexists(root):
        raise DatasetError(f"{root}: folder not found")
    if not os.path.exists(root):
        raise DatasetError(f"{root}: broken link (its target does not exist)")
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: is a file, not a folder of images")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DatasetError(f"{root}: permission denied")


# ---------------------------------------------------------------------------------------------- layouts

ClassFiles = dict[str, list[str]]  # class name -> image paths


def _one_root(root: str, walker: _Walker) -> tuple[str, dict[str, ClassFiles]]:
    walker.enter(root, is_link=False)
    entries = walker.entries(root)
    folders = [e for e in entries if _is_dir(e) and e.name not in _IGNORED_FOLDERS]
    split_folders = [e for e in folders if e.name.lower() in SPLIT_FOLDERS]
    if split_folders:
        others = [e.name for e in folders if e.name.lower() not in SPLIT_FOLDERS]
        if others:
            walker.warnings.append(
                f"{root}: ignored folder(s) {', '.join(others)} beside the train/val/test folders"
            )
        _warn_loose_files(root, entries, walker, "beside the train/val/test folders")
        by_split: dict[str, ClassFiles] = {}
        for folder in [f for f in split_folders if walker.enter(f.path, f.is_symlink())]:
            split = SPLIT_FOLDERS[folder.name.lower()]
            if split in by_split:
                walker.warnings.append(f"{folder.path}: a second {split} folder; its images were merged")
            for name, files in _class_folders(folder.path, walker).items():
                by_split.setdefault(split, {}).setdefault(name, []).extend(files)
        return "pre-split", by_split
    _warn_loose_files(root, entries, walker, "outside any class folder")
    return "class-folders", {"train": _class_folders(root, walker, entries)}


def _class_folders(parent: str, walker: _Walker, entries: list[os.DirEntry] | None = None) -> ClassFiles:
    """Each visible sub-folder of `parent` is a class; folders without images are reported, not kept."""
    if entries is None:
        entries = walker.entries(parent)
        _warn_loose_files(parent, entries, walker, "outside any class folder")
    folders = [
        e
        for e in entries
        if _is_dir(e) and e.name not in _IGNORED_FOLDERS and walker.enter(e.path, e.is_symlink())
    ]
    classes: ClassFiles = {}
    for entry in folders:
        files = walker.images_under(entry.path)
        if files:
            classes[entry.name] = files
        else:
            walker.warnings.append(f"{entry.path}: no images; not used as a class")
    return classes


def _folders_as_classes(roots: list[str], walker: _Walker) -> ClassFiles:
    names: dict[str, str] = {}
    for root in roots:
        name = os.path.basename(root.rstrip(os.sep)) or root
        if name in names:
            raise DatasetError(
                f"{names[name]} and {root} are both named '{name}': each folder becomes a class named "
                "after it, so rename one of them"
            )
        names[name] = root
    entered = {name: root for name, root in names.items() if walker.enter(root, os.path.islink(root))}
    classes: ClassFiles = {}
    for name, root in entered.items():
        files = walker.images_under(root)
        if files:
            classes[name] = files
        else:
            walker.warnings.append(f"{root}: no images; not used as a class")
    return classes


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _warn_loose_files(folder: str, entries: list[os.DirEntry], walker: _Walker, where: str) -> None:
    """Images (or extension-less files that look like intended class folders) that the layout ignores."""
    files = [e.name for e in entries if not _is_dir(e)]
    images = [name for name in files if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS]
    walker.loose_images += len(images)
    loose = images + [name for name in files if not os.path.splitext(name)[1]]
    if loose:
        shown = ", ".join(loose[:3]) + (f" and {len(loose) - 3} more" if len(loose) > 3 else "")
        walker.warnings.append(f"{folder}: ignored {len(loose)} file(s) {where} ({shown})")


# ---------------------------------------------------------------------------------------------- splitting


def _build_index(
    roots: list[str],
    layout: str,
    by_split: dict[str, ClassFiles],
    walker: _Walker,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> DatasetIndex:
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
    return DatasetIndex(roots, layout, classes, samples, list(walker.problems), warnings)


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
    random.Random(f"{seed}/{class_name}").shuffle(shuffled)
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


def _no_images_message(roots: list[str], layout: str, walker: _Walker) -> str:
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
