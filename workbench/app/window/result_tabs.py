"""How the result tabs (evaluation, predictions, feature-map inspector, run history) follow the run the user
trains or opens, hand runs and images to one another, and File → Export… of that run.

`ResultTabs` is owned by the main window, which builds the views and hands them over with the few things of
its own the wiring needs (the tab widget, the training and model panels, the dataset's folders, two
callbacks). The views never see one another: every arrow between tabs is drawn here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workbench.app.model.panel import SOURCE_FILE, SOURCE_PRETRAINED, SOURCE_RUN, SOURCE_SCRATCH
from workbench.app.runs.export_dialog import ExportDialog
from workbench.engine.errors import ConfigError
from workbench.engine.training import run_actions
from workbench.engine.training.config import dataset_roots

if TYPE_CHECKING:
    from PySide6.QtWidgets import QTabWidget, QWidget

    from workbench.app.evaluation.view import EvaluationView
    from workbench.app.inspector.view import InspectorView
    from workbench.app.model.panel import ModelPanel
    from workbench.app.predictions.view import PredictionsView
    from workbench.app.runs.view import RunsView
    from workbench.app.training.panel import TrainingPanel


class ResultTabs:
    def __init__(
        self,
        *,
        tabs: QTabWidget,
        training: TrainingPanel,
        model: ModelPanel,
        evaluation: EvaluationView,
        predictions: PredictionsView,
        inspector: InspectorView,
        runs: RunsView,
        dataset_folders: Callable[[], list[str]],
        load_dataset: Callable[[list[str]], None],
        show_message: Callable[[str], None],
        dialog_parent: QWidget,
    ):
        self._tabs = tabs
        self._training = training
        self._model = model
        self.evaluation = evaluation
        self.predictions = predictions
        self.inspector = inspector
        self.runs = runs
        self._dataset_folders = dataset_folders
        self._load_dataset = load_dataset
        self._show_message = show_message
        self._dialog_parent = dialog_parent
        self.export_dialog: ExportDialog | None = None
        self.pending_clone: dict[str, Any] | None = None  # a clone's settings, applied once its dataset is open

        tabs.currentChanged.connect(self._on_tab_changed)
        training.run_started.connect(lambda event: self.follow_run(event.run_id))
        training.run_finished.connect(lambda event: self.follow_run(event.run_id))
        # The inspector can follow a run's newest checkpoint while it trains: tell it of each one saved.
        training.checkpoint_saved.connect(lambda _path: inspector.checkpoint_saved(training.last_run_id))
        runs.run_opened.connect(lambda record: self.follow_run(record.run_id))
        runs.evaluate_requested.connect(self.evaluate_run)
        runs.inspect_requested.connect(self.inspect_run)
        runs.clone_requested.connect(self.clone_run_settings)
        evaluation.inspect_requested.connect(self.inspect_image)

    def follow_run(self, run_id: str | None) -> None:
        """Point the result views' run pickers at `run_id` (a run just started, finished or opened)."""
        if not run_id:
            return
        for view in (self.evaluation, self.predictions, self.inspector):
            view.runs.refresh(select=run_id)
        self.runs.refresh()

    def evaluate_run(self, run_id: str) -> None:
        self._tabs.setCurrentWidget(self.evaluation)
        self.evaluation.set_run(run_id)
        self.evaluation.evaluate(run_id)

    def inspect_run(self, run_id: str) -> None:
        self._tabs.setCurrentWidget(self.inspector)
        self.inspector.set_run(run_id)

    def inspect_image(self, path: str) -> None:
        """An image from the evaluation galleries, in the inspector with the evaluated run's model."""
        view = self.inspector
        run_id = self.evaluation.runs.current_run_id()
        if run_id and (view.inspector is None or view.runs.current_run_id() != run_id):
            view.set_run(run_id)
        view.set_image(path)
        self._tabs.setCurrentWidget(view)

    def clone_run_settings(self, record: Any) -> None:
        """A past run's settings into the training panel (the engine's run_actions.clone_settings): model,
        starting weights, image size, hyperparameters and (if still there) its data; Train then runs them
        again as a new run."""
        settings = run_actions.clone_settings(record)
        try:
            folders = dataset_roots(settings.get("data"))
        except ConfigError:
            folders = []
        if folders and all(os.path.isdir(f) for f in folders) and folders != self._dataset_folders():
            self.pending_clone = settings  # opening the dataset would put its own image size and model back
            self._load_dataset(folders)
        else:
            self.apply_clone(settings)
        self._tabs.setCurrentWidget(self._training)
        text = f"Settings of run {record.run_id} copied (model, weights, image size, hyperparameters): press Train."
        self._training.start_over(text)
        self._show_message(text)

    def take_pending_clone(self) -> dict[str, Any] | None:
        settings, self.pending_clone = self.pending_clone, None
        return settings

    def apply_clone(self, settings: dict[str, Any]) -> None:
        self._training.form.set_values(settings)
        model = settings.get("model")
        if model:
            self._model.select_model(model)
        weights = settings.get("weights")
        if weights and os.path.isfile(os.path.expanduser(str(weights))):
            self._model.set_weights_source(SOURCE_FILE)
            self._model.start_from.weights_path.setText(str(weights))
        elif weights:
            combo = self._model.run_combo
            if combo.findData(weights) < 0:
                combo.addItem(str(weights), weights)
            combo.setCurrentIndex(combo.findData(weights))
            self._model.set_weights_source(SOURCE_RUN)
        else:
            self._model.set_weights_source(SOURCE_PRETRAINED if settings.get("pretrained") else SOURCE_SCRATCH)
        strategy = settings.get("strategy")
        if strategy:
            box = self._model.start_from.strategy
            if box.findData(strategy) >= 0:
                box.setCurrentIndex(box.findData(strategy))

    def _on_tab_changed(self, _index: int) -> None:
        current = self._tabs.currentWidget()
        if current is self.runs:
            self.runs.refresh()
        elif current in (self.evaluation, self.predictions, self.inspector):
            current.runs.refresh()

    def current_run_id(self) -> str | None:
        """The run the user is looking at: selected in the runs view, else the last one trained."""
        selected = self.runs.selected_run_ids()
        return selected[0] if selected else self._training.last_run_id

    def open_export_dialog(self) -> ExportDialog:
        """File → Export…: the current run as ONNX, TorchScript or safetensors."""
        if self.export_dialog is None or not self.export_dialog.busy:
            self.export_dialog = ExportDialog(self.current_run_id(), self._dialog_parent)
        self.export_dialog.open()
        return self.export_dialog
