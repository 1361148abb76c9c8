"""`as_ordinary_user(fn)`: run code the way a normal user's process would meet file permissions, even when the
tests run as root (CI does), where `chmod 000` or a read-only folder stops nothing.

Linux keeps capabilities per thread: `fn` runs in a fresh thread that drops CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH from its effective set (the raw `capset` syscall affects only the calling thread), so
permission bits apply to it; threads it starts inherit that. The test process itself keeps its rights.
For a non-root user the drop changes nothing: those capabilities were never there.

Other reliability tests import it: `from test_rel_privileges import as_ordinary_user`.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")

_CAPABILITY_VERSION_3 = 0x20080522
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_file_override_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)  # pid 0: the calling thread
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH)) & 0xFFFFFFFF
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def as_ordinary_user(fn: Callable[..., T], *args, **kwargs) -> T:
    """`fn(*args, **kwargs)` in a thread for which file permissions hold, whoever runs the tests."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError("as_ordinary_user relies on Linux per-thread capabilities")
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            _drop_file_override_capabilities()
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="ordinary-user")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def test_permission_bits_hold_for_the_ordinary_user_and_only_in_its_thread(tmp_path):
    locked = tmp_path / "locked.png"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)

    def attempt_in_threads() -> list[str]:
        outcomes = []
        for action in (locked.read_bytes, lambda: (readonly / "new.txt").write_text("x")):
            try:
                action()
                outcomes.append("allowed")
            except PermissionError:
                outcomes.append("denied")
        child: list[str] = []  # a thread started from the ordinary user's thread inherits its rights
        worker = threading.Thread(target=lambda: child.append(_try(locked.read_bytes)))
        worker.start()
        worker.join()
        return outcomes + child

    assert as_ordinary_user(attempt_in_threads) == ["denied", "denied", "denied"]
    if os.geteuid() == 0:  # the test process itself kept root's rights
        assert locked.read_bytes() == b"secret"


def test_errors_reach_the_caller():
    def boom():
        raise ValueError("from the ordinary user")

    with pytest.raises(ValueError, match="from the ordinary user"):
        as_ordinary_user(boom)


def _try(action: Callable[[], object]) -> str:
    try:
        action()
    except PermissionError:
        return "denied"
    return "allowed"
