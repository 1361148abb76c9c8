"""The model picker: the zoo as a searchable table, a Keras-style summary of the selected model at the
dataset's input size, the starting weights and the transfer strategy (preselected from the engine's advisor).

This module assembles the pieces and runs their background work; the pieces live in zoo_table.py,
zoo_size_sweep.py, layer_summary.py, start_from.py and weights_download.py.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QItemSelection, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QLineEdit, QSplitter, QVBoxLayout, QWidget

from workbench.app.model.layer_summary import LayerSummaryView
from workbench.app.model.start_from import (
    SOURCE_FILE,
    SOURCE_PRETRAINED,
    SOURCE_RUN,
    SOURCE_SCRATCH,
    STRATEGY_TEXT,
    TITLE,
    TITLE_WHILE_AUTOMATIC,
    StartFromBox,
)
from workbench.app.model.weights_download import WeightsDownload
from workbench.app.model.zoo_info import DEFAULT_INPUT, ZooRow
from workbench.app.model.zoo_size_sweep import ZooSizeSweep
from workbench.app.model.zoo_table import (
    COLUMNS,
    NameRole,
    SortRole,
    ZooFilter,
    ZooModel,
    human_count,
    needed_width,
    zoo_view,
)
from workbench.app.qt.wording import app_message
from workbench.app.qt.workers import BackgroundJob, Failure, report_failure, run_in_background
from workbench.engine.training.policy import FEW_IMAGES

# Names that lived here before the split, still importable from this module.
__all__ = [
    "COLUMNS",
    "DEFAULT_MODEL",
    "SOURCE_FILE",
    "SOURCE_PRETRAINED",
    "SOURCE_RUN",
    "SOURCE_SCRATCH",
    "STRATEGY_TEXT",
    "ModelPanel",
    "NameRole",
    "SortRole",
    "ZooFilter",
    "human_count",
]

DEFAULT_MODEL = "course_cnn"
SUMMARY_MIN_WIDTH = 420  # the layer summary beside the zoo keeps at least this much (its seven columns)


class ModelPanel(QWidget):
    model_changed = Signal(str)
    status_message = Signal(str)
    zoo_loaded = Signal(int)  # number of models
    summary_shown = Signal(str)  # model name
    starting_point_changed = Signal()  # the starting weights or transfer strategy of the user's pick

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._specs: dict[str, Any] = {}
        self._input = DEFAULT_INPUT  # (typical image side, channels, classes)
        self._num_train = 0
        self._img_size: int | None = None  # the image size set on the Train tab (None: the engine picks)
        self._sweep = ZooSizeSweep(self, self._on_zoo_row)
        # One job per question about the selection: a newer question supersedes the answer still coming.
        self._summary_job = BackgroundJob(self)
        self._summary_job.done.connect(self._show_summary)
        self._summary_job.failed.connect(self._summary_failed)
        self._choice_job = BackgroundJob(self)
        self._choice_job.done.connect(self._on_choice)
        self._choice_job.failed.connect(
            lambda failure: self.choice_label.setText(f"(cannot work out the default: {failure.message})")
        )
        self._split_job = BackgroundJob(self)
        self._split_job.done.connect(lambda split: self.layer_summary.show_split(split))
        self._preferred: str | None = None
        self._download = WeightsDownload(self, self.status_message.emit, self._after_download)
        self._weights_on_disk: dict[str, str] = {}  # model -> its weights file, "" while still to download
        self._dataset_loaded = False
        self._choice: Any = None  # the engine's DefaultChoice for the loaded dataset
        self._remembered: str | None = None  # the model remembered from the last session, until settled

        self.search = QLineEdit()
        self.search.setPlaceholderText(
            "Search models: name, family or description (e.g. 'resnet', 'mobile', '2014')"
        )
        self.search.setClearButtonEnabled(True)
        self.pretrained_only = QCheckBox("with pretrained weights only")
        self.automatic = QCheckBox("Let the workbench choose (recommended)")
        self.automatic.setChecked(True)
        self.automatic.setToolTip(
            "The engine picks the model, weights, image size and recipe from your images: below "
            f"{FEW_IMAGES:,} training images an ImageNet-pretrained EfficientNet-Lite0 (a linear head on its features in "
            "seconds, then fine-tuning), above that a network trained from scratch. The Train tab says what "
            "it chose and why. Picking a model in the table turns this off."
        )
        self.input_label = QLabel()
        self.input_label.setObjectName("hintLabel")
        self.choice_label = QLabel()
        self.choice_label.setObjectName("hintLabel")
        self.choice_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.automatic)
        top.addWidget(self.search, 1)
        top.addWidget(self.pretrained_only)
        top.addWidget(self.input_label)

        self.zoo = ZooModel(self)
        self.zoo_filter = ZooFilter()
        self.zoo_filter.setSourceModel(self.zoo)
        self.table = zoo_view(self.zoo_filter)
        self.table.clicked.connect(lambda _index: self.automatic.setChecked(False))  # a user's own pick
        self.automatic.toggled.connect(self._on_automatic)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.search.textChanged.connect(self._apply_search)
        self.pretrained_only.toggled.connect(self._apply_search)

        self.layer_summary = LayerSummaryView()
        # Shortcuts kept from before the split (tests and the screenshot script read them).
        self.summary_table = self.layer_summary.table
        self.totals = self.layer_summary.totals

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(self.layer_summary)
        split.setSizes([780, 560])  # the zoo table has the wider rows; fit_zoo widens it to its columns
        self.split = split

        self.start_from = StartFromBox()
        self.start_from.source_changed.connect(self._on_source_changed)
        self.start_from.download_button.clicked.connect(self.download_selected_weights)
        self.start_from.similar_domain.currentIndexChanged.connect(self._request_advice)
        # Shortcuts kept from before the split (tests read them).
        self.pretrained_radio = self.start_from.pretrained_radio
        self.download_button = self.start_from.download_button
        self.run_combo = self.start_from.run_combo
        self.advice_label = self.start_from.advice_label

        self.start_from.strategy_changed.connect(self._request_split)
        self.start_from.changed.connect(self.starting_point_changed)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.choice_label)
        layout.addWidget(split, 1)
        layout.addWidget(self.start_from)
        self._on_automatic(self.automatic.isChecked())
        self._set_input_label()
        self._update_weights_controls()

    # ---- zoo -----------------------------------------------------------------------------------
    def load_zoo(self, preferred: str | None = None) -> None:
        """List the zoo in the background (imports the engine), then fill in sizes model by model.

        `preferred`: the model selected last time. With "Let the workbench choose" on, the table shows the
        engine's choice for the loaded dataset; a remembered model that differs from it was the user's own pick,
        and comes back as such (the box unticked). The window remembers every selection, the engine's
        included, so one equal to the engine's choice is taken for the engine's."""
        from workbench.app.model.zoo_info import list_specs

        self._preferred = preferred
        run_in_background(self, list_specs, on_done=self._on_specs, on_error=self._on_zoo_failed)
        self.refresh_runs()

    def _on_specs(self, specs: list[Any]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self.table.setSortingEnabled(False)
        self.zoo.set_specs(specs, self._input[0])
        self.table.setSortingEnabled(True)
        self.fit_zoo()
        self.zoo_loaded.emit(len(specs))
        if self._preferred in self._specs and self.selected_model() is None:
            self._remembered = self._preferred  # settled when the engine's choice for the dataset is known
            self.select_model(self._preferred, by_user=False)
        if self.automatic.isChecked() and self._dataset_loaded:
            self._request_choice()
        self._start_sweep()

    def _on_zoo_failed(self, failure: Failure) -> None:
        self.layer_summary.title.setText(f"Cannot load the model zoo: {failure.message}")
        report_failure(self, "Model zoo", failure)

    def _start_sweep(self) -> None:
        """Fill the Params/MACs columns for the current input size (see ZooSizeSweep)."""
        self._sweep.start(self._specs, self._input)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._sweep.pending:
            self._start_sweep()

    def set_training(self, training: bool) -> None:
        """A training run started or ended in the app: the zoo's speed column is timed only when none runs."""
        self._sweep.set_training(training)

    def sizes_known(self) -> int:
        """How many models have their parameters and MACs computed for the current input."""
        return self._sweep.known(self._input)

    def _on_zoo_row(self, row: ZooRow) -> None:
        if row.dataset_input != self._input:
            return  # a late row from the sweep of a previous dataset
        self.zoo.show_sizes(row, self._input[1])
        self.fit_zoo()

    def fit_zoo(self) -> None:
        """Give the zoo table the width its columns need (none cut at the right edge, Input and Pretrained
        included), as far as the layer summary keeps SUMMARY_MIN_WIDTH."""
        sizes = self.split.sizes()
        total = sum(sizes)
        wanted = min(needed_width(self.table), total - SUMMARY_MIN_WIDTH)
        if total > 0 and wanted > sizes[0]:
            self.split.setSizes([wanted, total - wanted])

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.fit_zoo()

    def _apply_search(self) -> None:
        self.zoo_filter.set_search(self.search.text(), self.pretrained_only.isChecked())

    def model_names(self) -> list[str]:
        """Names in the order the table shows them (after search and sort)."""
        return self.zoo_filter.names()

    # ---- selection and summary -----------------------------------------------------------------
    def selected_model(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(NameRole) if rows else None

    def _on_automatic(self, automatic: bool) -> None:
        # The starting-point controls only apply to a model the user picked: greyed, they can't contradict
        # what the engine will choose.
        self.start_from.setEnabled(not automatic)
        self.start_from.setTitle(TITLE_WHILE_AUTOMATIC if automatic else TITLE)
        self.start_from.setToolTip(
            "The workbench chooses the weights and strategy; untick 'Let the workbench choose' to set them."
            if automatic
            else ""
        )
        self._show_choice_text()
        if automatic:
            self._request_choice()  # its answer brings the summary of the engine's network
        else:
            self._request_summary()  # the user's pick, as their starting weights will build it
        self._request_split()

    # ---- the engine's own choice ("Let the workbench choose") ----------------------------------
    def _request_choice(self) -> None:
        """Ask the engine which model it would train on the loaded dataset (the CLI's default too)."""
        from workbench.app.model.zoo_info import default_choice

        if not self._dataset_loaded or not self._specs:
            return
        self._choice_job.start(default_choice, self._input[0], self._input[1], self._num_train)

    def _on_choice(self, choice: Any) -> None:
        self._choice = choice
        self._show_choice_text()
        remembered, self._remembered = self._remembered, None
        if self.automatic.isChecked() and remembered is not None and remembered != choice.model:
            self.select_model(remembered)  # the user's own pick from last time: theirs again
            return
        if self.automatic.isChecked():
            if self.selected_model() == choice.model:
                self._request_summary()  # at the side the engine chose
            self.select_model(choice.model, by_user=False)
            self._request_split()

    def engine_choice(self) -> str | None:
        """The model the engine would train on the loaded dataset (None until known)."""
        return self._choice.model if self._choice is not None else None

    def _show_choice_text(self) -> None:
        if not self.automatic.isChecked():
            self.choice_label.setText("")
        elif self._choice is None:
            self.choice_label.setText(
                "The workbench picks the model once a dataset is loaded."
                if not self._dataset_loaded
                else "Working out which model suits this dataset…"
            )
        else:
            choice = self._choice
            weights = "ImageNet weights" if choice.pretrained else "random weights (from scratch)"
            why = _reason(choice.model, choice.notes[0] if choice.notes else "")
            self.choice_label.setToolTip("\n".join(map(app_message, choice.notes)))
            self.choice_label.setText(
                f"The workbench will train <b>{choice.model}</b> from {weights} at {choice.img_size} px"
                + (", linear head first (stage 1), then fine-tuning (stage 2)" if choice.linear_probe else "")
                + (f". Why: {html.escape(why)}" if why else "")
            )

    # ---- trainable vs frozen under the strategy that will be used ------------------------------
    def _split_options(self, name: str) -> dict[str, Any]:
        choice = self._choice
        if self.automatic.isChecked():
            if choice is not None and choice.model == name:
                return {"pretrained": choice.pretrained, "linear_probe": choice.linear_probe}
            return {}
        if self.weights_source() == SOURCE_SCRATCH:
            return {}
        return {
            "strategy": self.start_from.strategy.currentData(),
            "pretrained": True,
            "unfreeze": self.start_from.unfreeze_blocks(),
        }

    def _request_split(self) -> None:
        from workbench.app.model.zoo_info import parameter_split, planned_split

        name = self.selected_model()
        if name is None or name not in self._specs:
            return
        self.layer_summary.show_split(None)
        (side, channels, classes), options = self._input, self._split_options(name)
        if self.automatic.isChecked() or self.weights_source() != SOURCE_PRETRAINED:
            self._split_job.start(parameter_split, name, channels, classes, options)
        else:  # ImageNet weights: the engine decides whether a linear head comes first
            self._split_job.start(planned_split, name, channels, classes, side, self._num_train, options)

    def chosen_model(self) -> str | None:
        """The model to train, or None when the engine chooses ("Let the workbench choose")."""
        return None if self.automatic.isChecked() else self.selected_model()

    def select_model(self, name: str, *, by_user: bool = True) -> bool:
        if by_user:
            self.automatic.setChecked(False)
        for row in range(self.zoo_filter.rowCount()):
            index = self.zoo_filter.index(row, 0)
            if index.data(NameRole) == name:
                self.table.selectRow(row)
                self.table.scrollTo(index)
                return True
        return False

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        name = self.selected_model()
        if name is None:
            return
        spec = self._specs.get(name)
        self._update_weights_controls()
        if spec is not None:
            self.layer_summary.show_model(name, spec)
            if spec.pretrained and name not in self._weights_on_disk:
                self._request_weights_on_disk(name)
        self._request_summary()
        self._request_split()
        self._request_advice()
        self.model_changed.emit(name)

    def _request_summary(self) -> None:
        """The summary of the network a run will build, at the side it will train at: the engine decides both
        (its own choice, or the user's model from ImageNet weights or not: 96–224 px and stage 1's taps for
        pretrained networks, the images' side otherwise)."""
        from workbench.app.model.zoo_info import planned_summary, summary_for

        name = self.selected_model()
        spec = self._specs.get(name or "")
        if spec is None:
            return
        choice, (side, channels, classes) = self._choice, self._input
        if self.automatic.isChecked() and choice is not None and choice.model == spec.name:
            size = self._img_size or choice.img_size
            self.totals.setText(f"computing the summary at {size}×{size}×{channels}…")
            self._summary_job.start(summary_for, spec.name, size, channels, classes, choice.model_args)
            return
        pretrained = spec.pretrained and self.weights_source() == SOURCE_PRETRAINED
        self.totals.setText("computing the summary…")
        self._summary_job.start(
            planned_summary, spec.name, pretrained, side, channels, classes, self._num_train, self._img_size
        )

    def set_image_size(self, size: int | None) -> None:
        """The image size set on the Train tab (None: auto): the summary is of the network at that side."""
        if size != self._img_size:
            self._img_size = size
            self._request_summary()

    def _summary_failed(self, failure: Failure) -> None:
        """What to fix shows in the summary's place; a bug also gets its dialog, named after the job."""
        self.layer_summary.show_failure(app_message(failure.message))
        if not failure.is_user_error:
            report_failure(self, "Model summary failed", failure)

    def _show_summary(self, summary: Any) -> None:
        self.layer_summary.show_summary(summary, self._input[2])
        self.summary_shown.emit(summary.model)

    def summary_layer_names(self) -> list[str]:
        return self.layer_summary.layer_names()

    # ---- dataset -------------------------------------------------------------------------------
    def set_dataset(self, summary: Any) -> None:
        """A new dataset: sizes, MACs, the summary and the advice follow its image size and classes."""
        self._input = (
            summary.typical_size or DEFAULT_INPUT[0],
            summary.channels or DEFAULT_INPUT[1],
            max(len(summary.classes), 2),
        )
        self._num_train = summary.split_total("train")
        self._dataset_loaded = True
        self._choice = None
        self.start_from.assume_domain(self._input[1])
        self._set_input_label()
        self._show_choice_text()
        if self._specs:
            self.zoo.reset_sizes(self._specs, self._input[0])
            self._start_sweep()
            self._request_summary()
            self._request_split()
        if self.automatic.isChecked():
            self._request_choice()
        self._request_advice()

    def _set_input_label(self) -> None:
        size, channels, classes = self._input
        self.input_label.setText(f"dataset: {size}×{size}×{channels}, {classes} classes")

    # ---- weights and transfer ------------------------------------------------------------------
    def weights_source(self) -> int:
        return self.start_from.source()

    def set_weights_source(self, source: int) -> None:
        self.start_from.set_source(source)

    def _on_source_changed(self) -> None:
        self._update_weights_controls()
        self._request_advice()
        self._request_summary()  # ImageNet weights change the side the network trains at
        self._request_split()

    def _update_weights_controls(self) -> None:
        name = self.selected_model() or ""
        spec = self._specs.get(name)
        has_weights = bool(spec is not None and spec.pretrained)
        self.start_from.update_controls(
            has_weights, downloading=self._download.running, on_disk=self._weights_on_disk.get(name)
        )

    def _request_weights_on_disk(self, name: str) -> None:
        """Ask the engine whether `name`'s weights are already here (then there is nothing to download)."""
        from workbench.app.model.zoo_info import weights_on_disk

        run_in_background(
            self, weights_on_disk, name, on_done=self._on_weights_on_disk, on_error=lambda f: None
        )

    def _on_weights_on_disk(self, found: tuple[str, str]) -> None:
        name, path = found
        self._weights_on_disk[name] = path
        self._update_weights_controls()

    def _after_download(self) -> None:
        name = self.selected_model()
        self._weights_on_disk.clear()  # a download (or a failed one) changes what is on disk
        self._update_weights_controls()
        if name is not None:
            self._request_weights_on_disk(name)

    def refresh_runs(self) -> None:
        from workbench.app.model.zoo_info import earlier_runs

        run_in_background(self, earlier_runs, on_done=self.start_from.set_runs, on_error=lambda failure: None)

    def _request_advice(self) -> None:
        from workbench.app.model.zoo_info import advise

        name = self.selected_model()
        if name is None or self.weights_source() == SOURCE_SCRATCH:
            return
        run_in_background(
            self,
            advise,
            self._num_train,
            self.start_from.images_like_imagenet(),
            name,
            self._input[1],
            self._input[2],
            on_done=self.start_from.show_advice,
            on_error=lambda failure: self.advice_label.setText(f"(no advice: {failure.message})"),
        )

    def transfer_options(self) -> dict[str, Any]:
        """TrainConfig fields for the chosen starting point."""
        return self.start_from.transfer_options()

    # ---- weight download -----------------------------------------------------------------------
    def download_selected_weights(self) -> None:
        name = self.selected_model()
        if name is None or self._download.running:
            return
        self._download.start(name)
        self._update_weights_controls()

    def shutdown(self) -> None:
        """Abandon the size sweep and any download (the window is closing)."""
        self._sweep.stop()
        self._download.cancel()


def _reason(model: str, note: str) -> str:
    """The why of the engine's model note ("model X (why; choose another with --model)"), without the CLI hint."""
    prefix = f"model {model} ("
    if note.startswith(prefix):
        note = note[len(prefix) :].rstrip(")")
    return note.split("; choose another with --model")[0]
