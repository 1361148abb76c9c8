"""Where the files under `resources/` (sample dataset, icons) are, in a source checkout and in a bundle.

A source checkout has `resources/` beside the `workbench` package; the PyInstaller bundle puts it in
`sys._MEIPASS` (the bundle's `_internal/` folder). Qt-free, so the engine and the CLI may use it too.
"""

from __future__ import annotations

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
