"""Read a dataset folder's structure: which sub-folders are splits and which are classes, and their images.

Understands "class-folders", "pre-split" and "folders-as-classes" (see `scan`); files a layout ignores
are warned about.
"""

from __future__ import annotations

import os

from workbench.engine.data.walk import IGNORED_FOLDERS, IMAGE_EXTENSIONS, FolderWalker
from workbench.engine.errors import DatasetError

SPLIT_FOLDERS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}

ClassFiles = dict[str, list[str]]  # class name -> image paths


def one_root_layout(root: str, walker: FolderWalker) -> tuple[str, dict[str, ClassFiles]]:
    """("pre-split" or "class-folders", split -> class -> image paths) for one dataset folder."""
    walker.enter(root, is_link=False)
    entries = walker.entries(root)
    folders = [e for e in entries if _is_dir(e) and e.name not in IGNORED_FOLDERS]
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


def folders_as_classes(roots: list[str], walker: FolderWalker) -> ClassFiles:
    """Several folders given at once, each one class named after the folder."""
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
