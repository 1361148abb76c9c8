"""A guard against a PySide6 6.12 bug that aborts the app on Python 3.11: "deallocating None".

PySide6/shiboken 6.12.0 returns None from every Qt method that returns nothing (update(), setValue(),
processEvents()...) without taking a reference to it. On Python 3.12+ None is immortal and nothing happens;
on 3.11 each such call takes one reference away, and a busy window (a few hundred calls a second while
training) reaches zero within minutes: the interpreter aborts. 6.11.3 does not have the bug.

None must never be freed anyway, so the guard simply adds references back whenever the count runs low.
It costs one integer comparison a second and does nothing on Pythons where None is immortal.
"""

from __future__ import annotations

import ctypes
import sys

FLOOR = 1 << 20  # top up below ~1M references: hours of the worst leak rate measured (~1,000 a second)


def needed() -> bool:
    return sys.version_info < (3, 12)


def top_up() -> bool:
    """Add FLOOR references to None if it has fewer; True when it did. Must run holding the GIL (any Python
    code does), so no other thread changes the count in between."""
    floor = FLOOR
    if not needed() or sys.getrefcount(None) >= floor:
        return False
    if hasattr(sys, "gettotalrefcount"):  # a debug build: object layout differs, go through the C API
        for _ in range(floor):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    else:  # ob_refcnt is the first field of every object in a release build of CPython < 3.12
        ctypes.c_ssize_t.from_address(id(None)).value += floor
    return True
