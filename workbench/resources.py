"""Where the files under `resources/` (sample dataset, icons) are, in a source checkout and in a bundle.

A source checkout has `resources/` beside the `workbench` package; the PyInstaller bundle puts it in
`sys._MEIPASS` (the bundle's `_internal/` folder). Qt-free, so the engine and the CLI may use it too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_ID = "io.github.cnnworkbench.CNNWorkbench"  # reverse-DNS id: .desktop file, metainfo and icon name


def resources_dir() -> Path:
    """The `resources/` folder: inside the unpacked bundle when frozen, else beside the package."""
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root is not None:
        return Path(bundle_root) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def resource_path(*parts: str) -> Path:
    """A path under `resources/`, e.g. `resource_path("sample-data", "fashion-mnist-mini")`."""
    return resources_dir().joinpath(*parts)


def app_icon_path(size: int = 256) -> Path:
    """The app icon's PNG at one of the hicolor sizes (16 … 512)."""
    return resource_path("icons", "hicolor", f"{size}x{size}", "apps", f"{APP_ID}.png")


def installation_dirs() -> list[Path]:
    """Folders that belong to the installed app (its package, its resources, the unpacked bundle): files
    there are the app's own, never the user's to move."""
    dirs = [Path(__file__).resolve().parent, resources_dir().resolve()]
    bundle_root = getattr(sys, "_MEIPASS", None)
    if bundle_root is not None:
        dirs.append(Path(bundle_root).resolve())
    return dirs


def is_installed_path(path: str | Path) -> bool:
    """Whether `path` lies inside the installation (see `installation_dirs`)."""
    resolved = Path(path).resolve()
    return any(resolved == root or root in resolved.parents for root in installation_dirs())


def read_only_reason(folders: list[str] | list[Path]) -> str:
    """Why the files of a dataset made of `folders` must not be moved (curation: exclude, move to another
    class), or "" when they may: a folder inside the installation (the bundled sample) or one this user
    cannot write to."""
    for folder in folders:
        if is_installed_path(folder):
            return (
                f"{Path(folder).name} is part of the CNN Workbench installation (the bundled sample), so its "
                "files are not moved. To curate it, copy the folder somewhere of your own and open the copy."
            )
    for folder in folders:
        if not os.access(folder, os.W_OK):
            return (
                f"You cannot write to {folder}, so its images cannot be excluded or moved to another class. "
                "Copy the dataset to a folder of your own to curate it."
            )
    return ""
