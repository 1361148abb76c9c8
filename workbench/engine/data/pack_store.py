"""The decoded-image disk cache: one *pack* of decoded rows per source folder, rewritten whole and atomically.

Layout, under ``paths.cache_dir()/decoded/v<version>-<S>px-<C>ch/``: ``<folder-hash>.json`` (file name →
size, mtime, row, or the reason it could not be decoded) beside the ``<folder-hash>-<token>.npy`` array it
points to. Class folders are the natural unit, so editing one image re-decodes one image. Failures are
remembered too, so a bad file is reported again without being read again. The cache is disposable: damage
means a re-decode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.engine.atomic import atomic_path, write_json_atomic
from workbench.engine.data.index import Sample

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    size: int
    mtime_ns: int
    row: int  # -1: the file could not be decoded, see `reason`
    reason: str = ""


@dataclass
class Pack:
    """One source folder's cached files (name → entry) and the decoded rows they point into."""

    folder: str
    entries: dict[str, _Entry]
    data: np.ndarray | None  # (rows, C, S, S), memory-mapped read-only

    def copy_rows(self, hits: list[tuple[int, int]], images: np.ndarray, chunk: int = 1024) -> None:
        if not hits or self.data is None:
            return
        for start in range(0, len(hits), chunk):
            part = hits[start : start + chunk]
            images[[i for i, _ in part]] = self.data[[row for _, row in part]]


_DATA_NAME = re.compile(r"[0-9a-f]{24}-[0-9a-f]{12}\.npy")  # see PackStore.write: <key>-<token>.npy


class PackStore:
    """The packs of one cache folder, i.e. of one decoding (version, size, channels)."""

    def __init__(self, folder: Path, channels: int, size: int):
        self.folder = folder
        self.row_shape = (channels, size, size)

    def _key(self, source_folder: str) -> str:
        return hashlib.sha1(os.fsencode(source_folder)).hexdigest()[:24]

    def read(self, source_folder: str) -> Pack:
        """The folder's pack, or an empty one when missing, stale or damaged (the cache is disposable)."""
        index_path = self.folder / f"{self._key(source_folder)}.json"
        empty = Pack(source_folder, {}, None)
        try:
            meta = json.loads(index_path.read_text())
            if meta.get("folder") != source_folder or not _DATA_NAME.fullmatch(str(meta.get("data"))):
                return empty  # another folder's pack, or a name pointing outside the cache folder
            data = np.load(self.folder / meta["data"], mmap_mode="r")  # allow_pickle=False: data only
            if data.dtype != np.uint8 or data.shape[1:] != self.row_shape:
                return empty
            entries = {
                name: _Entry(int(size), int(mtime_ns), int(row), reason)
                for name, (size, mtime_ns, row, reason) in zip(meta["names"], meta["entries"], strict=True)
            }
            if any(e.row >= len(data) for e in entries.values()):
                return empty
            return Pack(source_folder, entries, data)
        except FileNotFoundError:
            return empty
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring damaged decoded-image cache %s: %s", index_path, exc)
            return empty

    def write(
        self,
        pack: Pack,
        fresh: list[int],
        samples: Sequence[Sample],
        stats: dict[int, tuple[int, int]],
        images: np.ndarray,
        failed: dict[int, str],
    ) -> None:
        """Rewrite the folder's pack: still-valid old entries plus the freshly decoded (or failed) files.

        A failure to write only costs a re-decode next time, so it is logged, never raised.
        """
        fresh_names = {os.path.basename(samples[i].path): i for i in fresh}
        kept_old = {
            name: entry
            for name, entry in pack.entries.items()
            if name not in fresh_names and _unchanged(os.path.join(pack.folder, name), entry)
        }
        names = list(kept_old) + list(fresh_names)
        entries: list[list] = []
        sources: list[tuple[str, int]] = []  # ("old", pack row) or ("new", sample index) per data row
        for entry in kept_old.values():
            row = -1
            if entry.row >= 0:
                row = len(sources)
                sources.append(("old", entry.row))
            entries.append([entry.size, entry.mtime_ns, row, entry.reason])
        for i in fresh_names.values():
            size, mtime_ns = stats[i]
            if i in failed:
                entries.append([size, mtime_ns, -1, failed[i]])
            else:
                entries.append([size, mtime_ns, len(sources), ""])
                sources.append(("new", i))
        key = self._key(pack.folder)
        data_name = f"{key}-{uuid.uuid4().hex[:12]}.npy"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.folder / data_name) as tmp:
                out = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=np.uint8, shape=(len(sources), *self.row_shape)
                )
                for row, (origin, at) in enumerate(sources):
                    out[row] = pack.data[at] if origin == "old" else images[at]  # type: ignore[index]
                out.flush()
                del out
            write_json_atomic(
                self.folder / f"{key}.json",
                {"folder": pack.folder, "data": data_name, "names": names, "entries": entries},
            )
        except OSError as exc:
            log.warning("could not write the decoded-image cache in %s: %s", self.folder, exc)
            with contextlib.suppress(OSError):
                (self.folder / data_name).unlink()
            return
        for old in self.folder.glob(f"{key}-*.npy"):
            if old.name != data_name:
                with contextlib.suppress(OSError):  # still mapped by a reader on Windows: next time
                    old.unlink()


def _unchanged(path: str, entry: _Entry) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)
