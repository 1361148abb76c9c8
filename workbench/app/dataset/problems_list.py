"""The dataset browser's problems list: files that cannot be used, with the reason, and their count in the title."""

from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget


class ProblemsList(QGroupBox):
    """A "Problems (N)" box around a two-column list (`tree`): file, problem."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Problems (0)", parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["File", "Problem"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree)

    def show_problems(self, problems: list[tuple[str, str]]) -> None:
        """Replace the list with the scan's problems."""
        self.tree.clear()
        for path, reason in problems:
            self._add_row(path, reason)
        self.tree.resizeColumnToContents(1)
        self._update_title()

    def add_problem(self, path: str, reason: str) -> None:
        """One more problem, met after the scan (a thumbnail that cannot be decoded)."""
        self._add_row(path, reason)
        self._update_title()

    def problems_shown(self) -> list[tuple[str, str]]:
        items = (self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount()))
        return [(item.text(0), item.text(1)) for item in items]

    def _add_row(self, path: str, reason: str) -> QTreeWidgetItem:
        row = QTreeWidgetItem([path, reason])
        row.setToolTip(0, path)  # both columns are cut off in a narrow box: hovering shows them whole
        row.setToolTip(1, reason)
        self.tree.addTopLevelItem(row)
        return row

    def _update_title(self) -> None:
        self.setTitle(f"Problems ({self.tree.topLevelItemCount()})")
