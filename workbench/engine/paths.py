"""Where the workbench keeps its files.

`WORKBENCH_HOME`, when set, relocates everything (data, cache, config) under one folder, so tests
and portable installs never touch the user's real folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import appdirs

APP_NAME = "cnn-workbench"


def _home_override() -> Path | None:
    home = os.environ.get("WORKBENCH_HOME")
    return Path(home).expanduser() if home else None


def data_dir() -> Path:
    """Runs and the registry live here."""
    home = _home_override()
    path = home / "data" if home else Path(appdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Decoded-image cache and thumbnails: safe to delete at any time."""
    home = _home_override()
    path = home / "cache" if home else Path(appdirs.user_cache_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """Settings of the desktop app."""
    home = _home_override()
    path = home / "config" if home else Path(appdirs.user_config_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path
