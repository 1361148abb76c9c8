"""List the image files under dataset folders safely: hidden entries skipped, links followed once (loops
cut), and anything unusable (zero bytes, broken links, pipes, unreadable folders) reported, never raised.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable

from workbench.engine.data.index import Problem, ScanCancelled
from workbench.engine.errors import DatasetError
from workbench.engine.names import display_name

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_REPORT_EVERY = 512  # files between progress reports and stop checks: cheap, yet responsive

# macOS zip archives carry resource forks in this folder; they are never part of a dataset.
IGNORED_FOLDERS = frozenset({"__MACOSX"})


class FolderWalker:
    """Lists image files under folders with `os.scandir`, following folder links once (loops are cut).

    It also keeps what the scan learns on the way: problems, warnings, file sizes and counts for messages.
    """

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
                return "skip" if entry.name in IGNORED_FOLDERS else "dir"
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


def check_folder(root: str) -> None:
    """Raise `DatasetError` saying why `root` cannot be scanned at all (missing, a file, unreadable)."""
    shown = display_name(root)
    if not os.path.lexists(root):
        raise DatasetError(f"{shown}: folder not found")
    if not os.path.exists(root):
        raise DatasetError(f"{shown}: broken link (its target does not exist)")
    if not os.path.isdir(root):
        raise DatasetError(f"{shown}: is a file, not a folder of images")
    if not os.access(root, os.R_OK | os.X_OK):
        raise DatasetError(f"{shown}: permission denied")


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


def is_hidden(path: str) -> bool:
    """`_hidden` for a path rather than a listed entry: the scan never looks inside (or at) such a file."""
    if os.path.basename(path).startswith("."):
        return True
    if sys.platform == "win32":
        try:
            return bool(os.stat(path, follow_symlinks=False).st_file_attributes & stat.FILE_ATTRIBUTE_HIDDEN)
        except OSError:
            return False
    return False
