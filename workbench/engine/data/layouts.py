"""Read a dataset folder's structure: which sub-folders are splits and which are classes, and their images.

Understands "class-folders", "pre-split" and "folders-as-classes" (see `scan`); files a layout ignores
are warned about.

This module is the one place that decides which folder gives a file its class. The scan reads it forwards
(`one_root_layout`, `folders_as_classes`: folders → classes); `class_folder_of` and `destination_for` read it
backwards (a file → its class folder; a class → where a file must go to be in it), for anything that moves
files between classes. Both use the same predicates (`split_of`, `class_name_of_root`, `root_is_pre_split`),
so a file moved by `destination_for` is in the new class when the folder is scanned again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from workbench.engine.data.walk import IGNORED_FOLDERS, IMAGE_EXTENSIONS, FolderWalker, is_hidden
from workbench.engine.errors import DatasetError
from workbench.engine.names import class_key, display_name, shown_list

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

ClassFiles = dict[str, list[str]]  # class name -> image paths
Roots = str | os.PathLike | Sequence[str | os.PathLike]


def split_of(folder_name: str) -> str | None:
    """The split a folder directly under the root stands for ("Valid" → "val"), or None for a class folder."""
    return SPLIT_FOLDERS.get(folder_name.lower())


def class_name_of_root(root: str) -> str:
    """The class of a folder given on its own among several (dropped together): its name."""
    return os.path.basename(root.rstrip(os.sep)) or root


def root_is_pre_split(root: str) -> bool:
    """Whether `root` has train/val/test folders, which makes it "pre-split" (read from disk, as the scan
    does, so a caller deciding where a file goes sees the layout the next scan will see)."""
    try:
        with os.scandir(root) as it:
            return any(_counts_as_split_folder(e) for e in it)
    except OSError:
        return False


def _counts_as_split_folder(entry: os.DirEntry) -> bool:
    return (
        split_of(entry.name) is not None
        and entry.name not in IGNORED_FOLDERS
        and not is_hidden(entry.path)
        and _is_dir(entry)
    )


def one_root_layout(root: str, walker: FolderWalker) -> tuple[str, dict[str, ClassFiles]]:
    """("pre-split" or "class-folders", split -> class -> image paths) for one dataset folder."""
    walker.enter(root, is_link=False)
    entries = walker.entries(root)
    folders = [e for e in entries if _is_dir(e) and e.name not in IGNORED_FOLDERS]
    split_folders = [e for e in folders if _counts_as_split_folder(e)]
    if split_folders:
        others = [e.name for e in folders if split_of(e.name) is None]
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


def folders_as_classes(roots: list[str], walker: FolderWalker) -> ClassFiles:
    """Several folders given at once, each one class named after the folder."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}  # class_key -> root: "café" in NFC and in NFD are one name to a person
    for root in roots:
        name = class_name_of_root(root)
        if class_key(name) in seen:
            raise DatasetError(
                f"{display_name(seen[class_key(name)])} and {display_name(root)} are both named "
                f"'{display_name(name)}': each folder becomes a class named after it, so rename one of them"
            )
        seen[class_key(name)] = root
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


def _class_folders(parent: str, walker: FolderWalker, entries: list[os.DirEntry] | None = None) -> ClassFiles:
    """Each visible sub-folder of `parent` is a class; folders without images are reported, not kept."""
    if entries is None:
        entries = walker.entries(parent)
        _warn_loose_files(parent, entries, walker, "outside any class folder")
    folders = [
        e
        for e in entries
        if _is_dir(e) and e.name not in IGNORED_FOLDERS and walker.enter(e.path, e.is_symlink())
    ]
    classes: ClassFiles = {}
    for entry in folders:
        files = walker.images_under(entry.path)
        if files:
            classes[entry.name] = files
        else:
            walker.warnings.append(f"{entry.path}: no images; not used as a class")
    return classes


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _warn_loose_files(folder: str, entries: list[os.DirEntry], walker: FolderWalker, where: str) -> None:
    """Images (or extension-less files that look like intended class folders) that the layout ignores."""
    files = [e.name for e in entries if not _is_dir(e)]
    images = [name for name in files if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS]
    walker.loose_images += len(images)
    loose = images + [name for name in files if not os.path.splitext(name)[1]]
    if loose:
        shown = ", ".join(loose[:3]) + (f" and {len(loose) - 3} more" if len(loose) > 3 else "")
        walker.warnings.append(f"{folder}: ignored {len(loose)} file(s) {where} ({shown})")


# ------------------------------------------------------------------------------- the rule, read backwards


@dataclass(frozen=True)
class ClassPlace:
    """Where a file sits by the scan's rule: its class, the folder that gives it, and the path below that."""

    class_name: str
    class_dir: str
    rest: str  # the file's path below `class_dir` (its sub-folders and name)
    split_dir: str | None = None  # ROOT/<train|val|test folder> in the pre-split layout


def as_roots(roots: Roots) -> list[str]:
    """Dataset folders as `scan_dataset` holds them (absolute; one str is one folder)."""
    given = [roots] if isinstance(roots, str | os.PathLike) else list(roots)
    return [os.path.abspath(os.fspath(p)) for p in given]


def class_folder_of(roots: Roots, path: str | os.PathLike) -> ClassPlace:
    """The class a scan of `roots` gives the image at `path`, and the folder that gives it.

    Raises `DatasetError` when a scan would not use the file at all: outside the roots, loose beside the
    class folders, under a hidden or ignored folder, or without an image extension.
    """
    folders = as_roots(roots)
    target = os.path.abspath(os.fspath(path))
    if len(folders) > 1:  # folders-as-classes: the dropped folder holding the file is its class
        root = _root_holding(folders, target)
        return ClassPlace(class_name_of_root(root), root, _checked_rest(root, target))
    root = folders[0]
    parts = _parts_below(root, target)
    split_dir = None
    if root_is_pre_split(root):
        if len(parts) < 3 or split_of(parts[0]) is None:
            raise DatasetError(
                f"{display_name(target)}: not inside a class folder of a train/val/test folder of "
                f"{display_name(root)}, so a scan does not use it"
            )
        split_dir, parts = os.path.join(root, parts[0]), parts[1:]
    elif len(parts) < 2:
        raise DatasetError(
            f"{display_name(target)}: lies directly in {display_name(root)}, outside any class folder"
        )
    class_dir = os.path.join(split_dir or root, parts[0])
    if parts[0] in IGNORED_FOLDERS or is_hidden(class_dir):
        raise DatasetError(f"{display_name(target)}: inside {display_name(class_dir)}, which a scan skips")
    return ClassPlace(parts[0], class_dir, _checked_rest(class_dir, target), split_dir)


def destination_for(roots: Roots, path: str | os.PathLike, new_class: str) -> str:
    """Where the image at `path` must move to be in class `new_class` when `roots` are scanned again.

    It keeps its split folder and its sub-folders below the class folder; an existing class folder whose
    name is `new_class` in another Unicode form is used as it is spelled. Raises `DatasetError` when no
    such place exists, or when the place computed would not be classified as `new_class` (checked with
    `class_folder_of`, the scan's own rule).
    """
    folders = as_roots(roots)
    place = class_folder_of(folders, path)
    _check_class_folder_name(new_class)
    if len(folders) > 1:
        matching = [root for root in folders if class_key(class_name_of_root(root)) == class_key(new_class)]
        if not matching:
            raise DatasetError(
                f"no dataset folder is named '{display_name(new_class)}' (the classes are "
                f"{shown_list([class_name_of_root(r) for r in folders])})"
            )
        destination = os.path.join(matching[0], place.rest)
        new_class = class_name_of_root(matching[0])
    else:
        if place.split_dir is None and split_of(new_class) is not None:
            raise DatasetError(
                f"a class folder named '{display_name(new_class)}' would turn {display_name(folders[0])} "
                "into a train/val/test dataset; rename the class first"
            )
        parent = place.split_dir or folders[0]
        new_class = _spelled_as_on_disk(parent, new_class)
        destination = os.path.join(parent, new_class, place.rest)
    landed = class_folder_of(folders, destination).class_name
    if landed != new_class:
        raise DatasetError(
            f"{display_name(destination)} would be read as class '{display_name(landed)}', "
            f"not '{display_name(new_class)}'"
        )
    return destination


def _spelled_as_on_disk(parent: str, name: str) -> str:
    """`name` as an existing class folder in `parent` spells it, else `name` itself: a class named by a
    model trained elsewhere may be NFC where this disk's folder is NFD, and a second folder must not appear."""
    if os.path.isdir(os.path.join(parent, name)):
        return name
    try:
        with os.scandir(parent) as it:
            for entry in it:
                if class_key(entry.name) == class_key(name) and _is_dir(entry) and not is_hidden(entry.path):
                    return entry.name
    except OSError:
        pass
    return name


def _root_holding(roots: list[str], target: str) -> str:
    holding = [root for root in roots if _is_below(root, target)]
    if not holding:
        raise DatasetError(f"{display_name(target)}: not inside any of {shown_list(roots)}")
    return max(holding, key=len)  # the innermost, should one dropped folder lie inside another


def _parts_below(root: str, target: str) -> list[str]:
    if not _is_below(root, target):
        raise DatasetError(f"{display_name(target)}: not inside the dataset folder {display_name(root)}")
    return os.path.relpath(target, root).split(os.sep)


def _is_below(root: str, target: str) -> bool:
    try:
        return target != root and os.path.commonpath([root, target]) == root
    except ValueError:  # different drives on Windows
        return False


def _checked_rest(class_dir: str, target: str) -> str:
    """The path below `class_dir`, after checking that the scan would list the file (see `images_under`)."""
    rest = os.path.relpath(target, class_dir)
    folder = class_dir
    for part in rest.split(os.sep)[:-1]:
        folder = os.path.join(folder, part)
        if part in IGNORED_FOLDERS or is_hidden(folder):
            raise DatasetError(f"{display_name(target)}: inside {display_name(folder)}, which a scan skips")
    if is_hidden(target) or os.path.splitext(target)[1].lower() not in IMAGE_EXTENSIONS:
        raise DatasetError(f"{display_name(target)}: not a file a scan uses (hidden, or not an image)")
    return rest


def _check_class_folder_name(name: str) -> None:
    """A class name must be one visible folder name: anything else is not a class a scan can find."""
    if (
        not name
        or name in (os.curdir, os.pardir)
        or os.sep in name
        or (os.altsep is not None and os.altsep in name)
        or name.startswith(".")
        or name in IGNORED_FOLDERS
    ):
        raise DatasetError(f"'{display_name(name)}' cannot be a class folder's name")
