"""The dataset browser: classes and counts per split, class balance, problems, a thumbnail grid, curation.

Scanning runs as a background job (`scan.scan_job`: cancellable, with progress; a newer scan supersedes an
older one); thumbnails and the preview decode off the UI thread. Curation moves files only after the user
confirms, and every move can be undone in the session. The parts live in their own modules (class_overview,
problems_list, image_grid, image_preview, curation_actions); this panel lays them out and shows a scan's
result in each.

The centre has three pages: Images (the grid), Map (every image's embedding in 2-D; a box drawn on it shows its
images in the grid) and Review (suspects answered with K / R / X). Map and Review come from one background
job (`analysis_bar.analysis_job`: embed, review, project), started by the user; their relabels and
exclusions go through the same curation, so the grid, the undo and retraining all see them.
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
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.dataset import analysis_bar
from workbench.app.dataset.analysis_bar import AnalysisBar
from workbench.app.dataset.class_overview import ClassOverview
from workbench.app.dataset.curation_actions import CurationActions
from workbench.app.dataset.image_grid import ImageGrid
from workbench.app.dataset.image_preview import ImagePreview
from workbench.app.dataset.problems_list import ProblemsList
from workbench.app.dataset.review_view import ReviewView
from workbench.app.dataset.scan import DatasetSummary, recount, scan_job
from workbench.app.dataset.thumbnails import ThumbItem
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.workers import BackgroundJob, Failure, report_failure
from workbench.engine.data.curation import Curator, FileMove
from workbench.resources import read_only_reason

if TYPE_CHECKING:
    from workbench.app.dataset.balance_chart import ClassBalanceChart
    from workbench.app.dataset.dataset_map import DatasetMapView
    from workbench.engine.review.analysis import DatasetAnalysis
    from workbench.engine.review.suspects import Suspect


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
        # A reset of the shown rows (a filter, a map selection, a new dataset) drops the selection without
        # selectionChanged: read it again, or the preview and the curation buttons keep a hidden image.
        self.filter_model.modelReset.connect(self._on_shown_rows_reset)

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

        # centre pages: Images | Map | Review (the last two from one background analysis)
        self.analysis: DatasetAnalysis | None = None
        self._analysis = BackgroundJob(self)
        self._analysis.done.connect(self._on_analysed)
        self._analysis.failed.connect(self._on_analysis_failed)
        self.map_bar, self.review_bar = AnalysisBar(), AnalysisBar()
        for bar in (self.map_bar, self.review_bar):
            bar.start_button.clicked.connect(self.start_analysis)
            bar.cancel_button.clicked.connect(self.cancel_analysis)
            self._analysis.progressed.connect(bar.show_progress)
        self._map = LazyWidget(self._build_map)  # pyqtgraph loads after the window is on screen
        self.review_view = ReviewView(self.thumbnails)
        self.review_view.action_requested.connect(self._on_review_action)
        self.review_view.status_message.connect(self.status_message)
        self.curation.moved.connect(self._follow_move)
        self.centre_tabs = QTabWidget()
        self.centre_tabs.setDocumentMode(True)
        self.centre_tabs.addTab(self.image_grid, "Images")
        self.centre_tabs.addTab(_page(self.map_bar, self._map), "Map")
        self.centre_tabs.addTab(_page(self.review_bar, self.review_view), "Review")
        self.centre_tabs.setTabToolTip(1, "Every image as a point: similar images close together")
        self.centre_tabs.setTabToolTip(2, "Suspected label errors, duplicates and leaks, outliers; K / R / X")

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(self.centre_tabs)
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
    def dataset_map(self) -> DatasetMapView:
        return self._map.widget()

    def _build_map(self) -> DatasetMapView:
        from workbench.app.dataset.dataset_map import DatasetMapView

        view = DatasetMapView(self.thumbnails)
        view.selection_made.connect(self.show_map_selection)
        return view

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
        self._clear_analysis()

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

    def _on_shown_rows_reset(self) -> None:
        self._on_image_selected(QItemSelection(), QItemSelection())

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
        self._apply_filter()  # its reset re-reads the selection: preview and buttons (_on_shown_rows_reset)
        self.status_message.emit(message)

    # ---- map and review -------------------------------------------------------------------------
    def start_analysis(self) -> None:
        """Embed, review and map the loaded dataset in the background (a second start supersedes the first)."""
        if not self.folders:
            self.status_message.emit("Open a dataset first.")
            return
        for bar in (self.map_bar, self.review_bar):
            bar.set_running(True)
            bar.set_notes("")
        self.status_message.emit("Looking at every image (embedding, review, map)…")
        self._analysis.start(analysis_bar.analysis_job, list(self.folders), analysis_bar.ANALYSIS_SIZE)

    def cancel_analysis(self) -> None:
        self._analysis.cancel()
        for bar in (self.map_bar, self.review_bar):
            bar.set_running(False)

    @property
    def analysing(self) -> bool:
        return self._analysis.busy

    def _on_analysed(self, analysis: DatasetAnalysis) -> None:
        from workbench.engine.review.decisions import ReviewDecisions  # no torch: the record is plain JSON

        self.analysis = analysis
        decisions = ReviewDecisions(self.folders)
        notes = [*analysis.notes, *decisions.notes]
        if analysis.problems:
            notes.append(f"{len(analysis.problems)} file(s) could not be read and are left out")
        for bar in (self.map_bar, self.review_bar):
            bar.set_running(False)
            bar.set_notes(" · ".join(notes))
        self.dataset_map.show_analysis(analysis)
        self.review_view.set_read_only(self.curation.read_only)
        self.review_view.show_suspects(analysis.suspects, decisions)
        self.status_message.emit(
            f"Map of {len(analysis.paths):,} images; {len(self.review_view.open_suspects())} suspects to review."
        )

    def _on_analysis_failed(self, failure: Failure) -> None:
        for bar in (self.map_bar, self.review_bar):
            bar.set_running(False)
            bar.set_notes(f"⚠ {failure.message}")
        self.status_message.emit(failure.message)
        if not failure.is_user_error:
            report_failure(self, "Looking at the dataset failed", failure)

    def _clear_analysis(self) -> None:
        self._analysis.cancel()
        self.analysis = None
        self.dataset_map.show_analysis(None)
        self.review_view.show_suspects([], None)
        self.review_view.set_read_only(self.curation.read_only)
        for bar in (self.map_bar, self.review_bar):
            bar.set_running(False)
            bar.set_notes("")

    def show_map_selection(self, paths: list[str]) -> None:
        """The images of a box drawn on the map, in the grid (where the curation buttons act on them)."""
        rows = [row for row in (self.thumbnails.row_of(p) for p in paths) if row is not None]
        self.image_grid.show_rows(rows)
        self.centre_tabs.setCurrentWidget(self.image_grid)
        self.status_message.emit(f"{len(rows):,} images selected on the map.")

    def _on_review_action(self, suspect: Suspect, action: str) -> None:
        row = self.thumbnails.row_of(suspect.path)
        item = self.thumbnails.item(row) if row is not None else None
        if action == "exclude":
            move = self.curation.exclude_item(item, confirmed=True)  # the key press is the user's decision
        else:
            move = self.curation.move_item(item, suspect.suggested, confirmed=True)
        if move is None:
            if self.curation.read_only or item is None:
                return
            self.status_message.emit("Not changed: curation waits while a run reads the files.")
            return
        self.review_view.answered(suspect, action, str(move.destination))

    def _follow_move(self, move: FileMove, undone: bool) -> None:
        if undone:
            self.dataset_map.follow_move(str(move.destination), str(move.source), move.old_class)
            self.review_view.follow_undo(str(move.source))
        else:
            self.dataset_map.follow_move(str(move.source), str(move.destination), move.new_class or None)

    def shutdown(self) -> None:
        """Stop background work before the window goes away."""
        self._analysis.cancel()
        self.cancel_scan()
        self.thumbnails.loader.cancel_pending()
        self.thumbnails.loader.pool.waitForDone(2000)


def _page(header: QWidget, body: QWidget) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 4, 0, 0)
    layout.addWidget(header)
    layout.addWidget(body, 1)
    return page
