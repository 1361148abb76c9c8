"""The dataset browser: classes and counts per split, class balance, problems, a thumbnail grid, curation.

Scanning runs in a worker (cancellable, with progress); thumbnails and the preview decode off the UI
thread. Curation moves files only after the user confirms, and every move can be undone in the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelection, QObject, QSize, Qt, Signal
from PySide6.QtGui import QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListView,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.app import dialogs
from workbench.app.curation import Curator
from workbench.app.dataset_scan import SPLIT_COLORS, SPLITS, DatasetSummary, recount, scan_for_browser
from workbench.app.lazy import LazyWidget
from workbench.app.thumbnails import (
    ALL,
    ThumbItem,
    ThumbnailDelegate,
    ThumbnailFilter,
    ThumbnailModel,
    open_for_display,
)
from workbench.app.workers import Failure, run_in_background
from workbench.engine.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.app.charts import ClassBalanceChart

PREVIEW_SIDE = 320
PROGRESS_EVERY_S = 0.1


def _make_balance_chart() -> ClassBalanceChart:
    from workbench.app.charts import ClassBalanceChart  # pyqtgraph: imported after the first paint

    return ClassBalanceChart()


class _ScanProgress(QObject):
    """Carries the worker's file count to the UI thread (a queued signal), at most 10 times a second."""

    counted = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self._last = 0.0

    def report(self, count: int) -> None:  # worker thread
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self.counted.emit(count)


def _count_item(value: int) -> QTableWidgetItem:
    item = QTableWidgetItem()
    item.setData(Qt.ItemDataRole.DisplayRole, value)  # numeric, so the column sorts by number
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class ScaledImageLabel(QLabel):
    """Shows an image as large as the label allows, keeping its aspect; small images stay crisp (nearest
    neighbour) so a 28×28 digit shows its real pixels."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self._image: QImage | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self._rescale()

    def has_image(self) -> bool:
        return self._image is not None and not self._image.isNull()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if not self.has_image():
            self.setPixmap(QPixmap())
            return
        box = self.contentsRect().size()
        small = self._image.width() * 2 <= box.width() and self._image.height() * 2 <= box.height()
        mode = (
            Qt.TransformationMode.FastTransformation if small else Qt.TransformationMode.SmoothTransformation
        )
        scaled = self._image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, mode)
        self.setPixmap(QPixmap.fromImage(scaled))


class DatasetPanel(QWidget):
    dataset_loaded = Signal(object)  # DatasetSummary
    scan_failed = Signal(str)
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.folders: list[str] = []
        self.summary: DatasetSummary | None = None
        self.scanning = False
        self.curator = Curator()
        self._locked = False
        self._cancel_requested = False
        self._scan_generation = 0
        self._preview_path: str | None = None

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
        self.class_table = QTableWidget(0, 5)
        self.class_table.setHorizontalHeaderLabels(["Class", "Train", "Val", "Test", "Total"])
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.class_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 5):
            self.class_table.horizontalHeader().setSectionResizeMode(
                column, QHeaderView.ResizeMode.ResizeToContents
            )
        self.class_table.horizontalHeader().setSortIndicator(
            0, Qt.SortOrder.AscendingOrder
        )  # the chart's order
        self.class_table.itemSelectionChanged.connect(self._on_class_row_selected)
        self._balance_chart = LazyWidget(_make_balance_chart)
        self._balance_chart.setMinimumHeight(160)
        self.warning_label = QLabel()
        self.warning_label.setObjectName("warningLabel")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        self.problem_list = QTreeWidget()
        self.problem_list.setHeaderLabels(["File", "Problem"])
        self.problem_list.setRootIsDecorated(False)
        self.problem_list.setAlternatingRowColors(True)
        self.problems_box = QGroupBox("Problems (0)")
        problems_layout = QVBoxLayout(self.problems_box)
        problems_layout.addWidget(self.problem_list)
        classes_box = QGroupBox("Classes")
        classes_layout = QVBoxLayout(classes_box)
        classes_layout.addWidget(self.class_table, 3)
        classes_layout.addWidget(self._balance_chart, 2)
        self.balance_legend = QLabel()
        self.balance_legend.setAlignment(Qt.AlignmentFlag.AlignCenter)
        classes_layout.addWidget(self.balance_legend)
        classes_layout.addWidget(self.warning_label)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(classes_box)
        left.addWidget(self.problems_box)
        left.setStretchFactor(0, 3)
        left.setStretchFactor(1, 1)

        # centre: filterable, virtualized thumbnail grid (or the drop hint while empty)
        self.thumbnails = ThumbnailModel(parent=self)
        self.thumbnails.loader.failed.connect(self._on_thumbnail_failed)
        self.filter_model = ThumbnailFilter(self)
        self.filter_model.setSourceModel(self.thumbnails)
        self.class_filter = QComboBox()
        self.split_filter = QComboBox()
        for combo in (self.class_filter, self.split_filter):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self.class_filter.currentTextChanged.connect(self._apply_filter)
        self.split_filter.currentTextChanged.connect(self._apply_filter)
        self.shown_label = QLabel()
        self.shown_label.setObjectName("hintLabel")
        self.shown_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.shown_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Class"))
        filters.addWidget(self.class_filter)
        filters.addWidget(QLabel("Split"))
        filters.addWidget(self.split_filter)
        filters.addWidget(self.shown_label, 1)
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)  # lets the view lay out 70k rows without asking each one
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(500)
        side = self.thumbnails.loader.side
        self.grid.setIconSize(QSize(side, side))
        self.grid.setGridSize(QSize(side + 8, side + 8))
        self.grid.setItemDelegate(ThumbnailDelegate(self.grid))
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.setModel(self.filter_model)
        self.grid.selectionModel().selectionChanged.connect(self._on_image_selected)
        self.drop_hint = QLabel(
            "Drop a folder of labeled images here\n\n"
            "• a folder with one sub-folder per class\n"
            "• or with train / val / test sub-folders, each holding class folders\n"
            "• or several folders at once: each becomes one class"
        )
        self.drop_hint.setObjectName("dropHint")
        self.drop_hint.setWordWrap(True)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.centre_stack = QStackedWidget()
        self.centre_stack.addWidget(self.drop_hint)
        self.centre_stack.addWidget(self.grid)
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addLayout(filters)
        centre_layout.addWidget(self.centre_stack, 1)

        # right: the selected image, larger, and curation
        self.preview = ScaledImageLabel("Select an image")
        self.preview.setStyleSheet("background: #fafafa; border: 1px solid #dddddd;")
        self.preview_info = QLabel()
        self.preview_info.setWordWrap(True)
        self.preview_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.exclude_button = QPushButton("Exclude from training")
        self.exclude_button.setToolTip(
            "Move the file into a hidden .excluded folder (after confirmation; undoable)"
        )
        self.exclude_button.clicked.connect(self.exclude_selected)
        self.move_target = QComboBox()
        self.move_button = QPushButton("Move to class")
        self.move_button.setToolTip(
            "Move the file into the chosen class's folder (after confirmation; undoable)"
        )
        self.move_button.clicked.connect(self.move_selected)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last exclusion or move (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        QShortcut(QKeySequence.StandardKey.Undo, self, activated=self.undo)
        move_row = QHBoxLayout()
        move_row.addWidget(self.move_button)
        move_row.addWidget(self.move_target, 1)
        right = QGroupBox("Image")
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.preview, 1)
        right_layout.addWidget(self.preview_info)
        right_layout.addWidget(self.exclude_button)
        right_layout.addLayout(move_row)
        right_layout.addWidget(self.undo_button)

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(left)
        body.addWidget(centre)
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
        self._update_curation_buttons()

    @property
    def balance_chart(self) -> ClassBalanceChart:
        return self._balance_chart.widget()

    def connect_actions(self, open_folder: Callable[[], None], open_sample: Callable[[], None]) -> None:
        self.open_button.clicked.connect(open_folder)
        self.sample_button.clicked.connect(open_sample)

    # ---- scanning ------------------------------------------------------------------------------
    def load(self, folders: list[str], *, val_fraction: float = 0.1, seed: int = 0) -> None:
        """Scan `folders` in the background; the current dataset stays until the new one is ready."""
        if self.scanning:
            self.cancel_scan()
        self._scan_generation += 1
        generation = self._scan_generation
        self._cancel_requested = False
        self._pending_folders = list(folders)
        self.error_label.hide()
        self._set_scanning(True)
        progress = _ScanProgress()
        progress.counted.connect(self.scan_progress.setValue)
        self._progress_relay = progress  # keep alive while the worker reports into it
        self.status_message.emit(f"Scanning {', '.join(folders)}…")
        run_in_background(
            self,
            scan_for_browser,
            list(folders),
            lambda: self._cancel_requested or generation != self._scan_generation,
            progress.report,
            val_fraction,
            seed,
            on_done=lambda summary: self._on_scanned(generation, summary),
            on_error=lambda failure: self._on_scan_failed(generation, failure),
        )

    def cancel_scan(self) -> None:
        if self.scanning:
            self._cancel_requested = True
            self._scan_generation += 1  # whatever the cancelled scan returns is ignored
            self._set_scanning(False)
            self.status_message.emit("Scan cancelled.")

    def _set_scanning(self, scanning: bool) -> None:
        self.scanning = scanning
        self.scan_progress.setVisible(scanning)
        self.cancel_button.setVisible(scanning)
        if scanning:
            self.scan_progress.setValue(0)

    def _on_scanned(self, generation: int, summary: DatasetSummary) -> None:
        if generation != self._scan_generation:
            return
        self._set_scanning(False)
        self.show_summary(summary)
        self.dataset_loaded.emit(summary)
        self.status_message.emit(f"Loaded {summary.status_text()}")

    def _on_scan_failed(self, generation: int, failure: Failure) -> None:
        if generation != self._scan_generation:
            return
        self._set_scanning(False)
        message = failure.message if failure.is_user_error else f"Scanning failed: {failure.message}"
        self.error_label.setText(f"⚠ Cannot use {', '.join(self._pending_folders)}: {message}")
        self.error_label.show()
        self.scan_failed.emit(message)
        self.status_message.emit(message)
        if not failure.is_user_error:
            dialogs.show_error(self, "Scanning failed", message, failure.details)

    # ---- showing a dataset ---------------------------------------------------------------------
    def show_summary(self, summary: DatasetSummary) -> None:
        self.summary = summary
        self.folders = list(summary.folders)
        self.curator = Curator(
            {Path(f).name: Path(f) for f in summary.folders} if len(summary.folders) > 1 else None
        )
        self.title.setText(summary.status_text())
        self.title.setToolTip("\n".join(summary.folders))
        self.thumbnails.set_items(summary.items, summary.rows_by_path or None)
        self.centre_stack.setCurrentWidget(self.grid)
        for combo, values in (
            (self.class_filter, summary.classes),
            (self.split_filter, summary.present_splits),
        ):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([ALL, *values])
            combo.blockSignals(False)
        self.move_target.clear()
        self.move_target.addItems(summary.classes)
        self.problem_list.clear()
        for path, reason in summary.problems:
            row = QTreeWidgetItem([path, reason])
            row.setToolTip(0, path)
            row.setToolTip(1, reason)
            self.problem_list.addTopLevelItem(row)
        self.problem_list.resizeColumnToContents(1)
        self.problems_box.setTitle(f"Problems ({len(summary.problems)})")
        self._refresh_counts(recount_items=False)  # the worker counted them
        self._apply_filter()
        self._clear_preview()

    def _on_thumbnail_failed(self, path: str, reason: str) -> None:
        """Files the scan accepted but that cannot be decoded join the problems list as they are met."""
        if self.summary is None or any(known == path for known, _ in self.summary.problems):
            return
        self.summary.problems.append((path, reason))
        row = QTreeWidgetItem([path, reason])
        row.setToolTip(0, path)
        self.problem_list.addTopLevelItem(row)
        self.problems_box.setTitle(f"Problems ({len(self.summary.problems)})")

    def problems_shown(self) -> list[tuple[str, str]]:
        items = (self.problem_list.topLevelItem(i) for i in range(self.problem_list.topLevelItemCount()))
        return [(item.text(0), item.text(1)) for item in items]

    def _refresh_counts(self, recount_items: bool = True) -> None:
        summary = self.summary
        if summary is None:
            return
        if recount_items:  # after curation moved or excluded images
            summary.counts = recount(summary.classes, self.thumbnails.items())
        self.class_table.setSortingEnabled(False)
        self.class_table.setRowCount(len(summary.classes))
        for row, name in enumerate(summary.classes):
            self.class_table.setItem(row, 0, QTableWidgetItem(name))
            per_split = [summary.counts.get(split, {}).get(name, 0) for split in SPLITS]
            for column, value in enumerate([*per_split, sum(per_split)], start=1):
                self.class_table.setItem(row, column, _count_item(value))
        for column, split in enumerate(SPLITS, start=1):
            self.class_table.setColumnHidden(column, split not in summary.present_splits)
        self.class_table.setSortingEnabled(True)
        self.balance_chart.show_counts(summary)
        self.balance_legend.setText(
            "&nbsp;&nbsp;".join(
                f"<span style='color: rgb{SPLIT_COLORS[split]}'>■</span> {split}"
                for split in summary.present_splits
            )
        )
        warnings = list(summary.warnings)  # the engine's: strong imbalance, tiny classes, loose files
        self.warning_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warning_label.setVisible(bool(warnings))
        self.title.setText(summary.status_text())

    def class_counts(self) -> dict[str, dict[str, int]]:
        """What the class table shows: class -> {split: count}, read back from the table itself."""
        shown: dict[str, dict[str, int]] = {}
        for row in range(self.class_table.rowCount()):
            name = self.class_table.item(row, 0).text()
            shown[name] = {
                split: int(self.class_table.item(row, column).data(Qt.ItemDataRole.DisplayRole))
                for column, split in enumerate(SPLITS, start=1)
                if not self.class_table.isColumnHidden(column)
            }
        return shown

    def _apply_filter(self) -> None:
        self.filter_model.set_filter(
            self.class_filter.currentText() or ALL, self.split_filter.currentText() or ALL
        )
        self.shown_label.setText(f"{self.filter_model.rowCount():,} of {self.thumbnails.rowCount():,} images")

    def _on_class_row_selected(self) -> None:
        rows = self.class_table.selectionModel().selectedRows()
        if rows:
            self.class_filter.setCurrentText(self.class_table.item(rows[0].row(), 0).text())

    # ---- preview -------------------------------------------------------------------------------
    def selected_item(self) -> ThumbItem | None:
        indexes = self.grid.selectionModel().selectedIndexes()
        if not indexes:
            return None
        return self.thumbnails.item(self.filter_model.mapToSource(indexes[0]).row())

    def select_row(self, row: int) -> None:
        """Select the `row`-th visible thumbnail (keyboard users and tests)."""
        self.grid.setCurrentIndex(self.filter_model.index(row, 0))

    def _on_image_selected(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        item = self.selected_item()
        self._update_curation_buttons()
        if item is None:
            self._clear_preview()
            return
        self._preview_path = item.path
        self.preview_info.setText(f"{item.path}\nclass {item.class_name} · {item.split}")
        run_in_background(
            self,
            open_for_display,
            item.path,
            PREVIEW_SIDE,
            on_done=lambda result, path=item.path: self._show_preview(path, *result),
            on_error=lambda failure, path=item.path: self._preview_failed(path, failure),
        )

    def _show_preview(self, path: str, image: QImage, info: dict[str, Any]) -> None:
        if path != self._preview_path:
            return  # the user has moved on to another image
        self.preview.set_image(image)
        item = self.selected_item()
        label = (
            f"class {item.class_name} · {item.split}{' · excluded' if item.excluded else ''}\n"
            if item
            else ""
        )
        self.preview_info.setText(
            f"{label}{info['width']} × {info['height']} px · mode {info['mode']} · {info['format']}\n{path}"
        )

    def _preview_failed(self, path: str, failure: Failure) -> None:
        if path == self._preview_path:
            self.preview.set_image(None)
            self.preview.setText("cannot display this file")
            self.preview_info.setText(f"{path}\n⚠ {failure.message}")

    def _clear_preview(self) -> None:
        self._preview_path = None
        self.preview.set_image(None)
        self.preview.setText("Select an image")
        self.preview_info.clear()

    def preview_text(self) -> str:
        return self.preview_info.text()

    # ---- curation ------------------------------------------------------------------------------
    def set_locked(self, locked: bool) -> None:
        """While a run reads the files, curation (which moves them) waits."""
        self._locked = locked
        self._update_curation_buttons()

    def _update_curation_buttons(self) -> None:
        item = self.selected_item() if hasattr(self, "grid") else None
        usable = item is not None and not item.excluded and not self._locked
        self.exclude_button.setEnabled(usable)
        self.move_button.setEnabled(usable)
        self.move_target.setEnabled(usable)
        self.undo_button.setEnabled(self.curator.can_undo() and not self._locked)

    def exclude_selected(self, *, confirmed: bool = False) -> None:
        item = self.selected_item()
        if item is None or item.excluded or self._locked:
            return
        if not confirmed and not dialogs.confirm(
            self,
            "Exclude image",
            f"Move\n{item.path}\ninto a hidden '.excluded' folder so training skips it?\n\nYou can undo this (Ctrl+Z).",
        ):
            return
        self._apply(lambda: self.curator.exclude(item.path, item.class_name), item)

    def move_selected(self, *, confirmed: bool = False) -> None:
        item = self.selected_item()
        target = self.move_target.currentText()
        if item is None or item.excluded or self._locked or not target or target == item.class_name:
            if item is not None and target == item.class_name:
                self.status_message.emit(f"The image is already in class '{target}'.")
            return
        if not confirmed and not dialogs.confirm(
            self,
            "Move image",
            f"Move\n{item.path}\nfrom class '{item.class_name}' to '{target}'?\n\nYou can undo this (Ctrl+Z).",
        ):
            return
        self._apply(lambda: self.curator.relabel(item.path, item.class_name, target), item)

    def _apply(self, action: Callable[[], Any], item: ThumbItem) -> None:
        try:
            move = action()
        except WorkbenchError as exc:
            dialogs.show_error(self, "Cannot change the dataset", str(exc))
            return
        if move.action == "exclude":
            new_item = ThumbItem(str(move.destination), item.class_name, item.split, excluded=True)
        else:
            new_item = ThumbItem(str(move.destination), move.detail.split(" → ")[1], item.split)
        self.thumbnails.update_item(item.path, new_item)
        self._after_curation(
            f"{'Excluded' if move.action == 'exclude' else 'Moved'} {Path(item.path).name} ({move.detail})."
        )

    def undo(self) -> None:
        if self._locked or not self.curator.can_undo():
            return
        try:
            move = self.curator.undo()
        except WorkbenchError as exc:
            dialogs.show_error(self, "Cannot undo", str(exc))
            return
        if move is None:
            return
        old_class = move.detail.split(" → ")[0]
        current = self.thumbnails.row_of(str(move.destination))
        split = self.thumbnails.item(current).split if current is not None else "train"
        self.thumbnails.update_item(str(move.destination), ThumbItem(str(move.source), old_class, split))
        self._after_curation(f"Undone: {Path(move.source).name} is back in '{old_class}'.")

    def _after_curation(self, message: str) -> None:
        self._refresh_counts()
        self._apply_filter()
        self._update_curation_buttons()
        if self.selected_item() is not None:
            self._on_image_selected(QItemSelection(), QItemSelection())
        self.status_message.emit(message)

    def shutdown(self) -> None:
        """Stop background work before the window goes away."""
        self.cancel_scan()
        self.thumbnails.loader.cancel_pending()
        self.thumbnails.loader.pool.waitForDone(2000)
