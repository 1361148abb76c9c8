"""Decode once: a split's images as one uint8 tensor at the training size, cached on disk between runs.

The first load of a split decodes every image (in a thread pool) straight into one preallocated
(N, C, S, S) array; later loads — in this process or a new one — copy the pixels from the disk cache and
decode only files that are new or changed. Epochs never decode: the trainer indexes the tensor.

Disk cache layout, under ``paths.cache_dir()/decoded/v<version>-<S>px-<C>ch/``: one *pack* per source
folder, ``<folder-hash>.json`` (file name → size, mtime, row, or the reason it could not be decoded) beside
the ``<folder-hash>-<token>.npy`` array it points to. A pack is rewritten whole, atomically, when files of
its folder were (re)decoded; class folders are the natural unit, so editing one image re-decodes one image.
Failures are remembered too, so a bad file is reported again without being read again.

Threads, not processes: Pillow releases the GIL while decoding and resizing, and on this project's 2-core
test machine a thread pool matched a warmed-up process pool (28×28 PNG: ~10,000 vs ~13,000 images/s;
500×375 JPEG → 224: ~380 vs ~360 images/s) without the process pool's ~3.5 s start-up (each worker
imports torch), pickling, or the pitfalls of forking a Qt app.

When a split would not fit comfortably in RAM (`memory_budget()`), the tensor is backed by an unlinked
memory-mapped file in the cache folder instead; the page cache then keeps what fits. Its disk space is
reserved up front, so a full disk is a clear `DatasetError` rather than a crash (SIGBUS) half-way.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from workbench.engine import paths
from workbench.engine.atomic import atomic_path, write_json_atomic
from workbench.engine.data.decode import decode_array, image_header
from workbench.engine.data.scan import Problem, Sample
from workbench.engine.errors import BadImageError, DatasetError, WorkbenchError

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump whenever decoding changes pixels (resize filter, mode rules): old packs are ignored
_CHUNK = 64  # images per pool task: amortizes scheduling, keeps stop/progress responsive
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


class DecodeCancelled(WorkbenchError):
    """The caller's `should_stop()` returned True while images were being decoded."""


@dataclass
class DecodedSplit:
    images: torch.Tensor  # uint8 (N, C, S, S); files that failed to decode are left out
    labels: torch.Tensor  # int64 (N,)
    paths: list[str]
    problems: list[Problem] = field(default_factory=list)
    on_disk: bool = False  # images are backed by a memory-mapped file, not RAM


def load_decoded(
    samples: Sequence[Sample],
    size: int,
    channels: int,
    *,
    cache_root: Path | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> DecodedSplit:
    """Decode `samples` at `size`×`size` with `channels` (1 or 3), reusing and refreshing the disk cache.

    `progress(done, total)` is called as images arrive; `should_stop()` is checked between chunks and
    raises `DecodeCancelled` (what was decoded so far is still cached). Bad files never raise: they are
    dropped and listed in `problems`.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if size < 1:
        raise ValueError(f"size must be positive, not {size}")
    root = Path(cache_root) if cache_root is not None else paths.cache_dir() / "decoded"
    total = len(samples)
    shape = (total, channels, size, size)
    on_disk = _nbytes(shape) > memory_budget()
    images = _allocate(shape, root if on_disk else None)
    failed: dict[int, str] = {}
    store = _PackStore(root / f"v{CACHE_VERSION}-{size}px-{channels}ch", channels, size)

    # 1. Copy every unchanged, already-decoded file out of its folder's pack.
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(os.path.dirname(sample.path), []).append(i)
    stats: dict[int, tuple[int, int]] = {}
    todo: list[int] = []
    packs: dict[str, _Pack] = {}
    for folder, indices in groups.items():
        pack = packs[folder] = store.read(folder)
        hits: list[tuple[int, int]] = []
        for i in indices:
            path = samples[i].path
            try:
                st = os.stat(path)
            except OSError as exc:
                failed[i] = (
                    "file not found"
                    if isinstance(exc, FileNotFoundError)
                    else f"cannot read: {exc.strerror or exc}"
                )
                continue
            stats[i] = (st.st_size, st.st_mtime_ns)
            entry = pack.entries.get(os.path.basename(path))
            if entry is None or (entry.size, entry.mtime_ns) != stats[i]:
                todo.append(i)
            elif entry.row < 0:
                failed[i] = entry.reason
            else:
                hits.append((i, entry.row))
        pack.copy_rows(hits, images)
    done = total - len(todo)
    if progress is not None:
        progress(done, total)

    # 2. Decode the rest in parallel, each worker writing straight into its rows of `images`.
    decoded: list[int] = []
    try:
        for chunk_ok, chunk_failed in _decode_parallel(
            samples, todo, images, size, channels, workers, should_stop
        ):
            decoded.extend(chunk_ok)
            failed.update(chunk_failed)
            done += len(chunk_ok) + len(chunk_failed)
            if progress is not None:
                progress(done, total)
    finally:
        # 3. Remember what was learnt, even when cancelled half-way, so the next load resumes there.
        changed = set(decoded) | {i for i in todo if i in failed}
        for folder, indices in groups.items():
            fresh = [i for i in indices if i in changed]
            if fresh:
                store.write(packs[folder], fresh, samples, stats, images, failed)

    # 4. Close the gaps left by bad files, in place (no second copy of the split).
    keep = [i for i in range(total) if i not in failed]
    tensor = torch.from_numpy(images)
    if len(keep) < total:
        _compact(tensor, torch.tensor(keep, dtype=torch.long))
        tensor = tensor[: len(keep)]
    problems = [Problem(samples[i].path, reason) for i, reason in sorted(failed.items())]
    return DecodedSplit(
        images=tensor,
        labels=torch.tensor([samples[i].label for i in keep], dtype=torch.int64),
        paths=[samples[i].path for i in keep],
        problems=problems,
        on_disk=on_disk,
    )


def guess_image_geometry(samples: Sequence[Sample], k: int = 32) -> tuple[int, int]:
    """(typical shorter side, channels) from the headers of up to `k` evenly spread samples.

    Channels is 1 when every header read is greyscale, else 3. With no readable header: (224, 3).
    """
    if not samples:
        return 224, 3
    picks = sorted({round(x) for x in np.linspace(0, len(samples) - 1, min(k, len(samples)))})
    sides: list[int] = []
    grey = True
    for i in picks:
        try:
            width, height, mode = image_header(samples[i].path)
        except BadImageError:
            continue
        sides.append(min(width, height))
        grey = grey and mode in _GREY_MODES
    if not sides:
        return 224, 3
    return int(np.median(sides)), 1 if grey else 3


def memory_budget() -> int:
    """Bytes a decoded split may take in RAM: half of what is available now (the model needs the rest)."""
    available = _available_memory()
    return available // 2 if available is not None else 1 << 62


# ---------------------------------------------------------------------------------------------- decoding


def _decode_parallel(
    samples: Sequence[Sample],
    todo: list[int],
    images: np.ndarray,
    size: int,
    channels: int,
    workers: int | None,
    should_stop: Callable[[], bool] | None,
):
    """Yield (decoded indices, {index: reason}) per finished chunk; raise DecodeCancelled on request."""
    if not todo:
        return

    def decode_chunk(indices: list[int]) -> tuple[list[int], dict[int, str]]:
        ok: list[int] = []
        bad: dict[int, str] = {}
        for i in indices:
            try:
                images[i] = decode_array(samples[i].path, size, channels)
                ok.append(i)
            except BadImageError as exc:
                bad[i] = exc.reason
        return ok, bad

    chunks = [todo[start : start + _CHUNK] for start in range(0, len(todo), _CHUNK)]
    n_workers = max(1, min(workers or min(8, os.cpu_count() or 1), len(chunks)))
    with ThreadPoolExecutor(n_workers, thread_name_prefix="workbench-decode") as pool:
        # A bounded window of tasks in flight: stopping then only waits for those.
        pending: set[Future] = set()
        queue = iter(chunks)
        try:
            while True:
                while len(pending) < 2 * n_workers and (chunk := next(queue, None)) is not None:
                    pending.add(pool.submit(decode_chunk, chunk))
                if not pending:
                    return
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
                if should_stop is not None and should_stop():
                    for future in pending:
                        yield future.result()  # the rows are written: keep them for the cache
                    raise DecodeCancelled("image decoding cancelled")
        finally:
            for future in pending:
                future.cancel()


def _compact(images: torch.Tensor, keep: torch.Tensor, chunk: int = 1024) -> None:
    """Move rows `keep` (ascending) to the front. Each chunk is gathered before it is written, and its
    sources lie at or after its destinations, so no row is overwritten before it is read."""
    for start in range(0, len(keep), chunk):
        rows = keep[start : start + chunk]
        images[start : start + len(rows)] = images[rows]


# ---------------------------------------------------------------------------------------------- memory


def _nbytes(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _allocate(shape: tuple[int, ...], disk_folder: Path | None) -> np.ndarray:
    if disk_folder is None or _nbytes(shape) == 0:
        return np.empty(shape, dtype=np.uint8)
    folder = disk_folder / "memmap"
    path = folder / f"{uuid.uuid4().hex}.u8"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.u8"):  # left by a Windows process that ended; in-use ones refuse to go
            with contextlib.suppress(OSError):
                stale.unlink()
        _reserve(path, _nbytes(shape))
        array = np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        need = _nbytes(shape) / 1e6
        raise DatasetError(
            f"the decoded images ({need:,.0f} MB) fit neither in memory nor in {folder} "
            f"({exc.strerror or exc}); free some disk space there or train at a smaller --img-size"
        ) from None
    # The mapping outlives the name on POSIX, so nothing is left behind when the process ends.
    # (Windows refuses while mapped; the clean-up above removes such files on a later call.)
    with contextlib.suppress(OSError):
        path.unlink()
    return array


def _reserve(path: Path, nbytes: int) -> None:
    """Create `path` with `nbytes` of disk space allocated now: writing through a memory map into a sparse
    file on a full disk kills the process with SIGBUS, an allocation failure here is a plain OSError."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, max(nbytes, 1))
                return
            except OSError as exc:  # some filesystems cannot preallocate; any other error is real
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
        os.ftruncate(fd, max(nbytes, 1))  # Windows and macOS: NTFS/APFS allocate on extend
    finally:
        os.close(fd)


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if os.name == "nt":
        return _windows_available_memory()
    try:  # macOS and other Unixes: total physical memory, halved as a stand-in for "available"
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return None


def _windows_available_memory() -> int | None:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.dwLength = ctypes.sizeof(MemoryStatus)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.ullAvailPhys)


# ---------------------------------------------------------------------------------------------- packs


@dataclass
class _Entry:
    size: int
    mtime_ns: int
    row: int  # -1: the file could not be decoded, see `reason`
    reason: str = ""


@dataclass
class _Pack:
    folder: str
    entries: dict[str, _Entry]
    data: np.ndarray | None  # (rows, C, S, S), memory-mapped read-only

    def copy_rows(self, hits: list[tuple[int, int]], images: np.ndarray, chunk: int = 1024) -> None:
        if not hits or self.data is None:
            return
        for start in range(0, len(hits), chunk):
            part = hits[start : start + chunk]
            images[[i for i, _ in part]] = self.data[[row for _, row in part]]


_DATA_NAME = re.compile(r"[0-9a-f]{24}-[0-9a-f]{12}\.npy")  # see _PackStore.write: <key>-<token>.npy


class _PackStore:
    def __init__(self, folder: Path, channels: int, size: int):
        self.folder = folder
        self.row_shape = (channels, size, size)

    def _key(self, source_folder: str) -> str:
        return hashlib.sha1(os.fsencode(source_folder)).hexdigest()[:24]

    def read(self, source_folder: str) -> _Pack:
        """The folder's pack, or an empty one when missing, stale or damaged (the cache is disposable)."""
        index_path = self.folder / f"{self._key(source_folder)}.json"
        empty = _Pack(source_folder, {}, None)
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
            return _Pack(source_folder, entries, data)
        except FileNotFoundError:
            return empty
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring damaged decoded-image cache %s: %s", index_path, exc)
            return empty

    def write(
        self,
        pack: _Pack,
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
