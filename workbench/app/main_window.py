"""The main window: dataset browser, model picker and training panel as tabs, menus, status bar, drops.

Importing this module imports no torch: the window paints first, then `start_background_setup()` imports
the engine in a worker (device name, model zoo) while the user looks at the window.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSizePolicy,
    QTabWidget,
    QWidget,
)

from workbench import __version__
from workbench.app import dialogs, none_guard
from workbench.app.cluster_dialog import ClusterDialog
from workbench.app.dataset_panel import DatasetPanel
from workbench.app.evaluation_view import EvaluationView
from workbench.app.export_dialog import ExportDialog
from workbench.app.gc_pump import UiThreadGarbageCollector
from workbench.app.inspector_view import InspectorView
from workbench.app.lazy import build_all
from workbench.app.model_panel import ModelPanel
from workbench.app.predictions_view import PredictionsView
from workbench.app.runs_view import RunsView
from workbench.app.settings import AppSettings, sample_dataset_path
from workbench.app.training_panel import TrainingPanel
from workbench.app.workers import run_in_background
from workbench.engine.errors import ConfigError
from workbench.engine.training.config import TrainConfig

WINDOW_TITLE = "CNN Workbench"
NONE_GUARD_INTERVAL_MS = 1000
RUN_STATE_TEXT = {
    "idle": "idle",
    "starting": "preparing data…",
    "running": "training",
    "paused": "paused",
    "stopping": "stopping…",
    "finished": "run finished",
    "stopped": "run stopped",
    "failed": "run failed",
}


def dropped_folders(urls: list[Any]) -> list[str]:
    """The local folders among dropped URLs (files and remote URLs are ignored)."""
    return [url.toLocalFile() for url in urls if url.isLocalFile() and os.path.isdir(url.toLocalFile())]


class MainWindow(QMainWindow):
    shown = Signal()  # emitted once, just after the first paint

    def __init__(
        self,
        settings: AppSettings | None = None,
        *,
        offer_sample: bool = True,
        initial_folders: list[str] | None = None,
    ):
        super().__init__()
        self.settings = settings or AppSettings()
        self._offer_sample = offer_sample
        self._initial_folders = initial_folders
        self._shown_once = False
        self._started = False
        self._close_when_stopped = False
        self.setWindowTitle(WINDOW_TITLE)
        self.setAcceptDrops(True)
        self.resize(1400, 880)

        self.dataset_panel = DatasetPanel()
        self.model_panel = ModelPanel()
        self.training_panel = TrainingPanel(self.build_config)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.dataset_panel, "1  Dataset")
        self.tabs.addTab(self.model_panel, "2  Model")
        self.tabs.addTab(self.training_panel, "3  Train")
        self.setCentralWidget(self.tabs)
        self.tabs.installEventFilter(self)
        self._add_result_views()

        self.device_label = QLabel("device: detecting…")
        self.dataset_label = QLabel("no dataset")
        self.run_label = QLabel("idle")
        for label in (self.dataset_label, self.run_label, self.device_label):
            label.setContentsMargins(6, 0, 6, 0)
        # Status texts can be long (dataset path, GPU name): they may be cut, never widen the window.
        self.dataset_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.statusBar().addWidget(self.dataset_label, 1)
        self.statusBar().addPermanentWidget(self.run_label)
        self.statusBar().addPermanentWidget(self.device_label)

        self.dataset_panel.dataset_loaded.connect(self._on_dataset_loaded)
        self.dataset_panel.status_message.connect(self._show_status_message)
        self.model_panel.status_message.connect(self._show_status_message)
        self.model_panel.model_changed.connect(self._on_model_changed)
        self.training_panel.state_changed.connect(self._on_run_state)
        self.training_panel.run_finished.connect(lambda _event: self.model_panel.refresh_runs())
        self.training_panel.session_ended.connect(self._on_session_ended)
        self.training_panel.form.changed.connect(self._save_hyperparameters)
        # PySide6 6.12 on Python 3.11 leaks references to None (see none_guard): keep topping them up.
        self._none_guard = QTimer(self)
        self._none_guard.timeout.connect(none_guard.top_up)
        self._none_guard.start(NONE_GUARD_INTERVAL_MS)
        self._garbage_collector = UiThreadGarbageCollector(self)  # never collect in a worker thread
        self._build_menus()
        self.dataset_panel.connect_actions(self.open_dataset_dialog, self.open_sample_dataset)
        self._restore_settings()

    # ---- extension point for the evaluation / inspector / runs views (issue 5) ---------------------
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
        folders = [f for f in str(config.get("data", "")).split(os.pathsep) if f]
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

    # ---- menus and shortcuts -------------------------------------------------------------------
    def open_cluster_dialog(self) -> ClusterDialog | None:
        try:
            config = self.build_config()
        except Exception as exc:  # a bad form value: say which, keep the app usable
            dialogs.show_error(self, "Cannot build the training configuration", str(exc))
            return None
        dialog = ClusterDialog(config, self)
        dialog.show()
        return dialog

    def _action(
        self, text: str, slot: Any, shortcut: QKeySequence | str | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work whichever tab has focus
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.open_action = self._action(
            "&Open dataset folder…",
            self.open_dataset_dialog,
            QKeySequence.StandardKey.Open,
            "A folder of class sub-folders, or of train/val/test sub-folders",
        )
        self.open_classes_action = self._action(
            "Open &class folders…",
            self.open_class_folders_dialog,
            "Ctrl+Shift+O",
            "Several folders, each one class",
        )
        self.sample_action = self._action("Open &sample dataset (Fashion-MNIST)", self.open_sample_dataset)
        self.export_action = self._action(
            "&Export model…", self.open_export_dialog, "Ctrl+E", "ONNX, TorchScript or safetensors"
        )
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        for action in (self.open_action, self.open_classes_action, self.sample_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.export_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        train_menu = bar.addMenu("&Training")
        panel = self.training_panel
        self.train_action = self._action("&Train", panel.start, "Ctrl+Return")
        self.pause_action = self._action("&Pause / resume", panel.toggle_pause, "Ctrl+P")
        self.stop_action = self._action("&Stop (save checkpoint)", panel.stop, "Ctrl+.")
        self.continue_action = self._action(
            "&Continue training", panel.continue_training, "Ctrl+Shift+Return"
        )
        self.lr_find_action = self._action("&LR finder", panel.find_learning_rate, "Ctrl+L")
        self.cluster_action = self._action(
            "Save &configuration / train on a cluster…",
            self.open_cluster_dialog,
            "Ctrl+Shift+S",
            "The settings as TOML, and the torchrun command for several GPUs or nodes",
        )
        for action in (
            self.train_action,
            self.pause_action,
            self.stop_action,
            self.continue_action,
            self.lr_find_action,
        ):
            train_menu.addAction(action)
        train_menu.addSeparator()
        train_menu.addAction(self.cluster_action)

        view_menu = bar.addMenu("&View")
        for index, name in enumerate(
            ("&Dataset", "&Model", "T&raining", "&Evaluation", "&Predictions", "&Inspector", "R&uns")
        ):
            view_menu.addAction(
                self._action(name, lambda _=False, i=index: self.tabs.setCurrentIndex(i), f"Ctrl+{index + 1}")
            )

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&About", self._about))

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About CNN Workbench",
            f"<b>CNN Workbench {__version__}</b><p>Drag folders of labeled images onto the window, pick a CNN, "
            "train or fine-tune it and watch it learn.</p><p>Sample data: Fashion-MNIST © Zalando SE, MIT licence.</p>",
        )

    # ---- datasets ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and dropped_folders(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = dropped_folders(event.mimeData().urls())
        if not folders:
            event.ignore()
            self._show_status_message(
                "Drop folders, not files: a folder of class folders, or one folder per class."
            )
            return
        event.acceptProposedAction()
        self.load_dataset(folders)

    def load_dataset(self, folders: list[str]) -> None:
        self.tabs.setCurrentWidget(self.dataset_panel)
        form = self.training_panel.form.values()
        self.dataset_panel.load(folders, val_fraction=form["val_split"], seed=form["seed"])

    def open_dataset_dialog(self) -> None:
        start = self.dataset_panel.folders[0] if self.dataset_panel.folders else str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a dataset folder", start)
        if folder:
            self.load_dataset([folder])

    def open_class_folders_dialog(self) -> None:
        """Qt's native dialog picks one folder; the non-native one allows several (each a class)."""
        dialog = QFileDialog(self, "Choose one folder per class")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        for view in dialog.findChildren(QWidget):  # enable multi-selection in the dialog's views
            if hasattr(view, "setSelectionMode") and hasattr(view, "selectionMode"):
                view.setSelectionMode(view.SelectionMode.ExtendedSelection)
        if dialog.exec():
            folders = [f for f in dialog.selectedFiles() if os.path.isdir(f)]
            if folders:
                self.load_dataset(folders)

    def open_sample_dataset(self) -> None:
        path = sample_dataset_path()
        if not path.is_dir():
            dialogs.show_error(
                self, "Sample dataset missing", f"The bundled sample dataset is not at {path}."
            )
            return
        self.load_dataset([str(path)])

    def _on_dataset_loaded(self, summary: Any) -> None:
        self.settings.set_last_dataset(summary.folders)
        self.dataset_label.setText(summary.status_text())
        self.model_panel.set_dataset(summary)

    def _show_status_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    # ---- model and training --------------------------------------------------------------------
    def _on_model_changed(self, name: str) -> None:
        self.settings.set_last_model(name)

    def _save_hyperparameters(self) -> None:
        self.settings.set_hyperparameters(self.training_panel.form.to_settings())

    def build_config(self) -> TrainConfig:
        """The whole run's options: dataset from the browser, model and transfer from the picker, the rest from the form."""
        if self.dataset_panel.scanning:
            raise ConfigError("the dataset is still being scanned; wait for it or cancel it")
        if not self.dataset_panel.folders or self.dataset_panel.summary is None:
            raise ConfigError("no dataset: drop a folder of labeled images on the window, or use File → Open")
        model = self.model_panel.selected_model()
        if model is None:
            raise ConfigError("no model selected: pick one in the Model tab")
        options = self.training_panel.form.values()
        options.update(self.model_panel.transfer_options())
        return TrainConfig(data=os.pathsep.join(self.dataset_panel.folders), model=model, **options)

    def _on_run_state(self, state: str) -> None:
        text = RUN_STATE_TEXT.get(state, state)
        run_id = self.training_panel.last_run_id
        self.run_label.setText(f"{text}{f' · {run_id}' if run_id and state != 'idle' else ''}")
        busy = state in ("starting", "running", "paused", "stopping")
        self.dataset_panel.set_locked(busy)
        self.model_panel.setEnabled(not busy)
        if state in ("starting",):
            self.tabs.setCurrentWidget(self.training_panel)

    def _on_session_ended(self) -> None:
        if self._close_when_stopped:  # the user asked to quit while training: the run has now saved
            QTimer.singleShot(0, self.close)

    # ---- start-up ------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # The first paint of the tabs means the window is on screen: only then start the heavy imports.
        if watched is self.tabs and event.type() == QEvent.Type.Paint and not self._shown_once:
            self._shown_once = True
            self.tabs.removeEventFilter(self)
            QTimer.singleShot(0, self._after_first_paint)
        return super().eventFilter(watched, event)

    @property
    def started(self) -> bool:
        """True once the first paint has happened and the start-up work (engine import, last dataset) began."""
        return self._started

    def _after_first_paint(self) -> None:
        self._started = True
        self.shown.emit()
        self.start_background_setup()
        build_all(self)  # the charts, now that the window is on screen
        if self.dataset_panel.scanning or self.dataset_panel.summary is not None:
            return  # the user was quicker than the first paint: keep what they dropped
        folders = self._initial_folders or [f for f in self.settings.last_dataset() if os.path.isdir(f)]
        if folders:
            self.load_dataset(folders)
        elif self._offer_sample and not self.settings.sample_offered():
            self._offer_sample_dataset()

    def _offer_sample_dataset(self) -> None:
        self.settings.set_sample_offered(True)
        if not sample_dataset_path().is_dir():
            return
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Welcome to CNN Workbench",
            "Start with the bundled sample dataset (Fashion-MNIST: clothing pictures in 10 classes)?\n\n"
            "You can also drag folders of your own labeled images onto the window at any time.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("sampleOffer")
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Open the sample dataset")
        box.button(QMessageBox.StandardButton.No).setText("Not now")
        box.finished.connect(
            lambda _result: self.open_sample_dataset() if box.clickedButton() is yes else None
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def start_background_setup(self) -> None:
        """Import the engine off the UI thread: the device for the status bar, then the model zoo."""
        run_in_background(
            self,
            _describe_device,
            self.training_panel.form.device.currentText(),
            on_done=self.device_label.setText,
            on_error=lambda failure: self.device_label.setText(f"device: {failure.message}"),
        )
        self.model_panel.load_zoo(preferred=self.settings.last_model())

    # ---- settings ------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        self.training_panel.form.set_values(self.settings.hyperparameters())
        self.tabs.setCurrentIndex(min(self.settings.current_tab(), 2))

    def save_settings(self) -> None:
        self.settings.set_geometry(self.saveGeometry())
        self.settings.set_window_state(self.saveState())
        self.settings.set_current_tab(min(self.tabs.currentIndex(), 2))
        self._save_hyperparameters()
        if self.model_panel.selected_model():
            self.settings.set_last_model(self.model_panel.selected_model())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        panel = self.training_panel
        if panel.is_training:
            if self._close_when_stopped or dialogs.confirm(
                self, "Training in progress", "A run is training. Stop it (saving a checkpoint) and quit?"
            ):
                self._close_when_stopped = True
                panel.stop()
            event.ignore()  # close for real once the run has saved and ended
            return
        self.save_settings()
        self.shutdown_workers()
        super().closeEvent(event)

    def shutdown_workers(self, timeout_ms: int = 15000) -> None:
        """Cancel background work and wait for it, so no worker reports into a deleted window."""
        self.dataset_panel.shutdown()
        self.model_panel.shutdown()
        self.training_panel.shutdown()
        # superqt queues a worker's start on the event loop: let queued starts happen, then wait for all.
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        QThreadPool.globalInstance().waitForDone(timeout_ms)


def _describe_device(name: str) -> str:  # worker thread: imports torch
    from workbench.engine.device import describe_device, pick_device

    try:
        device = pick_device(name)
    except Exception:  # noqa: BLE001 - a device the form names but this machine lacks: show what auto picks
        device = pick_device("auto")
    return f"device: {describe_device(device)}"
