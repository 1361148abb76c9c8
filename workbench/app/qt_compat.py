"""Small shims over Qt API differences between the PySide6 versions we accept (>= 6.6)."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QSortFilterProxyModel

PROBE_CALLS = 1000


def refilter(proxy: QSortFilterProxyModel, change: Callable[[], None]) -> None:
    """Apply `change` (new filter criteria) and re-run the row filter.

    Qt 6.10 added begin/endFilterChange and deprecated invalidateRowsFilter; older versions only have the latter.
    """
    if hasattr(proxy, "beginFilterChange"):
        proxy.beginFilterChange()
        change()
        proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)
    else:  # pragma: no cover - PySide6 < 6.10
        change()
        proxy.invalidateRowsFilter()


_none_leaks: bool | None = None


def _probe_none_leak() -> bool:
    """Does None lose a reference each time a Python `data()` returns it to C++? (Seen with PySide6 6.12 on
    Python 3.11, where None is not yet immortal: enough calls and the interpreter aborts "deallocating None".)"""

    class Probe(QAbstractListModel):
        def rowCount(self, parent: Any = None) -> int:
            return 1

        def data(self, index: Any, role: int = 0) -> None:
            return None

    probe = Probe()  # must outlive its index
    index = probe.index(0, 0)
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        index.data()  # through C++ QModelIndex::data, as a view asks
    leaks = before - sys.getrefcount(None) >= PROBE_CALLS * 9 // 10
    if leaks:  # pay back what the probe itself cost
        for _ in range(before - sys.getrefcount(None)):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return leaks


def no_data() -> None:
    """What a `data()` override returns for "no value for this role": None, with the reference the buggy
    binding will over-release paid back first where the probe found the leak."""
    global _none_leaks
    if _none_leaks is None:
        _none_leaks = _probe_none_leak()
    if _none_leaks:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(None))
    return None
