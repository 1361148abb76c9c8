"""Atomic file writes: a temp file in the same folder, flushed, then `os.replace`d over the target.

A crash or a full disk mid-write leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target`, on error it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_atomic(target: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        write(f)


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    write_atomic(target, lambda f: f.write(data))


def write_json_atomic(target: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())
