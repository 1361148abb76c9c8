"""Evaluation of a run on its test (or validation) images: accuracy, top-5, per-class metrics, the confusion
matrix with its images per cell, the most confused pairs, and the top losses, which can be opened, excluded
or relabeled through the dataset browser's curator.

The forward pass runs in a worker (`ClassificationInterpretation.from_run`); the view only draws its answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from workbench.app.evaluation.confusion_matrix import ConfusionMatrixView
from workbench.app.evaluation.gallery import OutcomeGallery
from workbench.app.evaluation.measurement import EvaluatedWith, interpret_run
from workbench.app.qt import dialogs
from workbench.app.qt.lazy import LazyWidget
from workbench.app.qt.run_picker import RunPicker
from workbench.app.qt.workers import Failure, run_in_background

if TYPE_CHECKING:
    from workbench.app.evaluation.reliability import ReliabilityDiagram

SPLITS = ("auto", "test", "val", "all")
METRIC_COLUMNS = ("class", "precision", "recall", "F1", "images")
# Which checkpoint to evaluate: the one the run's own test figure judged (best.pt, else last.pt), or last.pt.
CHECKPOINTS = (
    ("kept", "best.pt (the model the run keeps)"),
    ("last", "last.pt (the last epoch)"),
)
DETAILS_MIN_WIDTH = 380  # pixels the galleries and tables beside the matrix keep when it widens
EXCLUDE_TIP = "Move the image out of the dataset (undo in the Dataset tab)"
RELABEL_TIP = "Move the image to another class folder"


def _reliability_diagram() -> ReliabilityDiagram:
    from workbench.app.evaluation.reliability import ReliabilityDiagram

    return ReliabilityDiagram()


class EvaluationView(QWidget):
    evaluated = Signal(object)  # EvaluationReport
    inspect_requested = Signal(str)  # an image path, for the feature-map inspector

    @property
    def reliability(self) -> ReliabilityDiagram:
        return self._reliability.widget()

    def __init__(self, curator_source: Callable[[], Any] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._curator_source = curator_source
        self._own_curator: Any = None
        self.interpretation: Any = None
        self.report: Any = None
        self.busy = False
        self._read_only = ""  # why the evaluated run's images must not move ("" when they may)

        self.runs = RunPicker()
        self.split = QComboBox()
        self.split.addItems(SPLITS)
        self.split.setToolTip(
            "auto: the run's test split if it has one (the split its own test accuracy is measured on), else "
            "its validation split, else every image (said so: the model trained on most of them)"
        )
        self.checkpoint = QComboBox()
        for key, text in CHECKPOINTS:
            self.checkpoint.addItem(text, key)
        self.checkpoint.setToolTip(
            "best.pt: the model the run keeps (its best validation epoch), which the run's own test accuracy "
            "judges; last.pt: the weights of the last epoch"
        )
        self.evaluated_with: EvaluatedWith | None = None
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Run the model over the split's images (in the background)")
        self.evaluate_button.clicked.connect(lambda: self.evaluate())
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # busy indicator
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.hide()
        self.summary = QLabel("Pick a run and press Evaluate.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        top.addWidget(QLabel("Split:"))
        top.addWidget(self.split)
        top.addWidget(QLabel("Checkpoint:"))
        top.addWidget(self.checkpoint)
        top.addWidget(self.evaluate_button)
        top.addWidget(self.busy_bar)

        self.matrix = ConfusionMatrixView()
        self.matrix.cell_chosen.connect(self.show_cell)
        self.normalize = QCheckBox("Row-normalized")
        self.normalize.setToolTip("Show each row as shares of the true class's images instead of counts")
        self.normalize.toggled.connect(self.matrix.set_normalized)
        matrix_box = QWidget()
        matrix_layout = QVBoxLayout(matrix_box)
        matrix_layout.setContentsMargins(0, 0, 0, 0)
        matrix_title = QHBoxLayout()
        title = QLabel("<b>Confusion matrix</b> rows: true, columns: predicted")
        title.setWordWrap(True)  # may wrap, never widen the window
        matrix_title.addWidget(title, 1)
        matrix_title.addWidget(self.normalize)
        matrix_layout.addLayout(matrix_title)
        matrix_layout.addWidget(self.matrix, 1)

        self.cell_title = QLabel("Click a cell of the matrix to see its images.")
        self.cell_title.setWordWrap(True)
        self.cell_gallery = OutcomeGallery()
        self.cell_gallery.outcome_activated.connect(self.open_image)
        self.losses_gallery = OutcomeGallery()
        self.losses_gallery.outcome_activated.connect(self.open_image)
        self.metrics_table = QTableWidget(0, len(METRIC_COLUMNS))
        self.metrics_table.setHorizontalHeaderLabels(list(METRIC_COLUMNS))
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.metrics_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.metrics_table.setSortingEnabled(True)
        self.confused_list = QListWidget()
        self.confused_list.itemClicked.connect(self._on_confused_pair)

        self.details = QTabWidget()
        # Every page's tab in sight at the default width: short names (the full ones in tooltips), elided
        # rather than hidden behind scroll arrows, where the Confidence page went unseen.
        self.details.tabBar().setUsesScrollButtons(False)
        self.details.tabBar().setElideMode(Qt.TextElideMode.ElideRight)
        self._reliability = LazyWidget(_reliability_diagram)  # pyqtgraph loads after the window is shown
        for page, name, tip in (
            (self._page(self.cell_title, self.cell_gallery), "Cells", "The images behind a confusion-matrix cell"),
            (self._losses_page(), "Top losses", "The test images the model got most wrong"),
            (self.metrics_table, "Per class", "Precision, recall and F1 of each class"),
            (self.confused_list, "Confused", "The pairs of classes mistaken for each other most often"),
            (self._reliability, "Confidence", "Reliability diagram: is 80% sure right 80% of the time?"),
        ):
            self.details.setTabToolTip(self.details.addTab(page, name), tip)

        self._splitter = QSplitter()
        self._splitter.addWidget(matrix_box)
        self._splitter.addWidget(self.details)
        self._splitter.setSizes([620, 560])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self._splitter, 1)

    @staticmethod
    def _page(*widgets: QWidget) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 4, 0, 0)
        for widget in widgets:
            layout.addWidget(widget, 1 if isinstance(widget, OutcomeGallery) else 0)
        return page

    def _losses_page(self) -> QWidget:
        buttons = QHBoxLayout()
        made: list[QPushButton] = []
        for text, tip, slot in (
            ("Open", "Open the image in the system viewer", self._open_selected),
            ("Inspect", "Show the image in the feature-map inspector", self._inspect_selected),
            ("Exclude…", EXCLUDE_TIP, self.exclude_selected),
            ("Relabel…", RELABEL_TIP, self.relabel_selected),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _checked=False, slot=slot: slot())  # not `checked` as an argument
            buttons.addWidget(button)
            made.append(button)
        buttons.addStretch(1)
        self.exclude_button, self.relabel_button = made[2], made[3]
        # Why Exclude and Relabel are off, as the Dataset tab says it for the same dataset.
        self.read_only_label = QLabel()
        self.read_only_label.setObjectName("hintLabel")
        self.read_only_label.setWordWrap(True)
        self.read_only_label.hide()
        explanation = QLabel(
            "The images the model is most wrong about, highest loss first (the loss is under each image)."
        )
        explanation.setWordWrap(True)
        page = self._page(explanation)
        page.layout().addWidget(self.losses_gallery, 1)
        page.layout().addLayout(buttons)
        page.layout().addWidget(self.read_only_label)
        return page

    def set_read_only(self, reason: str) -> None:
        """The evaluated run's dataset must not change (the bundled sample inside the installation, a folder
        this user cannot write): Exclude and Relabel are off, and their tooltips and a note say why."""
        self._read_only = reason
        for button, tip in ((self.exclude_button, EXCLUDE_TIP), (self.relabel_button, RELABEL_TIP)):
            button.setEnabled(not reason)
            button.setToolTip(reason or tip)
        self.read_only_label.setText(f"Exclude and Relabel are off: {reason}" if reason else "")
        self.read_only_label.setVisible(bool(reason))

    @property
    def read_only(self) -> str:
        return self._read_only

    # ---- evaluating ----------------------------------------------------------------------------
    def set_run(self, run_id: str) -> None:
        """Choose a run (from the runs view or the training panel); the picker lists it once it is known."""
        self.runs.refresh(select=run_id)

    def evaluate(self, run_id: str | None = None) -> None:
        run_id = run_id or self.runs.current_run_id()
        if not run_id:
            dialogs.show_error(self, "No run", "Train a model first, or pick a run from the list.")
            return
        if self.busy:
            return
        self.busy = True
        self.evaluate_button.setEnabled(False)
        self.busy_bar.show()
        self.summary.setText(f"Evaluating {run_id}…")
        run_in_background(
            self,
            interpret_run,
            run_id,
            self.split.currentText(),
            self.checkpoint.currentData(),
            on_done=self._show,
            on_error=self._failed,
            on_finished=self._idle,
        )

    def _idle(self) -> None:
        self.busy = False
        self.evaluate_button.setEnabled(True)
        self.busy_bar.hide()

    def _failed(self, failure: Failure) -> None:
        self._clear_results()  # an earlier run's matrix under "Evaluation failed" would read as this run's
        self.summary.setText(f"Evaluation failed: {failure.message}")
        dialogs.show_error(
            self, "Evaluation failed", failure.message, "" if failure.is_user_error else failure.details
        )

    def _show(self, result: tuple[Any, Any, EvaluatedWith]) -> None:
        self.interpretation, self.report, self.evaluated_with = result
        self._own_curator = None  # the next move follows this run's dataset folders
        self.set_read_only(self.evaluated_with.read_only)
        report = self.report
        self.summary.setText(self.summary_text(report, self.evaluated_with))
        self.matrix.show_matrix(report.confusion, report.classes)
        self._fit_matrix()
        self._fill_metrics(report)
        self.confused_list.clear()
        for pair in self.interpretation.most_confused():
            item = QListWidgetItem(f"{pair.true_class} → {pair.predicted_class}: {pair.count}")
            item.setData(Qt.ItemDataRole.UserRole, (pair.true_class, pair.predicted_class))
            self.confused_list.addItem(item)
        self.losses_gallery.show_outcomes(self.interpretation.top_losses(60))
        self.reliability.show_calibration(report.extra.get("calibration"))
        self.cell_gallery.clear()
        self.cell_title.setText("Click a cell of the matrix to see its images.")
        self.evaluated.emit(report)

    def _clear_results(self) -> None:
        self.interpretation = self.report = self.evaluated_with = None
        self.matrix.show_matrix([], [])
        self.metrics_table.setRowCount(0)
        self.confused_list.clear()
        self.losses_gallery.show_outcomes([])
        self.reliability.clear()
        self.cell_gallery.clear()
        self.cell_title.setText("")

    def _fit_matrix(self) -> None:
        """Widen the matrix's pane so every predicted class's column shows without scrolling, when the window
        has the room (the galleries keep DETAILS_MIN_WIDTH): ten classes need more than the default split."""
        matrix = self.matrix
        needed = (
            matrix.verticalHeader().sizeHint().width()
            + matrix.columnCount() * matrix.column_min_width
            + matrix.verticalScrollBar().sizeHint().width()
            + 2 * matrix.frameWidth()
        )
        sizes = self._splitter.sizes()
        total = sum(sizes)
        left = min(needed, total - DETAILS_MIN_WIDTH)
        if total > 0 and left > sizes[0]:
            self._splitter.setSizes([left, total - left])

    @staticmethod
    def summary_text(report: Any, with_: EvaluatedWith) -> str:
        """The accuracy with what it measured: checkpoint, split, test procedure; whether it is the run's own
        test figure; and a warning when the validation split was too small to pick the best epoch."""
        from workbench.engine.evaluation.figures import provenance

        top5 = f" · top-5 {report.top5:.1%}" if report.top5 is not None else ""
        loss = f" · loss {report.loss:.3f}" if report.loss is not None else ""
        lines = [
            f"<b>accuracy {report.accuracy:.1%}</b>{top5}{loss} · macro F1 {report.macro_f1:.3f} · "
            f"{report.num_images} images ({with_.split} split)",
            f"measured with {provenance(with_.checkpoint, with_.flip_averaged)}",
        ]
        if with_.run_test_acc is not None:
            lines.append(
                f"the run's own test accuracy, measured the same way: {with_.run_test_acc:.1%}"
            )
        calibration = report.extra.get("calibration")
        if calibration:
            lines.append(
                f"confidence calibrated with temperature {calibration['temperature']:.2f}: expected calibration "
                f"error {calibration['ece_before']:.1%} → {calibration['ece_after']:.1%} (Confidence tab)"
                if calibration["fitted"]
                else f"confidence not calibrated, expected calibration error {calibration['ece_before']:.1%}: "
                f"{calibration['note']} (Confidence tab)"
            )
        for warning in (with_.split_note, with_.validation_warning):
            if warning:
                lines.append(f"<span style='color:#a15c00'>⚠ {warning}</span>")
        return "<br>".join(lines)

    def _fill_metrics(self, report: Any) -> None:
        table = self.metrics_table
        table.setSortingEnabled(False)
        table.setRowCount(len(report.per_class))
        for row, metrics in enumerate(report.per_class):
            values = (metrics.precision, metrics.recall, metrics.f1)
            table.setItem(row, 0, QTableWidgetItem(metrics.name))
            for column, value in enumerate(values, start=1):
                item = QTableWidgetItem(f"{value:.3f}")
                item.setData(Qt.ItemDataRole.EditRole, round(value, 3))
                table.setItem(row, column, item)
            support = QTableWidgetItem()
            support.setData(Qt.ItemDataRole.EditRole, metrics.support)
            table.setItem(row, 4, support)
        table.setSortingEnabled(True)

    # ---- cells and images ----------------------------------------------------------------------
    def show_cell(self, true_index: int, predicted_index: int) -> None:
        if self.interpretation is None:
            return
        outcomes = self.interpretation.cell(true_index, predicted_index)
        classes = self.interpretation.classes
        self.cell_title.setText(
            f"True <b>{classes[true_index]}</b>, predicted <b>{classes[predicted_index]}</b>: "
            f"{len(outcomes)} image(s), highest loss first (the loss is under each image)"
        )
        self.cell_gallery.show_outcomes(outcomes)
        self.details.setCurrentIndex(0)

    def _on_confused_pair(self, item: QListWidgetItem) -> None:
        true_class, predicted_class = item.data(Qt.ItemDataRole.UserRole)
        classes = self.interpretation.classes
        self.show_cell(classes.index(true_class), classes.index(predicted_class))

    def open_image(self, outcome: Any) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(outcome.path))

    def _selected_or_warn(self) -> Any | None:
        outcome = self.losses_gallery.selected_outcome()
        if outcome is None:
            dialogs.show_error(self, "No image selected", "Select an image in the top-losses gallery first.")
        return outcome

    def _open_selected(self) -> None:
        outcome = self._selected_or_warn()
        if outcome is not None:
            self.open_image(outcome)

    def _inspect_selected(self) -> None:
        outcome = self._selected_or_warn()
        if outcome is not None:
            self.inspect_requested.emit(outcome.path)

    # ---- curation (through the dataset browser's curator, so Undo there works) -----------------
    def _curator(self) -> Any:
        if self._curator_source is not None:
            return self._curator_source()
        if self._own_curator is None:  # a view used on its own, without the dataset browser
            from workbench.engine.data.curation import Curator

            predictions = getattr(self.interpretation, "predictions", None)
            self._own_curator = Curator(roots=getattr(predictions, "roots", None))
        return self._own_curator

    def _refuse_if_read_only(self) -> bool:
        if self._read_only:
            dialogs.show_error(self, "The dataset cannot be changed", self._read_only)
        return bool(self._read_only)

    def exclude_selected(self) -> None:
        if self._refuse_if_read_only():
            return
        outcome = self._selected_or_warn()
        if outcome is None or not dialogs.confirm(
            self,
            "Exclude image",
            f"Exclude {outcome.path} from the dataset?\nIt moves to a hidden .excluded folder; "
            "Undo in the Dataset tab brings it back.",
        ):
            return
        self._curate(outcome, lambda curator: curator.exclude(outcome.path, outcome.true_class))

    def relabel_selected(self) -> None:
        if self._refuse_if_read_only():
            return
        outcome = self._selected_or_warn()
        if outcome is None:
            return
        classes = [name for name in self.interpretation.classes if name != outcome.true_class]
        suggested = classes.index(outcome.predicted_class) if outcome.predicted_class in classes else 0
        new_class, ok = QInputDialog.getItem(
            self, "Relabel image", f"Move {outcome.path} to class:", classes, suggested, False
        )
        if not ok or not dialogs.confirm(
            self, "Relabel image", f"Move the image from '{outcome.true_class}' to '{new_class}'?"
        ):
            return
        self._curate(outcome, lambda curator: curator.relabel(outcome.path, outcome.true_class, new_class))

    def _curate(self, outcome: Any, action: Callable[[Any], Any]) -> None:
        from workbench.engine.errors import WorkbenchError

        try:
            move = action(self._curator())
        except WorkbenchError as exc:  # a file that moved or vanished since the evaluation
            dialogs.show_error(self, "Could not change the dataset", str(exc))
            return
        self.losses_gallery.remove_path(outcome.path)
        self.cell_gallery.remove_path(outcome.path)
        self.summary.setText(f"{self.summary.text()}<br>Moved: {move.detail}")
