"""The main window: it builds every tab and composes them; no tab knows another.

Dataset browser, model picker and training panel come first, then the result tabs (evaluation, predictions,
inspector, run history). Importing this module imports no torch: the window paints first, then
`start_background_setup()` imports the engine in a worker (device name, model zoo) while the user looks at
the window.

Its parts live next to it: the menus in `menus`, the status bar in `status_bar`, the wiring between the
result tabs in `result_tabs`, what opens at start in `first_launch` and what is kept between launches in
`window_state` (through `settings`); drops and folder dialogs are the dataset tab's `opening`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject, QThreadPool, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QTabWidget

from workbench.app.dataset.opening import (
    DROP_FOLDERS_HINT,
    accept_folder_drag,
    choose_class_folders,
    choose_dataset_folder,
    take_dropped_folders,
)
from workbench.app.dataset.panel import DatasetPanel
from workbench.app.evaluation.view import EvaluationView
from workbench.app.inspector.view import InspectorView
from workbench.app.model.panel import ModelPanel
from workbench.app.predictions.view import PredictionsView
from workbench.app.qt import dialogs
from workbench.app.qt.gc_pump import UiThreadGarbageCollector
from workbench.app.qt.lazy import build_all
from workbench.app.qt.workers import run_in_background
from workbench.app.runs.export_dialog import ExportDialog
from workbench.app.runs.view import RunsView
from workbench.app.training.cluster_dialog import ClusterDialog
from workbench.app.training.panel import TrainingPanel
from workbench.app.window.first_launch import folders_to_open, offer_sample_dataset
from workbench.app.window.menus import MenuCommands, build_menus, tab_title
from workbench.app.window.model_choice import ModelChoiceMemory
from workbench.app.window.result_tabs import ResultTabs
from workbench.app.window.settings import DATASET_SETTINGS, AppSettings, sample_dataset_path
from workbench.app.window.status_bar import WindowStatus, device_status_text
from workbench.app.window.window_state import (
    restore_splitter,
    restore_window_settings,
    save_hyperparameters,
    save_splitter,
    save_window_settings,
)
from workbench.engine.errors import ConfigError
from workbench.engine.training.config import TrainConfig

WINDOW_TITLE = "CNN Workbench"
DEFAULT_SIZE = (1400, 880)  # a first launch (later ones restore the saved geometry); every table fits it
BUSY_RUN_STATES = ("starting", "running", "paused", "stopping")
# A dataset's saved model choice: a model the user picked, or "" for "Let the workbench choose". Entries
# written before it hold only "model" (whatever row was selected, the engine's pick included).


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
        self._settings_folders: list[str] = []  # the dataset whose own settings the form now holds
        # The saved model choice (a name, "" = the workbench chooses) until the zoo is there to show it; saves
        # meanwhile keep it, so a relaunch never turns the user's pick into the panel's default.
        self.setWindowTitle(WINDOW_TITLE)
        self.setAcceptDrops(True)
        self.resize(*DEFAULT_SIZE)

        self.dataset_panel = DatasetPanel()
        self.model_panel = ModelPanel()
        self.model_choice = ModelChoiceMemory(self.model_panel)  # kept with each dataset's settings
        self.training_panel = TrainingPanel(self.build_config, plan_inputs=self._plan_inputs)
        # the result tabs; the evaluation view relabels through the dataset browser's curator (one undo stack)
        self.evaluation_view = EvaluationView(curator_source=lambda: self.dataset_panel.curator)
        self.predictions_view = PredictionsView(dataset_folder_source=self._first_dataset_folder)
        self.inspector_view = InspectorView()
        self.runs_view = RunsView()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        # In TAB_NAMES' order: the titles come from menus.tab_title, as the View menu's items do.
        for index, widget in enumerate(
            (
                self.dataset_panel,
                self.model_panel,
                self.training_panel,
                self.evaluation_view,
                self.predictions_view,
                self.inspector_view,
                self.runs_view,
            )
        ):
            self.tabs.addTab(widget, tab_title(index))
        self.setCentralWidget(self.tabs)
        self.tabs.installEventFilter(self)
        self.result_tabs = ResultTabs(
            tabs=self.tabs,
            training=self.training_panel,
            model=self.model_panel,
            evaluation=self.evaluation_view,
            predictions=self.predictions_view,
            inspector=self.inspector_view,
            runs=self.runs_view,
            dataset_folders=lambda: self.dataset_panel.folders,
            load_dataset=self.load_dataset,
            show_message=self._show_status_message,
            dialog_parent=self,
        )

        self.status = WindowStatus(self.statusBar())
        self.device_label = self.status.device_label
        self.dataset_label = self.status.dataset_label
        self.run_label = self.status.run_label

        self.dataset_panel.dataset_loaded.connect(self._on_dataset_loaded)
        self.dataset_panel.status_message.connect(self._show_status_message)
        self.model_panel.status_message.connect(self._show_status_message)
        self.model_panel.model_changed.connect(self._on_model_changed)
        self.model_panel.zoo_loaded.connect(lambda _count: self.model_choice.show_pending())
        # Ticking or unticking "Let the workbench choose" changes what is trained without changing the row.
        self.model_panel.automatic.toggled.connect(lambda _on: self._on_model_choice_changed())
        self.model_panel.starting_point_changed.connect(self._on_model_choice_changed)  # weights, strategy
        self.training_panel.state_changed.connect(self._on_run_state)
        self.training_panel.run_finished.connect(lambda _event: self.model_panel.refresh_runs())
        self.training_panel.run_finished.connect(self._evaluate_finished_run)
        self._stopped_at: dict[str, int] = {}  # run id → epochs done, for runs the user stopped this session
        self.evaluation_view.evaluated.connect(self._say_where_the_run_stopped)
        self.training_panel.session_ended.connect(self._on_session_ended)
        # The zoo's speed column is timed only while no run trains (zoo_size_sweep.py).
        self.training_panel.run_started.connect(lambda _event: self.model_panel.set_training(True))
        self.training_panel.session_ended.connect(lambda: self.model_panel.set_training(False))
        self.training_panel.form.changed.connect(self._save_hyperparameters)
        # The Model tab's summary is of the network at the side the run will use.
        self.training_panel.form.changed.connect(
            lambda: self.model_panel.set_image_size(self.training_panel.form.values()["img_size"])
        )
        self.training_panel.form.advanced_toggled.connect(self.settings.set_advanced_shown)
        self._garbage_collector = UiThreadGarbageCollector(self)  # never collect in a worker thread

        panel = self.training_panel
        self.menu_actions = build_menus(
            self.menuBar(),
            self,
            MenuCommands(
                open_dataset=self.open_dataset_dialog,
                open_class_folders=self.open_class_folders_dialog,
                open_sample=self.open_sample_dataset,
                export=self.open_export_dialog,
                quit=self.close,
                train=panel.start,
                pause=panel.toggle_pause,
                stop=panel.stop,
                continue_training=panel.continue_training,
                lr_find=panel.find_learning_rate,
                save_configuration=self.open_cluster_dialog,
                show_tab=self.tabs.setCurrentIndex,
            ),
        )
        # the actions under the names tests and users' scripts reach them by
        self.open_action = self.menu_actions.open_dataset
        self.open_classes_action = self.menu_actions.open_class_folders
        self.sample_action = self.menu_actions.open_sample
        self.export_action = self.menu_actions.export
        self.quit_action = self.menu_actions.quit
        self.train_action = self.menu_actions.train
        self.pause_action = self.menu_actions.pause
        self.stop_action = self.menu_actions.stop
        self.continue_action = self.menu_actions.continue_training
        self.lr_find_action = self.menu_actions.lr_find
        self.cluster_action = self.menu_actions.save_configuration
        self.dataset_panel.connect_actions(self.open_dataset_dialog, self.open_sample_dataset)
        restore_window_settings(self.settings, self, self.tabs, self.training_panel.form)
        self.training_panel.form.set_advanced_shown(self.settings.advanced_shown())
        self._splitters = {
            "train_curves": self.training_panel.curves_splitter,
            "train_body": self.training_panel.body_splitter,
        }
        self._splitters_restored = False

    def _first_dataset_folder(self) -> str:
        return self.dataset_panel.folders[0] if self.dataset_panel.folders else ""

    # ---- result tabs (ResultTabs wires them) ----------------------------------------------------
    @property
    def export_dialog(self) -> ExportDialog | None:
        return self.result_tabs.export_dialog

    def open_export_dialog(self) -> ExportDialog:
        """File → Export…: the current run as ONNX, TorchScript or safetensors."""
        return self.result_tabs.open_export_dialog()

    def open_cluster_dialog(self) -> ClusterDialog | None:
        try:
            config = self.build_config()
        except Exception as exc:  # a bad form value: say which, keep the app usable
            dialogs.show_error(self, "Cannot build the training configuration", str(exc))
            return None
        dialog = ClusterDialog(config, self)
        dialog.show()
        return dialog

    # ---- datasets ------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        accept_folder_drag(event)

    def dropEvent(self, event: QDropEvent) -> None:
        folders = take_dropped_folders(event)
        if folders:
            self.load_dataset(folders)
        else:
            self._show_status_message(DROP_FOLDERS_HINT)

    def load_dataset(self, folders: list[str]) -> None:
        self.tabs.setCurrentWidget(self.dataset_panel)
        dialogs.set_dataset_folder(folders[0] if folders else None)  # file dialogs start in the dataset
        form = self.training_panel.form.values()
        self.dataset_panel.load(folders, val_fraction=form["val_split"], seed=form["seed"])

    def open_dataset_dialog(self) -> None:
        start = dialogs.start_folder(self.dataset_panel.folders[0] if self.dataset_panel.folders else None) or str(Path.home())
        folder = choose_dataset_folder(self, start)
        if folder:
            self.load_dataset([folder])

    def open_class_folders_dialog(self) -> None:
        # In the dataset's folder (its class folders are inside); for a dataset of several class folders, in
        # the folder they sit in side by side (inside one of them there are only images to see).
        current = self.dataset_panel.folders
        start = os.path.dirname(current[0]) if len(current) > 1 else (current[0] if current else None)
        folders = choose_class_folders(self, dialogs.start_folder(start))
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
        self.status.show_dataset(summary)
        self.model_panel.set_dataset(summary)
        clone = self.result_tabs.take_pending_clone()
        if clone is not None:  # a cloned run's own settings, not what this dataset had last time
            self._settings_folders = list(summary.folders)
            self.result_tabs.apply_clone(clone)
            note = ""
        else:
            note = self._apply_dataset_settings(summary.folders)
        self.training_panel.dataset_opened(summary.folders)  # the last run, on other folders, is no longer shown
        self.training_panel.refresh_plan()
        images = sum(summary.split_total(split) for split in summary.present_splits)
        next_step = (
            f"Dataset ready: {images:,} images in {len(summary.classes)} classes. Next: pick a model in "
            "2 Model (or let the workbench choose), then press Train in 3 Train."
        )
        self.training_panel.status_label.setText(next_step + (f" {note}" if note else ""))
        read_only = self.dataset_panel.curation.read_only and " Its files are read-only here (see the Dataset tab)."
        # After the dataset tab's own "Loaded …", which it sends once this slot returns: the next step stays up.
        QTimer.singleShot(0, self, lambda: self._show_status_message(next_step + read_only))
        self._garbage_collector.freeze_long_lived()

    # ---- settings that belong to one dataset (image size, model) -------------------------------
    def _apply_dataset_settings(self, folders: list[str]) -> str:
        """This dataset's own image size and model, as left the last time it was open; for a dataset never
        seen, the image size goes back to automatic and the returned note says so (empty: nothing to say)."""
        stored = self.settings.dataset_settings(folders)
        form = self.training_panel.form
        self._settings_folders = list(folders)
        if stored is not None:
            form.set_values({k: v for k, v in stored.items() if k in DATASET_SETTINGS})
            if not self.model_choice.restore(stored) and stored.get("model"):  # saved before the choice itself was: the selected row
                self.model_panel.select_model(stored["model"], by_user=False)
            return ""
        was = form.values().get("img_size")
        form.set_values({"img_size": None})
        self._save_dataset_settings()
        return f"(Image size set back to auto for this dataset: it was {was} px for another one.)" if was else ""

    def _save_dataset_settings(self) -> None:
        folders = self.dataset_panel.folders
        if not folders or self.dataset_panel.summary is None or list(folders) != self._settings_folders:
            return  # not yet the settings of this dataset: they are put in place as it opens
        values = {k: v for k, v in self.training_panel.form.values().items() if k in DATASET_SETTINGS}
        self.settings.set_dataset_settings(list(folders), values | self.model_choice.fields())

    def _on_model_choice_changed(self) -> None:
        """A model picked, the box ticked or unticked, or the starting weights changed: remember it, and the
        Train tab's plan follows."""
        if not self.model_choice.pending:
            self.settings.set_last_model(self.model_choice.choice())
            self._save_dataset_settings()
        self.training_panel.refresh_plan()

    def _plan_inputs(self) -> dict[str, Any] | None:
        """What the engine needs to say what Train will train: the dataset's image size, channels, images."""
        summary = self.dataset_panel.summary
        if summary is None or self.dataset_panel.scanning:
            return None
        train = summary.split_total("train")
        if "val" not in summary.present_splits:
            train = int(train * (1 - self.training_panel.form.values()["val_split"]))
        return {
            "typical_size": summary.typical_size or 28,
            "channels": summary.channels or 3,
            "num_train_images": max(train, 1),
        }

    def _show_status_message(self, text: str) -> None:
        self.status.show_message(text)

    # ---- model and training --------------------------------------------------------------------
    def _on_model_changed(self, _name: str) -> None:
        self.training_panel.forget_start_from_run()
        self._on_model_choice_changed()

    def _save_hyperparameters(self) -> None:
        save_hyperparameters(self.settings, self.training_panel.form)
        self._save_dataset_settings()

    def build_config(self) -> TrainConfig:
        """The whole run's options: dataset from the browser, model and transfer from the picker, the rest from the form."""
        if self.dataset_panel.scanning:
            raise ConfigError("the dataset is still being scanned; wait for it or cancel it")
        if not self.dataset_panel.folders or self.dataset_panel.summary is None:
            raise ConfigError("no dataset: drop a folder of labeled images on the window, or use File → Open")
        options = self.training_panel.form.values()
        model = self.model_panel.chosen_model()
        if model is None and not self.model_panel.automatic.isChecked():
            raise ConfigError("no model selected: pick one in the Model tab")
        if model is not None:  # "Let the workbench choose": the engine decides model, weights and recipe
            options.update(self.model_panel.transfer_options())
        return TrainConfig(data=list(self.dataset_panel.folders), model=model, **options)

    def _on_run_state(self, state: str) -> None:
        self.status.show_run_state(state, self.training_panel.last_run_id)
        busy = state in BUSY_RUN_STATES
        self.dataset_panel.set_locked(busy)
        self.model_panel.setEnabled(not busy)
        if state in ("starting",):
            self.tabs.setCurrentWidget(self.training_panel)

    def _evaluate_finished_run(self, event: Any) -> None:
        """A run that finished, or that the user stopped once it had saved a checkpoint, is evaluated in the
        background at once: its Evaluate tab is ready when opened (a stopped run's says where it stopped)."""
        status = getattr(event, "status", None)
        if status not in ("finished", "stopped") or not getattr(event, "checkpoint", None):
            return
        if status == "stopped":
            self._stopped_at[event.run_id] = event.epochs
        else:
            self._stopped_at.pop(event.run_id, None)
        self.evaluation_view.set_run(event.run_id)
        # The run's own measurement (its test split, else its validation split): a split picked by hand for
        # an earlier run may not exist in this one's folder.
        self.evaluation_view.split.setCurrentText("auto")
        self.evaluation_view.evaluate(event.run_id)

    def _say_where_the_run_stopped(self, _report: Any) -> None:
        """The Evaluate tab shows a stopped run's figures: say it is not a finished run's, and at which epoch."""
        view = self.evaluation_view
        evaluated = getattr(view, "evaluated_with", None)
        epochs = self._stopped_at.get(evaluated.run_id) if evaluated is not None else None
        if epochs is not None:
            view.summary.setText(
                f"<b>Run stopped at epoch {epochs}</b> (Stop): these are the figures of its checkpoint "
                f"{evaluated.checkpoint} from the epochs it trained; Continue training (Train tab) goes on.<br>"
                + view.summary.text()
            )

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
        for name, splitter in self._splitters.items():  # laid out now: the saved sizes can be checked
            restore_splitter(self.settings, name, splitter)
        self._splitters_restored = True
        self.shown.emit()
        self.start_background_setup()
        build_all(self)  # the charts, now that the window is on screen
        if self.dataset_panel.scanning or self.dataset_panel.summary is not None:
            return  # the user was quicker than the first paint: keep what they dropped
        folders = folders_to_open(self._initial_folders, self.settings)
        if folders:
            self.load_dataset(folders)
        elif self._offer_sample and not self.settings.sample_offered():
            offer_sample_dataset(self, self.settings, self.open_sample_dataset)

    def start_background_setup(self) -> None:
        """Import the engine off the UI thread: the device for the status bar, then the model zoo."""
        run_in_background(
            self,
            device_status_text,
            self.training_panel.form.device.currentText(),
            on_done=self.status.show_device,
            on_error=self.status.show_device_failure,
        )
        last = self.settings.dataset_settings(self.settings.last_dataset()) or {}
        if self.model_choice.hold(last):  # the user's own choice for that dataset, shown once the zoo is listed
            self.model_panel.load_zoo()
        else:  # older settings: the panel tells the engine's pick from the user's
            self.model_panel.load_zoo(preferred=last.get("model") or self.settings.last_model())

    # ---- closing -------------------------------------------------------------------------------
    def save_settings(self) -> None:
        if self._splitters_restored:
            for name, splitter in self._splitters.items():
                save_splitter(self.settings, name, splitter)
        self._save_dataset_settings()
        self.settings.set_last_model(self.model_choice.choice())  # "" = the workbench chooses
        save_window_settings(self.settings, self, self.tabs, self.training_panel.form, None)

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
