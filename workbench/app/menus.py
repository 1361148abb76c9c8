"""The main window's menu bar: File, Training, View and Help, each item a QAction with its shortcut.

`build_menus(window)` stores the actions on the window (`window.open_action`, `window.train_action`, …) and
adds each to the window itself, so its shortcut works whichever tab has focus.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox, QWidget

from workbench import __version__

if TYPE_CHECKING:
    from workbench.app.main_window import MainWindow

TAB_MENU_NAMES = ("&Dataset", "&Model", "T&raining", "&Evaluation", "&Predictions", "&Inspector", "R&uns")


def add_action(
    window: QWidget, text: str, slot: Any, shortcut: QKeySequence | str | None = None, tip: str = ""
) -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    action.triggered.connect(slot)
    window.addAction(action)  # shortcuts work whichever tab has focus
    return action


def build_menus(window: MainWindow) -> None:
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    window.open_action = add_action(
        window,
        "&Open dataset folder…",
        window.open_dataset_dialog,
        QKeySequence.StandardKey.Open,
        "A folder of class sub-folders, or of train/val/test sub-folders",
    )
    window.open_classes_action = add_action(
        window,
        "Open &class folders…",
        window.open_class_folders_dialog,
        "Ctrl+Shift+O",
        "Several folders, each one class",
    )
    window.sample_action = add_action(
        window, "Open &sample dataset (Fashion-MNIST)", window.open_sample_dataset
    )
    window.export_action = add_action(
        window, "&Export model…", window.open_export_dialog, "Ctrl+E", "ONNX, TorchScript or safetensors"
    )
    window.quit_action = add_action(window, "&Quit", window.close, QKeySequence.StandardKey.Quit)
    for action in (window.open_action, window.open_classes_action, window.sample_action):
        file_menu.addAction(action)
    file_menu.addSeparator()
    file_menu.addAction(window.export_action)
    file_menu.addSeparator()
    file_menu.addAction(window.quit_action)

    train_menu = bar.addMenu("&Training")
    panel = window.training_panel
    window.train_action = add_action(window, "&Train", panel.start, "Ctrl+Return")
    window.pause_action = add_action(window, "&Pause / resume", panel.toggle_pause, "Ctrl+P")
    window.stop_action = add_action(window, "&Stop (save checkpoint)", panel.stop, "Ctrl+.")
    window.continue_action = add_action(
        window, "&Continue training", panel.continue_training, "Ctrl+Shift+Return"
    )
    window.lr_find_action = add_action(window, "&LR finder", panel.find_learning_rate, "Ctrl+L")
    window.cluster_action = add_action(
        window,
        "Save &configuration / train on a cluster…",
        window.open_cluster_dialog,
        "Ctrl+Shift+S",
        "The settings as TOML, and the torchrun command for several GPUs or nodes",
    )
    for action in (
        window.train_action,
        window.pause_action,
        window.stop_action,
        window.continue_action,
        window.lr_find_action,
    ):
        train_menu.addAction(action)
    train_menu.addSeparator()
    train_menu.addAction(window.cluster_action)

    view_menu = bar.addMenu("&View")
    for index, name in enumerate(TAB_MENU_NAMES):
        view_menu.addAction(
            add_action(
                window, name, lambda _=False, i=index: window.tabs.setCurrentIndex(i), f"Ctrl+{index + 1}"
            )
        )

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(add_action(window, "&About", lambda _=False: show_about(window)))


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About CNN Workbench",
        f"<b>CNN Workbench {__version__}</b><p>Drag folders of labeled images onto the window, pick a CNN, "
        "train or fine-tune it and watch it learn.</p><p>Sample data: Fashion-MNIST © Zalando SE, MIT licence.</p>",
    )
