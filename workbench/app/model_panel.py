"""The model picker: the zoo as a searchable table, a Keras-style summary of the selected model at the
dataset's input size, the starting weights and the transfer strategy (preselected from the engine's advisor).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QItemSelection, QObject, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workbench.app import dialogs
from workbench.app.qt_compat import refilter
from workbench.app.workers import Failure, run_generator_in_background, run_in_background
from workbench.app.zoo_info import DEFAULT_INPUT, ZooRow, download_weights, training_size
from workbench.engine.errors import ConfigError
from workbench.engine.training.config import STRATEGIES

SortRole = Qt.ItemDataRole.UserRole + 10
NameRole = Qt.ItemDataRole.UserRole + 11
COLUMNS = ("Model", "Family", "Year", "Params", "MACs", "Input", "Pretrained")
DEFAULT_MODEL = "course_cnn"
STRATEGY_TEXT = {
    "feature-extractor": "feature extractor (freeze the body, train a new head)",
    "fine-tune-top": "fine-tune the top layers",
    "fine-tune-gradual": "head first, then unfreeze everything",
    "fine-tune-all": "fine-tune all layers",
}
SOURCE_SCRATCH, SOURCE_PRETRAINED, SOURCE_FILE, SOURCE_RUN = range(4)


def human_count(value: int | None) -> str:
    if value is None:
        return "–"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return str(value)


def _cell(text: str, sort_value: Any = None, tip: str = "") -> QStandardItem:
    item = QStandardItem(text)
    if isinstance(sort_value, int):
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setData(text.lower() if sort_value is None else sort_value, SortRole)
    item.setEditable(False)
    if tip:
        item.setToolTip(tip)
    return item


class ZooFilter(QSortFilterProxyModel):
    """Case-insensitive search over name, family and description; optionally only models with weights."""

    def __init__(self) -> None:
        super().__init__()
        self.setSortRole(SortRole)
        self._text = ""
        self.pretrained_only = False

    def set_search(self, text: str, pretrained_only: bool) -> None:
        def change() -> None:
            self._text, self.pretrained_only = text.strip().lower(), pretrained_only

        refilter(self, change)

    def filterAcceptsRow(self, source_row: int, source_parent: Any) -> bool:
        model = self.sourceModel()
        name_item = model.item(source_row, 0)
        if self.pretrained_only and model.item(source_row, 6).text() != "yes":
            return False
        haystack = " ".join([name_item.text(), model.item(source_row, 1).text(), name_item.toolTip()]).lower()
        return all(word in haystack for word in self._text.split())


class ModelPanel(QWidget):
    model_changed = Signal(str)
    status_message = Signal(str)
    zoo_loaded = Signal(int)  # number of models
    summary_shown = Signal(str)  # model name

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._specs: dict[str, Any] = {}
        self._input = DEFAULT_INPUT  # (typical image side, channels, classes)
        self._num_train = 0
        self._sweep: Any = None
        self._sweep_pending = False
        self._sweep_cache: dict[tuple[int, int, int], dict[str, ZooRow]] = {}
        self._summary_request = 0
        self._preferred: str | None = None
        self._download: Any = None
        self._download_stop = False
        self._runs: list[Any] = []
        self._unfreeze = 2  # top blocks to train under fine-tune-top (the advisor refines it)

        self.search = QLineEdit()
        self.search.setPlaceholderText(
            "Search models: name, family or description (e.g. 'resnet', 'mobile', '2014')"
        )
        self.search.setClearButtonEnabled(True)
        self.pretrained_only = QCheckBox("with pretrained weights only")
        self.input_label = QLabel()
        self.input_label.setObjectName("hintLabel")
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.pretrained_only)
        top.addWidget(self.input_label)

        self.zoo = QStandardItemModel(0, len(COLUMNS), self)
        self.zoo.setHorizontalHeaderLabels(list(COLUMNS))
        self.zoo_filter = ZooFilter()
        self.zoo_filter.setSourceModel(self.zoo)
        self.table = QTableView()
        self.table.setModel(self.zoo_filter)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.search.textChanged.connect(self._apply_search)
        self.pretrained_only.toggled.connect(self._apply_search)

        self.summary_title = QLabel("Select a model to see its layers")
        self.summary_title.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.summary_title.setWordWrap(True)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.summary_table = QTableWidget(0, 7)
        self.summary_table.setHorizontalHeaderLabels(
            ["Layer", "Type", "Output shape", "Params", "MACs", "RF", "Stride"]
        )
        self.summary_table.verticalHeader().setVisible(False)
        self.summary_table.verticalHeader().setDefaultSectionSize(20)
        self.summary_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.summary_table.setAlternatingRowColors(True)
        self.summary_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column, tip in enumerate(
            [
                "Module name",
                "Module type",
                "Output channels × height × width for one image",
                "Parameters (weights and biases)",
                "Multiply-accumulates for one image (FLOPs = 2 × MACs)",
                "Receptive field: side of the input window one output value sees, in pixels",
                "Cumulative stride: input pixels between neighbouring outputs",
            ]
        ):
            self.summary_table.horizontalHeaderItem(column).setToolTip(tip)
        self.totals = QLabel()
        self.totals.setWordWrap(True)
        summary_box = QWidget()
        summary_layout = QVBoxLayout(summary_box)
        summary_layout.setContentsMargins(0, 0, 0, 0)
        summary_layout.addWidget(self.summary_title)
        summary_layout.addWidget(self.description)
        summary_layout.addWidget(self.summary_table, 1)
        summary_layout.addWidget(self.totals)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.table)
        split.addWidget(summary_box)
        split.setSizes([620, 700])

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(self._build_weights_box())
        self._set_input_label()
        self._update_weights_controls()

    def _build_weights_box(self) -> QGroupBox:
        box = QGroupBox("Starting weights and transfer learning")
        self.source_group = QButtonGroup(self)
        self.scratch_radio = QRadioButton("From scratch")
        self.scratch_radio.setToolTip("Random initialization: every layer learns from your images only")
        self.pretrained_radio = QRadioButton("ImageNet weights")
        self.pretrained_radio.setToolTip(
            "Start from the model's ImageNet-pretrained weights (torchvision download)"
        )
        self.file_radio = QRadioButton("Weights file")
        self.file_radio.setToolTip("A torchvision-style state dict (.pth, .pt or .safetensors)")
        self.run_radio = QRadioButton("Earlier run")
        self.run_radio.setToolTip("Start from the weights of one of your earlier runs")
        for index, radio in enumerate(
            (self.scratch_radio, self.pretrained_radio, self.file_radio, self.run_radio)
        ):
            self.source_group.addButton(radio, index)
        self.scratch_radio.setChecked(True)
        self.source_group.idToggled.connect(lambda _id, on: on and self._on_source_changed())
        self.download_button = QPushButton("Download now")
        self.download_button.setToolTip(
            "Fetch the ImageNet weights into torch's cache (otherwise done when training starts)"
        )
        self.download_button.clicked.connect(self.download_selected_weights)
        self.weights_path = QLineEdit()
        self.weights_path.setPlaceholderText("a .pth / .pt / .safetensors state dict")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_weights)
        self.run_combo = QComboBox()
        self.similar_domain = QComboBox()
        self.similar_domain.addItems(
            ["similar to ImageNet photos", "different from ImageNet (X-rays, drawings, grey…)"]
        )
        self.similar_domain.setToolTip("The transfer advisor weighs how much pretrained features carry over")
        self.strategy = QComboBox()
        for key in STRATEGIES:
            self.strategy.addItem(STRATEGY_TEXT.get(key, key), key)
        for combo in (self.run_combo, self.similar_domain, self.strategy):
            # Long entries must not set the window's minimum width: the combo elides, its popup shows all.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
        self.advice_label = QLabel()
        self.advice_label.setObjectName("hintLabel")
        self.advice_label.setWordWrap(True)
        self.similar_domain.currentIndexChanged.connect(self._request_advice)

        grid = QGridLayout(box)
        grid.addWidget(self.scratch_radio, 0, 0)
        grid.addWidget(self.pretrained_radio, 1, 0)
        grid.addWidget(self.download_button, 1, 1)
        grid.addWidget(self.file_radio, 2, 0)
        grid.addWidget(self.weights_path, 2, 1, 1, 2)
        grid.addWidget(browse, 2, 3)
        grid.addWidget(self.run_radio, 3, 0)
        grid.addWidget(self.run_combo, 3, 1, 1, 3)
        grid.addWidget(QLabel("Your images are"), 0, 4)
        grid.addWidget(self.similar_domain, 0, 5)
        grid.addWidget(QLabel("Strategy"), 1, 4)
        grid.addWidget(self.strategy, 1, 5)
        grid.addWidget(self.advice_label, 2, 4, 2, 2)
        grid.setColumnStretch(2, 1)
        grid.setColumnStretch(5, 1)
        return box

    # ---- zoo -----------------------------------------------------------------------------------
    def load_zoo(self, preferred: str | None = None) -> None:
        """List the zoo in the background (imports the engine), then fill in sizes model by model."""
        from workbench.app.zoo_info import list_specs

        self._preferred = preferred
        run_in_background(self, list_specs, on_done=self._on_specs, on_error=self._on_zoo_failed)
        self.refresh_runs()

    def _on_specs(self, specs: list[Any]) -> None:
        self._specs = {spec.name: spec for spec in specs}
        self.table.setSortingEnabled(False)
        self.zoo.removeRows(0, self.zoo.rowCount())
        for spec in specs:
            size = training_size(spec, self._input[0])
            row = [
                _cell(spec.name, tip=spec.description),
                _cell(spec.family),
                _cell(str(spec.year), spec.year),
                _cell("…", -1),
                _cell("…", -1),
                _cell(f"{size}px", size),
                _cell("yes" if spec.pretrained else "–"),
            ]
            row[0].setData(spec.name, NameRole)
            self.zoo.appendRow(row)
        self.table.setSortingEnabled(True)
        self.zoo_loaded.emit(len(specs))
        wanted = self._preferred if self._preferred in self._specs else DEFAULT_MODEL
        if wanted in self._specs and self.selected_model() is None:
            self.select_model(wanted)
        self._start_sweep()

    def _on_zoo_failed(self, failure: Failure) -> None:
        self.summary_title.setText(f"Cannot load the model zoo: {failure.message}")
        dialogs.show_error(
            self, "Model zoo", failure.message, "" if failure.is_user_error else failure.details
        )

    def _start_sweep(self) -> None:
        """Fill the Params/MACs columns for the current input size: from the cache, else in the background.

        The sweep summarizes every model, so it runs only while the table is on screen (a user who never
        opens the Model tab costs no CPU), and its rows are kept per input size.
        """
        from workbench.app.zoo_info import zoo_rows

        if self._sweep is not None:
            self._sweep.quit()
            self._sweep = None
        cached = self._sweep_cache.setdefault(self._input, {})
        for row in cached.values():
            self._on_zoo_row(row)
        missing = [spec for name, spec in self._specs.items() if name not in cached]
        if not missing or not self.isVisible():
            self._sweep_pending = bool(missing)
            return
        self._sweep_pending = False
        size, channels, classes = self._input
        self._sweep = run_generator_in_background(
            self,
            zoo_rows,
            missing,
            size,
            channels,
            classes,
            on_yield=self._on_zoo_row,
            on_error=lambda failure: None,
        )

    def _reset_size_cells(self) -> None:
        """Blank the Params/MACs columns and set the Input column for a new dataset until the sweep refills."""
        for source_row in range(self.zoo.rowCount()):
            spec = self._specs.get(self.zoo.item(source_row, 0).data(NameRole))
            for column in (3, 4):
                self.zoo.item(source_row, column).setText("…")
                self.zoo.item(source_row, column).setData(-1, SortRole)
            if spec is not None:
                size = training_size(spec, self._input[0])
                self.zoo.item(source_row, 5).setText(f"{size}px")
                self.zoo.item(source_row, 5).setData(size, SortRole)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if self._sweep_pending:
            self._start_sweep()

    def sizes_known(self) -> int:
        """How many models have their parameters and MACs computed for the current input."""
        return len(self._sweep_cache.get(self._input, {}))

    def _on_zoo_row(self, row: ZooRow) -> None:
        self._sweep_cache.setdefault(row.dataset_input, {})[row.name] = row
        if row.dataset_input != self._input:
            return  # a late row from the sweep of a previous dataset
        for source_row in range(self.zoo.rowCount()):
            if self.zoo.item(source_row, 0).data(NameRole) != row.name:
                continue
            tip = row.error or f"at {row.img_size}×{row.img_size}×{self._input[1]}"
            for column, value in ((3, row.params), (4, row.macs)):
                item = self.zoo.item(source_row, column)
                item.setText(human_count(value))
                item.setData(-1 if value is None else value, SortRole)
                item.setToolTip(tip if value is None else f"{value:,} {tip}")
            size_item = self.zoo.item(source_row, 5)
            size_item.setText(f"{row.img_size}px")
            size_item.setData(row.img_size, SortRole)
            return

    def _apply_search(self) -> None:
        self.zoo_filter.set_search(self.search.text(), self.pretrained_only.isChecked())

    def model_names(self) -> list[str]:
        """Names in the order the table shows them (after search and sort)."""
        return [self.zoo_filter.index(r, 0).data(NameRole) for r in range(self.zoo_filter.rowCount())]

    # ---- selection and summary -----------------------------------------------------------------
    def selected_model(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(NameRole) if rows else None

    def select_model(self, name: str) -> bool:
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
            self.summary_title.setText(f"{name} — {spec.family}, {spec.year}")
            self.description.setText(spec.description)
        self._request_summary()
        self._request_advice()
        self.model_changed.emit(name)

    def _request_summary(self) -> None:
        from workbench.app.zoo_info import summary_for

        name = self.selected_model()
        spec = self._specs.get(name or "")
        if spec is None:
            return
        self._summary_request += 1
        request = self._summary_request
        size = training_size(spec, self._input[0])
        self.totals.setText(f"computing the summary at {size}×{size}×{self._input[1]}…")
        run_in_background(
            self,
            summary_for,
            spec.name,
            size,
            self._input[1],
            self._input[2],
            on_done=lambda summary: self._show_summary(request, summary),
            on_error=lambda failure: self._summary_failed(request, failure),
        )

    def _show_summary(self, request: int, summary: Any) -> None:
        if request != self._summary_request:
            return  # the user has selected another model since
        table = self.summary_table
        table.setRowCount(len(summary.layers))
        for row, layer in enumerate(summary.layers):
            values = [
                layer.name,
                layer.type,
                " × ".join(map(str, layer.output_shape)),
                f"{layer.params:,}" if layer.params else "",
                f"{layer.macs:,}" if layer.macs else "",
                str(layer.receptive_field or ""),
                str(layer.stride or ""),
            ]
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column >= 3:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                table.setItem(row, column, item)
        shape = "×".join(map(str, summary.input_shape))
        self.totals.setText(
            f"<b>{summary.total_params:,}</b> parameters ({summary.trainable_params:,} trainable) · "
            f"<b>{human_count(summary.macs)}</b> MACs = {human_count(summary.flops)} FLOPs per image · "
            f"input {shape} · {self._input[2]} classes"
        )
        self.summary_shown.emit(summary.model)

    def _summary_failed(self, request: int, failure: Failure) -> None:
        if request == self._summary_request:
            self.summary_table.setRowCount(0)
            self.totals.setText(f"⚠ {failure.message}")

    def summary_layer_names(self) -> list[str]:
        return [self.summary_table.item(r, 0).text() for r in range(self.summary_table.rowCount())]

    # ---- dataset -------------------------------------------------------------------------------
    def set_dataset(self, summary: Any) -> None:
        """A new dataset: sizes, MACs, the summary and the advice follow its image size and classes."""
        self._input = (
            summary.typical_size or DEFAULT_INPUT[0],
            summary.channels or DEFAULT_INPUT[1],
            max(len(summary.classes), 2),
        )
        self._num_train = summary.split_total("train")
        self.similar_domain.setCurrentIndex(0 if self._input[1] == 3 else 1)
        self._set_input_label()
        if self._specs:
            self._reset_size_cells()
            self._start_sweep()
            self._request_summary()
        self._request_advice()

    def _set_input_label(self) -> None:
        size, channels, classes = self._input
        self.input_label.setText(f"dataset: {size}×{size}×{channels}, {classes} classes")

    # ---- weights and transfer ------------------------------------------------------------------
    def weights_source(self) -> int:
        return self.source_group.checkedId()

    def set_weights_source(self, source: int) -> None:
        self.source_group.button(source).setChecked(True)

    def _on_source_changed(self) -> None:
        self._update_weights_controls()
        self._request_advice()

    def _update_weights_controls(self) -> None:
        spec = self._specs.get(self.selected_model() or "")
        has_weights = bool(spec is not None and spec.pretrained)
        self.pretrained_radio.setEnabled(has_weights)
        if not has_weights and self.pretrained_radio.isChecked():
            self.scratch_radio.setChecked(True)
        source = self.weights_source()
        self.download_button.setEnabled(
            has_weights and source == SOURCE_PRETRAINED and self._download is None
        )
        self.weights_path.setEnabled(source == SOURCE_FILE)
        self.run_combo.setEnabled(source == SOURCE_RUN)
        transfer = source != SOURCE_SCRATCH
        self.strategy.setEnabled(transfer)
        self.similar_domain.setEnabled(transfer)
        self.advice_label.setVisible(transfer)

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Weights file", "", "Weights (*.pth *.pt *.safetensors);;All files (*)"
        )
        if path:
            self.weights_path.setText(path)
            self.file_radio.setChecked(True)

    def refresh_runs(self) -> None:
        from workbench.app.zoo_info import earlier_runs

        run_in_background(self, earlier_runs, on_done=self._on_runs, on_error=lambda failure: None)

    def _on_runs(self, runs: list[Any]) -> None:
        current = self.run_combo.currentData()
        self._runs = runs
        self.run_combo.clear()
        for record in runs:
            acc = f" · val {100 * record.best_val_acc:.1f}%" if record.best_val_acc is not None else ""
            self.run_combo.addItem(f"{record.run_id} · {record.model} · {record.status}{acc}", record.run_id)
        if current is not None and self.run_combo.findData(current) >= 0:
            self.run_combo.setCurrentIndex(self.run_combo.findData(current))
        self.run_radio.setEnabled(bool(runs))

    def _request_advice(self) -> None:
        from workbench.app.zoo_info import advise

        name = self.selected_model()
        if name is None or self.weights_source() == SOURCE_SCRATCH:
            return
        similar = self.similar_domain.currentIndex() == 0
        run_in_background(
            self,
            advise,
            self._num_train,
            similar,
            name,
            self._input[1],
            self._input[2],
            on_done=self._show_advice,
            on_error=lambda failure: self.advice_label.setText(f"(no advice: {failure.message})"),
        )

    def _show_advice(self, advice: Any) -> None:
        index = self.strategy.findData(advice.strategy)
        if index >= 0:
            self.strategy.setCurrentIndex(index)
        self._unfreeze = advice.unfreeze_blocks
        self.advice_label.setText(f"Advisor: {advice.reason}")

    def transfer_options(self) -> dict[str, Any]:
        """TrainConfig fields for the chosen starting point."""
        source = self.weights_source()
        if source == SOURCE_SCRATCH:
            return {"pretrained": False, "weights": None, "strategy": "fine-tune-all"}
        options = {
            "pretrained": source == SOURCE_PRETRAINED,
            "weights": None,
            "strategy": self.strategy.currentData(),
        }
        if options["strategy"] == "fine-tune-top":
            options["unfreeze"] = max(1, self._unfreeze)
        if source == SOURCE_FILE:
            options["weights"] = self.weights_path.text().strip()
            if not options["weights"]:
                raise ConfigError(
                    "starting weights: choose a weights file (Model tab), or train from scratch"
                )
        elif source == SOURCE_RUN:
            options["weights"] = self.run_combo.currentData()
            if not options["weights"]:
                raise ConfigError(
                    "starting weights: choose an earlier run (Model tab), or train from scratch"
                )
        return options

    # ---- weight download -----------------------------------------------------------------------
    def download_selected_weights(self) -> None:
        name = self.selected_model()
        if name is None or self._download is not None:
            return
        self._download_stop = False
        dialog = dialogs.progress_dialog(
            self, "Downloading weights", f"ImageNet weights for {name}…", self._cancel_download, maximum=100
        )
        relay = _ProgressRelay()
        relay.progressed.connect(
            lambda done, total: (
                (dialog.setMaximum(100), dialog.setValue(int(100 * done / total)))
                if total
                else dialog.setMaximum(0)
            )
        )
        self._relay = relay

        def finish() -> None:
            dialog.close()
            self._download = None
            self._update_weights_controls()

        def failed(failure: Failure) -> None:
            if not self._download_stop:
                dialogs.show_error(
                    self, "Download failed", failure.message, "" if failure.is_user_error else failure.details
                )

        self._download = run_in_background(
            self,
            download_weights,
            name,
            relay.report,
            lambda: self._download_stop,
            on_done=self.status_message.emit,
            on_error=failed,
            on_finished=finish,
        )
        self._update_weights_controls()

    def shutdown(self) -> None:
        """Abandon the size sweep and any download (the window is closing)."""
        if self._sweep is not None:
            self._sweep.quit()
        self._download_stop = True

    def _cancel_download(self) -> None:
        self._download_stop = True


class _ProgressRelay(QObject):
    """Carries download progress (bytes done, total) from the worker to the dialog; one emit per 1 MiB chunk."""

    progressed = Signal(int, int)

    def report(self, done: int, total: int) -> None:  # worker thread
        self.progressed.emit(done, total)
