"""Small shims over Qt API differences between the PySide6 versions we accept (>= 6.6)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSortFilterProxyModel


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
