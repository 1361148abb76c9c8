"""Curating a dataset on disk: exclude an image from training, or move it to another class; undo either.

No Qt here, so the evaluation views (top losses → relabel) can reuse it. Excluding moves the file into a
hidden `.excluded/` folder inside its class folder; the engine ignores hidden folders, so the image leaves
training without being deleted. Relabeling moves the file into the target class's folder in the same split.
Each move is recorded so the session can undo it in reverse order.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench.engine.errors import DatasetError

EXCLUDED_FOLDER = ".excluded"


@dataclass(frozen=True)
class FileMove:
    source: Path
    destination: Path
    action: str  # "exclude" | "relabel"
    detail: str  # class names, for messages


def class_folder(path: Path, class_name: str) -> Path:
    """The folder that makes `path` belong to `class_name`: the nearest ancestor so named."""
    for parent in path.parents:
        if parent.name == class_name:
            return parent
    raise DatasetError(f"{path}: not inside a folder named '{class_name}', so its class folder is unknown")


def _free_name(target: Path) -> Path:
    """`target`, or `name-1.ext`, `name-2.ext`… if taken: curation never overwrites an image."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return candidate


def _move(source: Path, destination: Path) -> Path:
    if not source.is_file():
        raise DatasetError(f"{source}: the file is gone (moved or deleted outside the app)")
    destination = _free_name(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(os.fspath(source), os.fspath(destination))
    except OSError as exc:
        raise DatasetError(f"cannot move {source} to {destination}: {exc.strerror or exc}") from None
    return destination


class Curator:
    """Applies moves and keeps the session's undo stack."""

    def __init__(self, class_folders: dict[str, Path] | None = None):
        # Several dropped folders, one per class: the target class's folder is known directly.
        self.class_folders = class_folders or {}
        self.history: list[FileMove] = []

    def exclude(self, path: str | Path, class_name: str) -> FileMove:
        path = Path(path)
        folder = self.class_folders.get(class_name) or class_folder(path, class_name)
        destination = _move(path, folder / EXCLUDED_FOLDER / path.relative_to(folder))
        move = FileMove(path, destination, "exclude", class_name)
        self.history.append(move)
        return move

    def relabel(self, path: str | Path, class_name: str, new_class: str) -> FileMove:
        path = Path(path)
        if new_class == class_name:
            raise DatasetError(f"{path} is already in class '{class_name}'")
        folder = self.class_folders.get(class_name) or class_folder(path, class_name)
        target_folder = self.class_folders.get(new_class) or folder.parent / new_class
        destination = _move(path, target_folder / path.relative_to(folder))
        move = FileMove(path, destination, "relabel", f"{class_name} → {new_class}")
        self.history.append(move)
        return move

    def can_undo(self) -> bool:
        return bool(self.history)

    def undo(self) -> FileMove | None:
        """Put the last moved file back where it was; returns the move undone."""
        if not self.history:
            return None
        move = self.history[-1]
        if move.source.exists():
            raise DatasetError(f"cannot undo: {move.source} exists again (a new file took its place)")
        _move(move.destination, move.source)
        self.history.pop()
        excluded_dir = move.destination.parent
        while excluded_dir.name != EXCLUDED_FOLDER and EXCLUDED_FOLDER in excluded_dir.parts:
            excluded_dir = excluded_dir.parent
        if excluded_dir.name == EXCLUDED_FOLDER:
            _remove_empty_tree(excluded_dir)
        return move


def _remove_empty_tree(folder: Path) -> None:
    """Remove `folder` if it holds only empty folders (leave no stray `.excluded/` behind after an undo)."""
    if not any(files for _root, _dirs, files in os.walk(folder)):
        shutil.rmtree(folder, ignore_errors=True)
