"""Issue 5's result tabs in the main window (evaluation, predictions, feature-map inspector, run history) and
how they follow the run the user trains or opens; File → Export… of that run.

`ResultTabsMixin` is a base class of `MainWindow`: its methods are the window's, so the views are
`window.evaluation_view`, `window.runs_view`, … and `window.follow_run(run_id)` points them at a run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from PySide6.QtWidgets import QTabWidget, QWidget

from workbench.app.evaluation_view import EvaluationView
from workbench.app.export_dialog import ExportDialog
from workbench.app.inspector_view import InspectorView
from workbench.app.predictions_view import PredictionsView
from workbench.app.runs_view import RunsView
from workbench.engine.errors import ConfigError
from workbench.engine.training.config import dataset_roots

if TYPE_CHECKING:
    from workbench.app.dataset_panel import DatasetPanel
    from workbench.app.model_panel import ModelPanel
    from workbench.app.training_panel import TrainingPanel


class ResultTabsMixin:
    # provided by the window this is mixed into
    tabs: QTabWidget
    dataset_panel: DatasetPanel
    model_panel: ModelPanel
    training_panel: TrainingPanel

    if TYPE_CHECKING:

        def load_dataset(self, folders: list[str]) -> None: ...
        def _show_status_message(self, text: str) -> None: ...

    def add_view(self, widget: QWidget, title: str) -> int:
        """Add a tab after the built-in ones; returns its index."""
        return self.tabs.addTab(widget, title)

    def _add_result_views(self) -> None:
        """Issue 5's views: evaluation, predictions, feature-map inspector, run history; they follow the run the
        user trains or opens."""
        self.evaluation_view = EvaluationView(curator_source=lambda: self.dataset_panel.curator)
        self.predictions_view = PredictionsView(
            dataset_folder_source=lambda: self.dataset_panel.folders[0] if self.dataset_panel.folders else ""
        )
        self.inspector_view = InspectorView()
        self.runs_view = RunsView()
        self.export_dialog: ExportDialog | None = None
        self.add_view(self.evaluation_view, "4  Evaluate")
        self.add_view(self.predictions_view, "5  Predict")
        self.add_view(self.inspector_view, "6  Inspect")
        self.add_view(self.runs_view, "7  Runs")
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.training_panel.run_started.connect(lambda event: self.follow_run(event.run_id))
        self.training_panel.run_started.connect(lambda _event: self._watch_checkpoints())
        self.training_panel.run_finished.connect(lambda event: self.follow_run(event.run_id))
        self.runs_view.run_opened.connect(lambda record: self.follow_run(record.run_id))
        self.runs_view.evaluate_requested.connect(self.evaluate_run)
        self.runs_view.inspect_requested.connect(self.inspect_run)
        self.runs_view.clone_requested.connect(self.clone_run_settings)
        self.evaluation_view.inspect_requested.connect(self.inspect_image)

    def follow_run(self, run_id: str | None) -> None:
        """Point the result views' run pickers at `run_id` (a run just started, finished or opened)."""
        if not run_id:
            return
        for view in (self.evaluation_view, self.predictions_view, self.inspector_view):
            view.runs.refresh(select=run_id)
        self.runs_view.refresh()

    def _watch_checkpoints(self) -> None:
        """The inspector can follow a run's newest checkpoint while it trains: tell it of each one saved."""
        session = self.training_panel.session
        if session is not None:
            session.events.connect(self._on_training_events)

    def _on_training_events(self, events: list[Any]) -> None:
        from workbench.engine.training.events import CheckpointSaved  # loaded already: a run is training

        if any(isinstance(event, CheckpointSaved) for event in events):
            self.inspector_view.checkpoint_saved(self.training_panel.last_run_id)

    def evaluate_run(self, run_id: str) -> None:
        self.tabs.setCurrentWidget(self.evaluation_view)
        self.evaluation_view.set_run(run_id)
        self.evaluation_view.evaluate(run_id)

    def inspect_run(self, run_id: str) -> None:
        self.tabs.setCurrentWidget(self.inspector_view)
        self.inspector_view.set_run(run_id)

    def inspect_image(self, path: str) -> None:
        """An image from the evaluation galleries, in the inspector with the evaluated run's model."""
        view = self.inspector_view
        run_id = self.evaluation_view.runs.current_run_id()
        if run_id and (view.inspector is None or view.runs.current_run_id() != run_id):
            view.set_run(run_id)
        view.set_image(path)
        self.tabs.setCurrentWidget(view)

    def clone_run_settings(self, record: Any) -> None:
        """A past run's settings into the training panel: hyperparameters, model and (if still there) data."""
        config = record.config
        self.training_panel.form.set_values(config)
        if record.model:
            self.model_panel.select_model(record.model)
        try:
            folders = dataset_roots(config.get("data"))
        except ConfigError:
            folders = []
        if folders and all(os.path.isdir(f) for f in folders) and folders != self.dataset_panel.folders:
            self.load_dataset(folders)
        self.tabs.setCurrentWidget(self.training_panel)
        self._show_status_message(f"Settings of run {record.run_id} copied: press Train to run them again.")

    def _on_tab_changed(self, _index: int) -> None:
        current = self.tabs.currentWidget()
        if current is self.runs_view:
            self.runs_view.refresh()
        elif current in (self.evaluation_view, self.predictions_view, self.inspector_view):
            current.runs.refresh()

    def current_run_id(self) -> str | None:
        """The run the user is looking at: selected in the runs view, else the last one trained."""
        selected = self.runs_view.selected_run_ids()
        return selected[0] if selected else self.training_panel.last_run_id

    def open_export_dialog(self) -> ExportDialog:
        """File → Export…: the current run as ONNX, TorchScript or safetensors."""
        if self.export_dialog is None or not self.export_dialog.busy:
            self.export_dialog = ExportDialog(self.current_run_id(), self)
        self.export_dialog.open()
        return self.export_dialog
