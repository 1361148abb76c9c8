"""Where a decoded split lives: in RAM while it fits `memory_budget()`, else in an unlinked memory-mapped
file. Its disk space is reserved up front, so a full disk is a clear `DatasetError` rather than a crash
(SIGBUS) half-way; the page cache then keeps what fits in RAM.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from pathlib import Path

import numpy as np

from workbench.engine.errors import DatasetError, Mention


def memory_budget() -> int:
    """Bytes a decoded split may take in RAM: half of what is available now (the model needs the rest)."""
    available = _available_memory()
    return available // 2 if available is not None else 1 << 62


def array_nbytes(shape: tuple[int, ...]) -> int:
    """Size of a uint8 array of `shape`."""
    return int(np.prod(shape, dtype=np.int64))


def allocate_images(shape: tuple[int, ...], disk_folder: Path | None) -> np.ndarray:
    """An uninitialised uint8 array: in RAM, or memory-mapped under `disk_folder` when one is given."""
    if disk_folder is None or array_nbytes(shape) == 0:
        return np.empty(shape, dtype=np.uint8)
    folder = disk_folder / "memmap"
    path = folder / f"{uuid.uuid4().hex}.u8"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.u8"):  # left by a Windows process that ended; in-use ones refuse to go
            with contextlib.suppress(OSError):
                stale.unlink()
        _reserve(path, array_nbytes(shape))
        array = np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        need = array_nbytes(shape) / 1e6
        raise DatasetError(
            f"the decoded images ({need:,.0f} MB) fit neither in memory nor in {folder} "
            f"({exc.strerror or exc}); free some disk space there or train at a smaller ",
            Mention("img_size"),
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
