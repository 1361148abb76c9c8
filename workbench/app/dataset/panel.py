"""The dataset browser: classes and counts per split, class balance, problems, a thumbnail grid, curation.

Scanning runs as a background job (`scan.scan_job`: cancellable, with progress; a newer scan supersedes an
older one); thumbnails and the preview decode off the UI thread. Curation moves files only after the user
confirms, and every move can be undone in the session. The parts live in their own modules (class_overview,
problems_list, image_grid, image_preview, curation_actions); this panel lays them out and shows a scan's
result in each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from workbench.app.dataset.class_overview import ClassOverview
from workbench.app.dataset.curation_actions import CurationActions
from workbench.app.dataset.image_grid import ImageGrid
from workbench.app.dataset.image_preview import ImagePreview
from workbench.app.dataset.problems_list import ProblemsList
from workbench.app.dataset.scan import DatasetSummary, recount, scan_job
from workbench.app.dataset.thumbnails import ThumbItem
from workbench.app.qt.workers import BackgroundJob, Failure, report_failure
from workbench.engine.data.curation import Curator
from workbench.resources import read_only_reason

if TYPE_CHECKING:
    from workbench.app.dataset.balance_chart import ClassBalanceChart


class DatasetPanel(QWidget):
    dataset_loaded = Signal(object)  # DatasetSummary
    scan_failed = Signal(str)
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folders: list[str] = []
        self.summary: DatasetSummary | None = None
        self.scanning = False
        self._pending_folders: list[str] = []
        self._scan = BackgroundJob(self)
        self._scan.done.connect(self._on_scanned)
        self._scan.failed.connect(self._on_scan_failed)

        # header: what is loaded, how to load, scan progress, errors
        self.title = QLabel("No dataset yet")
        self.title.setStyleSheet("font-size: 16px; font-weight: 600;")
        self.title.setWordWrap(True)  # a long dataset name must not widen the window
        self.open_button = QPushButton("Open folder…")
        self.open_button.setToolTip(
            "A folder of class sub-folders, or of train/val/test sub-folders (Ctrl+O)"
        )
        self.sample_button = QPushButton("Sample dataset")
        self.sample_button.setToolTip("Open the bundled Fashion-MNIST sample (10 classes of clothing)")
        self.scan_progress = QProgressBar()
        self.scan_progress.setRange(0, 0)
        self.scan_progress.setFormat("scanning… %v files")
        self._scan.progressed.connect(self.scan_progress.setValue)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.scan_progress)
        header.addWidget(self.cancel_button)
        header.addWidget(self.open_button)
        header.addWidget(self.sample_button)

        # left: classes, balance, problems
        self.class_overview = ClassOverview()
        self.class_table = self.class_overview.class_table
        self.balance_legend = self.class_overview.balance_legend
        self.warning_label = self.class_overview.warning_label
        self.problems_box = ProblemsList()
        self.problem_list = self.problems_box.tree
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.class_overview)
        left.addWidget(self.problems_box)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 1)

        # centre: filterable, virtualized thumbnail grid (or the drop hint while empty)
        self.image_grid = ImageGrid()
        self.thumbnails = self.image_grid.thumbnails
        self.filter_model = self.image_grid.filter_model
        self.class_filter = self.image_grid.class_filter
        self.split_filter = self.image_grid.split_filter
        self.shown_label = self.image_grid.shown_label
        self.grid = self.image_grid.grid
        self.drop_hint = self.image_grid.drop_hint
        self.centre_stack = self.image_grid.centre_stack
        self.thumbnails.loader.failed.connect(self._on_thumbnail_failed)
        self.class_overview.class_chosen.connect(self.class_filter.setCurrentText)
        self.grid.selectionModel().selectionChanged.connect(self._on_image_selected)

        # right: the selected image, larger, and curation
        self.image_preview = ImagePreview(self.selected_item)
        self.preview = self.image_preview.label
        self.preview_info = self.image_preview.info
        self.curation = CurationActions(self.thumbnails, self.selected_item)
        self.exclude_button = self.curation.exclude_button
        self.move_target = self.curation.move_target
        self.move_button = self.curation.move_button
        self.undo_button = self.curation.undo_button
        self.curation.curated.connect(self._after_curation)
        self.curation.status_message.connect(self.status_message)
        QShortcut(QKeySequence.StandardKey.Undo, self, activated=self.undo)  # Ctrl+Z anywhere in the tab
        right = QGroupBox("Image")
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.image_preview, 1)
        right_layout.addWidget(self.curation)

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(self.image_grid)
        body.addWidget(right)
        body.setStretchFactor(0, 0)
        body.setStretchFactor(1, 1)
        body.setStretchFactor(2, 0)
        body.setSizes([380, 700, 320])

        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.error_label)
        layout.addWidget(body, 1)
        self._set_scanning(False)
        self.error_label.hide()
        self.curation.update_buttons()

    @property
    def balance_chart(self) -> ClassBalanceChart:
        return self.class_overview.balance_chart

    @property
    def curator(self) -> Curator:
        """The session's undo history of file moves (the evaluation view relabels through it too)."""
        return self.curation.curator

    @curator.setter
    def curator(self, curator: Curator) -> None:
        self.curation.curator = curator

    def connect_actions(self, open_folder: Callable[[], None], open_sample: Callable[[], None]) -> None:
        self.open_button.clicked.connect(open_folder)
        self.sample_button.clicked.connect(open_sample)

    # ---- scanning ------------------------------------------------------------------------------
    def load(self, folders: list[str], *, val_fraction: float = 0.1, seed: int = 0) -> None:
        """Scan `folders` in the background (superseding a scan still going); the current dataset stays until
        the new one is ready."""
        self._pending_folders = list(folders)
        self.error_label.hide()
        self._set_scanning(True)
        self.status_message.emit(f"Scanning {', '.join(folders)}…")
        self._scan.start(scan_job, list(folders), val_fraction, seed)

    def cancel_scan(self) -> None:
        if self.scanning:
            self._scan.cancel()
            self._set_scanning(False)
            self.status_message.emit("Scan cancelled.")

    def _set_scanning(self, scanning: bool) -> None:
        self.scanning = scanning
        self.scan_progress.setVisible(scanning)
        self.cancel_button.setVisible(scanning)
        if scanning:
            self.scan_progress.setValue(0)

    def _on_scanned(self, summary: DatasetSummary) -> None:
        self._set_scanning(False)
        self.show_summary(summary)
        self.dataset_loaded.emit(summary)
        read_only = self.curation.read_only
        self.status_message.emit(
            f"Loaded {summary.status_text()}" + (f" — read-only: {read_only}" if read_only else "")
        )

    def _on_scan_failed(self, failure: Failure) -> None:
        self._set_scanning(False)
        message = failure.message if failure.is_user_error else f"Scanning failed: {failure.message}"
        self.error_label.setText(f"⚠ Cannot use {', '.join(self._pending_folders)}: {message}")
        self.error_label.show()
        self.scan_failed.emit(message)
        self.status_message.emit(message)
        if not failure.is_user_error:  # a bug: the app's error dialog too, with the traceback
            report_failure(self, "Scanning failed", failure)

    # ---- showing a dataset ---------------------------------------------------------------------
    def show_summary(self, summary: DatasetSummary) -> None:
        self.summary = summary
        self.folders = list(summary.folders)
        self.curator = Curator(roots=summary.folders)  # moves follow the scan's own rule for these roots
        self.title.setText(summary.status_text())
        self.title.setToolTip("\n".join(summary.folders))
        self.image_grid.show_dataset(summary)
        self.curation.set_classes(summary.classes)
        self.curation.set_read_only(read_only_reason(summary.folders))
        self.problems_box.show_problems(summary.problems)
        self._refresh_counts(recount_items=False)  # the worker counted them
        self._apply_filter()
        self._clear_preview()

    def _on_thumbnail_failed(self, path: str, reason: str) -> None:
        """Files the scan accepted but that cannot be decoded join the problems list as they are met."""
        if self.summary is None or any(known == path for known, _ in self.summary.problems):
            return
        self.summary.problems.append((path, reason))
        self.problems_box.add_problem(path, reason)

    def problems_shown(self) -> list[tuple[str, str]]:
        return self.problems_box.problems_shown()

    def _refresh_counts(self, recount_items: bool = True) -> None:
        summary = self.summary
        if summary is None:
            return
        if recount_items:  # after curation moved or excluded images
            summary.counts = recount(summary.classes, self.thumbnails.items())
        self.class_overview.show_counts(summary)
        self.title.setText(summary.status_text())

    def class_counts(self) -> dict[str, dict[str, int]]:
        """What the class table shows: class -> {split: count}."""
        return self.class_overview.class_counts()

    def _apply_filter(self) -> None:
        self.image_grid.apply_filter()

    # ---- preview -------------------------------------------------------------------------------
    def selected_item(self) -> ThumbItem | None:
        return self.image_grid.selected_item()

    def select_row(self, row: int) -> None:
        """Select the `row`-th visible thumbnail (keyboard users and tests)."""
        self.image_grid.select_row(row)

    def _on_image_selected(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        item = self.selected_item()
        self.curation.update_buttons()
        if item is None:
            self._clear_preview()
        else:
            self.image_preview.show_item(item)

    def _clear_preview(self) -> None:
        self.image_preview.clear_item()

    def preview_text(self) -> str:
        return self.image_preview.text()

    # ---- curation ------------------------------------------------------------------------------
    def set_locked(self, locked: bool) -> None:
        """While a run reads the files, curation (which moves them) waits."""
        self.curation.set_locked(locked)

    def exclude_selected(self, *, confirmed: bool = False) -> None:
        self.curation.exclude_selected(confirmed=confirmed)

    def move_selected(self, *, confirmed: bool = False) -> None:
        self.curation.move_selected(confirmed=confirmed)

    def undo(self) -> None:
        self.curation.undo()

    def _after_curation(self, message: str) -> None:
        self._refresh_counts()
        self._apply_filter()
        self.curation.update_buttons()
        if self.selected_item() is not None:
            self._on_image_selected(QItemSelection(), QItemSelection())
        self.status_message.emit(message)

    def shutdown(self) -> None:
        """Stop background work before the window goes away."""
        self.cancel_scan()
        self.thumbnails.loader.cancel_pending()
        self.thumbnails.loader.pool.waitForDone(2000)
