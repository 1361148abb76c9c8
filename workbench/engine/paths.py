"""Where the workbench keeps its files.

`WORKBENCH_HOME`, when set, relocates everything (data, cache, config) under one folder, so tests
and portable installs never touch the user's real folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import appdirs

from workbench.engine.errors import WorkbenchError

APP_NAME = "cnn-workbench"


def _ensure(path: Path, what: str) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkbenchError(
            f"cannot create the {what} folder {path}: {exc.strerror or exc}; set WORKBENCH_HOME to a writable folder"
        ) from None
    return path


def _home_override() -> Path | None:
    home = os.environ.get("WORKBENCH_HOME")
    return Path(home).expanduser() if home else None


def data_dir_path() -> Path:
    """Where `data_dir()` is, without creating it (for error reports that must not fail themselves)."""
    home = _home_override()
    return home / "data" if home else Path(appdirs.user_data_dir(APP_NAME))


def data_dir() -> Path:
    """Runs and the registry live here."""
    return _ensure(data_dir_path(), "data")


def cache_dir() -> Path:
    """Decoded-image cache and thumbnails: safe to delete at any time."""
    home = _home_override()
    path = home / "cache" if home else Path(appdirs.user_cache_dir(APP_NAME))
    return _ensure(path, "cache")


def config_dir() -> Path:
    """Settings of the desktop app."""
    home = _home_override()
    path = home / "config" if home else Path(appdirs.user_config_dir(APP_NAME))
    return _ensure(path, "config")


def runs_dir() -> Path:
    path = data_dir() / "runs"
    return _ensure(path, "runs")
