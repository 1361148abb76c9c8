"""Predictions for images the user drops (files or folders) or picks: top-k classes with probability bars per
image, exportable as CSV — the same numbers as `workbench predict` (both call the engine's `Predictor`).

The probabilities are calibrated with the run's temperature, and an image unlike the training images is
flagged in its row; the line above the table says both (evaluation/calibration.py, out_of_domain.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSize, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.app.qt import dialogs
from workbench.app.qt.qimages import file_thumbnail
from workbench.app.qt.run_picker import RunPicker
from workbench.app.qt.workers import Failure, run_in_background

WARNING = "unlike the training images"  # as the engine's out_of_domain.WARNING (imported there with torch)

THUMB_SIDE = 56
WARNING_STYLE = "color:#a15c00"  # the app's warning colour (as the Evaluate tab's)


def dropped_paths(urls: list[Any]) -> list[str]:
    """Local files and folders among dropped URLs."""
    return [url.toLocalFile() for url in urls if url.isLocalFile() and os.path.exists(url.toLocalFile())]


@dataclass(frozen=True)
class PredictedWith:
    """How the shown predictions were made, in the engine's words."""

    flip_averaged: bool  # each image averaged with its mirror
    probability_note: str  # calibrated or not, and why
    domain_note: str  # how images unlike the training images are flagged, or why they are not


def predict_paths(run_ref: str, paths: list[str], top_k: int) -> tuple[list[Any], PredictedWith]:  # worker thread
    """(predictions, how they were made)."""
    from workbench.engine.evaluation.predict import Predictor

    predictor = Predictor(run_ref)
    results = predictor.predict(paths, top_k=top_k)
    return results, PredictedWith(predictor.flip_averaged, predictor.probability_note, predictor.domain_note)


def write_csv(results: list[Any], path: str) -> str:  # worker thread
    from workbench.engine.evaluation.predict import write_predictions_csv

    return str(write_predictions_csv(results, path))


def _sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


class ProbabilityBar(QProgressBar):
    """One class with its probability as a bar: 'Sneaker 87.5%'."""

    def __init__(self, class_name: str, probability: float, parent: QWidget | None = None):
        super().__init__(parent)
        self.class_name = class_name
        self.probability = probability
        self.setRange(0, 1000)
        self.setValue(round(probability * 1000))
        self.setFormat(f"{class_name} {probability:.1%}")
        self.setTextVisible(True)


class PredictionsView(QWidget):
    predicted = Signal(int)  # number of images with results

    def __init__(self, dataset_folder_source: Any = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._dataset_folder_source = dataset_folder_source  # () -> a folder to start the picker in
        self.results: list[Any] = []
        self.busy = False
        self.setAcceptDrops(True)

        self.runs = RunPicker()
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 10)
        self.top_k.setValue(3)
        self.top_k.setToolTip("How many classes to show per image")
        self.add_button = QPushButton("Add images…")
        self.add_button.clicked.connect(lambda: self.pick_images())  # not `checked` as the start folder
        self.dataset_button = QPushButton("From dataset…")
        self.dataset_button.setToolTip("Pick images from the dataset folder")
        self.dataset_button.clicked.connect(lambda: self.pick_from_dataset())
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(lambda: self.export_csv_dialog())
        self.export_button.setEnabled(False)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.hide()
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        top.addWidget(QLabel("Top-k:"))
        top.addWidget(self.top_k)
        for widget in (self.add_button, self.dataset_button, self.export_button, self.busy_bar):
            top.addWidget(widget)

        self.status = QLabel("Drop images or folders here to see what the model thinks they are.")
        self.status.setWordWrap(True)
        self.confidence_note = QLabel()  # calibrated probabilities, the out-of-domain check
        self.confidence_note.setObjectName("hintLabel")
        self.confidence_note.setWordWrap(True)
        self.confidence_note.hide()
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["image", "top classes"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setColumnWidth(0, 320)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMB_SIDE, THUMB_SIDE))
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.confidence_note)
        layout.addWidget(self.table, 1)

    # ---- input ---------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and dropped_paths(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = dropped_paths(event.mimeData().urls())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.predict(paths)

    def _dataset_folder(self) -> str:
        return (self._dataset_folder_source() if self._dataset_folder_source else "") or ""

    def pick_images(self, start: str = "") -> None:
        start = start or dialogs.start_folder(self._dataset_folder())
        files, _ = QFileDialog.getOpenFileNames(self, "Images to classify", start, dialogs.IMAGE_FILTER)
        if files:
            dialogs.remember_folder(files[0])
            self.predict(files)

    def pick_from_dataset(self) -> None:
        self.pick_images(dialogs.start_folder(self._dataset_folder()))

    def set_run(self, run_id: str) -> None:
        self.runs.refresh(select=run_id)

    # ---- predicting ----------------------------------------------------------------------------
    def predict(self, paths: list[str]) -> None:
        run_id = self.runs.current_run_id()
        if not run_id:
            dialogs.show_error(self, "No run", "Train a model first, or pick a run from the list.")
            return
        if self.busy:
            self.status.setText("Still predicting the previous images; drop these again in a moment.")
            return
        self.busy = True
        self.busy_bar.show()
        self.status.setText(f"Predicting with {run_id}…")
        run_in_background(
            self,
            predict_paths,
            run_id,
            list(paths),
            self.top_k.value(),
            on_done=self._show,
            on_error=self._failed,
            on_finished=self._idle,
        )

    def _idle(self) -> None:
        self.busy = False
        self.busy_bar.hide()

    def _failed(self, failure: Failure) -> None:
        self.status.setText(f"Prediction failed: {failure.message}")
        dialogs.show_error(
            self, "Prediction failed", failure.message, "" if failure.is_user_error else failure.details
        )

    def _show(self, outcome: tuple[list[Any], PredictedWith]) -> None:
        results, with_ = outcome
        self.results = results
        self.table.setRowCount(len(results))
        for row, result in enumerate(results):
            item = QTableWidgetItem(
                QIcon(file_thumbnail(result.path, THUMB_SIDE)), os.path.basename(result.path)
            )
            item.setToolTip(result.path)
            self.table.setItem(row, 0, item)
            self.table.setCellWidget(row, 1, self._bars(result))
            lines = len(result.top) + bool(result.out_of_domain)  # the warning takes a line of its own
            self.table.setRowHeight(row, max(THUMB_SIDE + 6, 24 * max(1, lines)))
        good = sum(1 for result in results if result.error is None)
        failed = len(results) - good
        unlike = sum(1 for result in results if result.out_of_domain)
        self.status.setText(
            f"{good} image(s) classified"
            + (f", {failed} could not be read" if failed else "")
            + (
                f" · <span style='{WARNING_STYLE}'>⚠ {unlike} {WARNING}: their classes are guesses</span>"
                if unlike
                else ""
            )
            + (" · each averaged with its mirror image" if with_.flip_averaged and good else "")
            if results
            else "No images found there."
        )
        self.confidence_note.setText(f"{_sentence(with_.probability_note)} {_sentence(with_.domain_note)}")
        self.confidence_note.setVisible(bool(good))
        self.export_button.setEnabled(bool(results))
        self.predicted.emit(good)

    @staticmethod
    def _bars(result: Any) -> QWidget:
        cell = QWidget()
        layout = QVBoxLayout(cell)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        if result.error is not None:
            layout.addWidget(QLabel(f"⚠ {result.error}"))
        if result.out_of_domain:
            warning = QLabel(f"<span style='{WARNING_STYLE}'>⚠ {WARNING}</span>")
            warning.setObjectName("outOfDomain")
            warning.setToolTip(
                f"This image scores {result.domain_score:.3g} where the threshold is {result.domain_threshold:.3g}: "
                "it looks unlike every class the model was trained on, so whichever class it picks is a guess"
            )
            layout.addWidget(warning)
        for class_name, probability in result.top:
            layout.addWidget(ProbabilityBar(class_name, probability))
        return cell

    def shown_warning(self, row: int) -> bool:
        """Whether a row shows the out-of-domain warning."""
        label = self.table.cellWidget(row, 1).findChild(QLabel, "outOfDomain")
        return label is not None and WARNING in label.text()

    def shown_top(self, row: int) -> list[tuple[str, float]]:
        """(class, probability) as the bars of a row show them."""
        cell = self.table.cellWidget(row, 1)
        return [(bar.class_name, bar.probability) for bar in cell.findChildren(ProbabilityBar)]

    # ---- CSV -----------------------------------------------------------------------------------
    def export_csv_dialog(self) -> None:
        start = dialogs.start_folder(self._dataset_folder(), "predictions.csv")
        path, _ = QFileDialog.getSaveFileName(self, "Export predictions", start, "CSV (*.csv)")
        if path:
            dialogs.remember_folder(path)
            self.export_csv(path)

    def export_csv(self, path: str) -> None:
        run_in_background(
            self,
            write_csv,
            self.results,
            path,
            on_done=lambda written: self.status.setText(f"Saved {written}"),
            on_error=lambda failure: dialogs.show_error(self, "Could not save the CSV", failure.message),
        )
