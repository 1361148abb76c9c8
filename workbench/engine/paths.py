"""Where the workbench keeps its files.

`WORKBENCH_HOME`, when set, relocates everything (data, cache, config) under one folder, so tests
and portable installs never touch the user's real folders.

A home may be read-only (a backup disk, a shared install): reading commands must still work there, so nothing
here creates a folder just to look into it — `data_dir_path()` names the place, the run registry decides
whether it needs to write, and the cache (safe to lose) moves to a private temp folder when it cannot be made.
"""

from __future__ import annotations

import atexit
import errno
import os
import shutil
import tempfile
from pathlib import Path

import appdirs

from workbench.engine.errors import WorkbenchError

APP_NAME = "cnn-workbench"

# What the OS answers when a folder exists but may not be written (permissions, a read-only mount).
READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

_fallback_cache: Path | None = None


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


def is_writable(folder: Path) -> bool:
    """Whether this process may create files in `folder`, found by trying (permission bits, ACLs, read-only
    mounts and dropped capabilities all answer the same way). Other failures (a full disk) count as writable:
    the real write will report them in its own words."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return exc.errno not in READ_ONLY_ERRNOS and not isinstance(exc, FileNotFoundError)
    return True


def data_dir_path() -> Path:
    """Where `data_dir()` is, without creating it (for error reports that must not fail themselves)."""
    home = _home_override()
    return home / "data" if home else Path(appdirs.user_data_dir(APP_NAME))


def data_dir() -> Path:
    """Runs and the registry live here (created: for writers; readers use `data_dir_path()`)."""
    return _ensure(data_dir_path(), "data")


def cache_dir_path() -> Path:
    home = _home_override()
    return home / "cache" if home else Path(appdirs.user_cache_dir(APP_NAME))


def cache_dir() -> Path:
    """Decoded-image cache and thumbnails: safe to delete at any time.

    In a read-only home the cache cannot be created, which must not stop `eval` or `predict`: this process then
    caches in a private temp folder (mode 700, removed at exit) instead."""
    path = cache_dir_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno not in READ_ONLY_ERRNOS:
            return _ensure(path, "cache")  # the clear error
        return _private_cache()
    return path


def _private_cache() -> Path:
    global _fallback_cache
    if _fallback_cache is None or not _fallback_cache.is_dir():
        _fallback_cache = Path(tempfile.mkdtemp(prefix=f"{APP_NAME}-cache-"))
        atexit.register(shutil.rmtree, _fallback_cache, ignore_errors=True)
    return _fallback_cache


def config_dir() -> Path:
    """Settings of the desktop app."""
    home = _home_override()
    path = home / "config" if home else Path(appdirs.user_config_dir(APP_NAME))
    return _ensure(path, "config")


def runs_dir() -> Path:
    path = data_dir() / "runs"
    return _ensure(path, "runs")
