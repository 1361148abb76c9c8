"""Curating a dataset on disk: exclude an image from training, or move it to another class; undo either.

The model behind the app's curation buttons (the dataset browser's, and the evaluation view's top losses →
relabel), kept here, without Qt, so any client can curate with the same rules. Excluding moves the file into a
hidden `.excluded/` folder inside its class folder; the engine ignores hidden folders, so the image leaves
training without being deleted. Relabeling moves the file to where the engine's scan reads it as the new class
(`destination_for`: the same split folder, the same sub-folders below the class folder) and checks that it
does after the move. Each move is recorded so the session can undo it in reverse order.

Which folder is a file's class folder is the scan's rule (`class_folder_of`), applied to the dataset's roots.
A curator made without them (a view used on its own) works the roots out from the file and its class name;
see `_guess_place`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.engine.data.layouts import ClassPlace, class_folder_of, destination_for
from workbench.engine.errors import DatasetError
from workbench.engine.names import class_key, display_name

EXCLUDED_FOLDER = ".excluded"


@dataclass(frozen=True)
class FileMove:
    source: Path
    destination: Path
    action: str  # "exclude" | "relabel"
    detail: str  # class names, for messages (display form)
    old_class: str = ""  # on-disk class names: what the views key their items by
    new_class: str = ""  # the class the file is in after the move ("" for an exclusion)


def _free_name(target: Path) -> Path:
    """`target`, or `name-1.ext`, `name-2.ext`… if taken: curation never overwrites an image."""
    candidate, n = target, 0
    while candidate.exists():
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return candidate


def _move(source: Path, destination: Path) -> Path:
    if not source.is_file():
        raise DatasetError(
            f"{display_name(str(source))}: the file is gone (moved or deleted outside the app)"
        )
    destination = _free_name(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(os.fspath(source), os.fspath(destination))
    except OSError as exc:
        raise DatasetError(
            f"cannot move {display_name(str(source))} to {display_name(str(destination))}: {exc.strerror or exc}"
        ) from None
    return destination


class Curator:
    """Applies moves and keeps the session's undo stack.

    `roots`: the dataset's folders as scanned (one folder, or several that are one class each). The older
    `class_folders` ({class: folder}, for several dropped folders) gives the same roots.
    """

    def __init__(
        self,
        class_folders: dict[str, Path] | None = None,
        *,
        roots: Sequence[str | os.PathLike] | None = None,
    ):
        given = list(roots) if roots else list((class_folders or {}).values())
        self.roots: list[str] = [os.path.abspath(os.fspath(root)) for root in given]
        self.history: list[FileMove] = []

    def exclude(self, path: str | Path, class_name: str) -> FileMove:
        path = Path(path)
        _roots, place = self._resolve(path, class_name, None)
        destination = _move(path, Path(place.class_dir) / EXCLUDED_FOLDER / place.rest)
        move = FileMove(path, destination, "exclude", display_name(class_name), class_name, "")
        self.history.append(move)
        return move

    def relabel(self, path: str | Path, class_name: str, new_class: str) -> FileMove:
        path = Path(path)
        if class_key(new_class) == class_key(class_name):
            raise DatasetError(f"{display_name(str(path))} is already in class '{display_name(class_name)}'")
        roots, _place = self._resolve(path, class_name, new_class)
        destination = _move(path, Path(destination_for(roots, path, new_class)))
        landed = self._check_landed(roots, path, destination, new_class)
        detail = f"{display_name(class_name)} → {display_name(landed)}"
        move = FileMove(path, destination, "relabel", detail, class_name, landed)
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
            raise DatasetError(
                f"cannot undo: {display_name(str(move.source))} exists again (a new file took its place)"
            )
        _move(move.destination, move.source)
        self.history.pop()
        excluded_dir = move.destination.parent
        while excluded_dir.name != EXCLUDED_FOLDER and EXCLUDED_FOLDER in excluded_dir.parts:
            excluded_dir = excluded_dir.parent
        if excluded_dir.name == EXCLUDED_FOLDER:
            _remove_empty_tree(excluded_dir)
        return move

    # ---- the scan's rule ------------------------------------------------------------------------
    def _resolve(self, path: Path, class_name: str, new_class: str | None) -> tuple[list[str], ClassPlace]:
        """(roots, where the scan puts `path`); refuses when that is not `class_name` (a stale view)."""
        if not self.roots:
            root, place = _guess_place(path, class_name, new_class)
            return [root], place
        place = class_folder_of(self.roots, path)
        if class_key(place.class_name) != class_key(class_name):  # the model's spelling may be the other form
            raise DatasetError(
                f"{display_name(str(path))}: the dataset folder puts it in class "
                f"'{display_name(place.class_name)}', not '{display_name(class_name)}'; scan the folder again"
            )
        return self.roots, place

    def _check_landed(self, roots: list[str], source: Path, destination: Path, new_class: str) -> str:
        """Read the moved file's class back by the scan's rule (returned, as spelled on disk); if it is not
        `new_class`, put the file back and refuse."""
        try:
            landed = class_folder_of(roots, destination).class_name
        except DatasetError as exc:
            landed, reason = "", str(exc)
        else:
            reason = f"a scan would read it as class '{display_name(landed)}'"
        if class_key(landed) != class_key(new_class):
            _move(destination, source)
            raise DatasetError(
                f"not moved: at {display_name(str(destination))} {reason}, not '{display_name(new_class)}'"
            )
        return landed


def _guess_place(path: Path, class_name: str, new_class: str | None) -> tuple[str, ClassPlace]:
    """(root, place) for a file when the dataset's roots are unknown.

    Each ancestor named `class_name` implies a root (its parent, or the parent's parent for a split folder).
    The innermost one whose scan would give `path` that class is taken; when moving to `new_class`, that
    root must also already hold a folder of `new_class` — so ``ROOT/cat/2019/cat/x.png`` → dog is resolved
    by ``ROOT/dog``, not by a ``dog`` folder made inside ``cat/2019``.
    """
    absolute = Path(os.path.abspath(path))
    for folder in (p for p in absolute.parents if class_key(p.name) == class_key(class_name)):
        for root in (folder.parent, folder.parent.parent):
            found = _place_under(str(root), absolute, class_name, new_class)
            if found is not None:
                return str(root), found
    if new_class is None:
        raise DatasetError(
            f"{display_name(str(path))}: not inside a folder named '{display_name(class_name)}', so its class "
            "folder is unknown"
        )
    raise DatasetError(
        f"{display_name(str(path))}: no folder of class '{display_name(new_class)}' beside its class folder "
        f"'{display_name(class_name)}'; open the dataset in the Dataset tab to move it there"
    )


def _place_under(root: str, path: Path, class_name: str, new_class: str | None) -> ClassPlace | None:
    try:
        place = class_folder_of(root, path)
        if class_key(place.class_name) != class_key(class_name):
            return None
        if new_class is not None:
            target = class_folder_of(root, destination_for(root, path, new_class))
            if not os.path.isdir(target.class_dir):
                return None
    except DatasetError:
        return None
    return place


def _remove_empty_tree(folder: Path) -> None:
    """Remove `folder` if it holds only empty folders (leave no stray `.excluded/` behind after an undo)."""
    if not any(files for _root, _dirs, files in os.walk(folder)):
        shutil.rmtree(folder, ignore_errors=True)
