"""Every column of a table on screen at once: each as wide as its contents, and when that is wider than the
table, the elastic ones (their text elided, whole in the tooltip) give up the difference."""

from __future__ import annotations

from PySide6.QtWidgets import QTableWidget

ELASTIC_MIN = 48  # an elastic column never gets narrower than this ("…" and a letter or two)


def fit_columns(table: QTableWidget, elastic: dict[int, int]) -> None:
    """`elastic`: column → the width it gives up no more than, until the other columns still would not fit;
    then the elastic columns shrink further, to ELASTIC_MIN."""
    table.resizeColumnsToContents()
    widths = [table.columnWidth(column) for column in range(table.columnCount())]
    excess = sum(widths) - table.viewport().width()
    for floors in (elastic, dict.fromkeys(elastic, ELASTIC_MIN)):
        if excess <= 0:
            break
        cuts = shares(excess, {column: max(0, widths[column] - floor) for column, floor in floors.items()})
        for column, cut in cuts.items():
            widths[column] -= cut
            table.setColumnWidth(column, widths[column])
        excess -= sum(cuts.values())


def shares(total: int, room: dict[int, int]) -> dict[int, int]:
    """Whole pixels to take from each column, in proportion to its room, summing exactly to
    min(total, all the room): rounding each share alone could leave the last column a pixel past the edge."""
    available = sum(room.values())
    wanted = min(total, available)
    if wanted <= 0:
        return {}
    cuts = {column: wanted * give // available for column, give in room.items()}
    for column in sorted(room, key=lambda c: room[c] - cuts[c], reverse=True):  # the remainder: a pixel each
        if sum(cuts.values()) == wanted:
            break
        if cuts[column] < room[column]:
            cuts[column] += 1
    return cuts
