"""The main window's menu bar: File, Training, View and Help, each item a QAction with its shortcut.

`build_menus(bar, owner, commands)` knows nothing of the window: it is handed the menu bar, the widget whose
shortcuts the actions become (`owner`: added there, each shortcut works whichever tab has focus) and the
callbacks the items run, and returns the actions it made so the window can enable or trigger them.

`TAB_NAMES` is the one list of the tabs' names: the window titles its tabs with `tab_title(index)` and the
View menu lists the same names. Help → User guide (F1) opens the offline guide shipped in
resources/guide/, with the keyboard shortcuts listed from the owner's real actions.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QMenuBar, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from workbench import __version__
from workbench.resources import resource_path

# The tabs' names, in the window's order: tab titles and View menu items alike (one source).
TAB_NAMES = ("Dataset", "Model", "Train", "Evaluate", "Predict", "Inspect", "Runs")
GUIDE_FILE = ("guide", "index.html")
GUIDE_NAME = "userGuide"
SHORTCUTS_MARK = "<!-- SHORTCUTS -->"


def tab_title(index: int) -> str:
    """The title of tab `index` (0-based) as the window shows it: its Ctrl+number and its name."""
    return f"{index + 1}  {TAB_NAMES[index]}"


def tab_menu_name(index: int) -> str:
    """Tab `index`'s View menu item: the same name, its first letter the mnemonic (they are all distinct)."""
    return f"&{TAB_NAMES[index]}"


Command = Callable[[], Any]


@dataclass(frozen=True)
class MenuCommands:
    """What each menu item does."""

    open_dataset: Command
    open_class_folders: Command
    open_sample: Command
    export: Command
    quit: Command
    train: Command
    pause: Command
    stop: Command
    continue_training: Command
    lr_find: Command
    save_configuration: Command
    show_tab: Callable[[int], Any]  # View → a tab, by its index (TAB_NAMES' order)


@dataclass(frozen=True)
class MenuActions:
    """The actions `build_menus` made, for the window to keep (tests trigger them as a user would)."""

    open_dataset: QAction
    open_class_folders: QAction
    open_sample: QAction
    export: QAction
    quit: QAction
    train: QAction
    pause: QAction
    stop: QAction
    continue_training: QAction
    lr_find: QAction
    save_configuration: QAction


def add_action(
    owner: QWidget, text: str, slot: Any, shortcut: QKeySequence | str | None = None, tip: str = ""
) -> QAction:
    action = QAction(text, owner)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
    # QAction.triggered passes `checked`; the commands take no argument.
    action.triggered.connect(lambda _checked=False: slot())
    owner.addAction(action)  # shortcuts work whichever tab has focus
    return action


def build_menus(bar: QMenuBar, owner: QWidget, commands: MenuCommands) -> MenuActions:
    actions = MenuActions(
        open_dataset=add_action(
            owner,
            "&Open dataset folder…",
            commands.open_dataset,
            QKeySequence.StandardKey.Open,
            "A folder of class sub-folders, or of train/val/test sub-folders",
        ),
        open_class_folders=add_action(
            owner,
            "Open &class folders…",
            commands.open_class_folders,
            "Ctrl+Shift+O",
            "Several folders, each one class",
        ),
        open_sample=add_action(owner, "Open &sample dataset (Fashion-MNIST)", commands.open_sample),
        export=add_action(
            owner, "&Export model…", commands.export, "Ctrl+E", "ONNX, TorchScript or safetensors"
        ),
        quit=add_action(owner, "&Quit", commands.quit, QKeySequence.StandardKey.Quit),
        train=add_action(owner, "&Train", commands.train, "Ctrl+Return"),
        pause=add_action(owner, "&Pause / resume", commands.pause, "Ctrl+P"),
        stop=add_action(owner, "&Stop (save checkpoint)", commands.stop, "Ctrl+."),
        continue_training=add_action(
            owner, "&Continue training", commands.continue_training, "Ctrl+Shift+Return"
        ),
        lr_find=add_action(owner, "&LR finder", commands.lr_find, "Ctrl+L"),
        save_configuration=add_action(
            owner,
            "Save &configuration / train on a cluster…",
            commands.save_configuration,
            "Ctrl+Shift+S",
            "The settings as TOML, and the torchrun command for several GPUs or nodes",
        ),
    )

    file_menu = bar.addMenu("&File")
    for action in (actions.open_dataset, actions.open_class_folders, actions.open_sample):
        file_menu.addAction(action)
    file_menu.addSeparator()
    file_menu.addAction(actions.export)
    file_menu.addSeparator()
    file_menu.addAction(actions.quit)

    train_menu = bar.addMenu("&Training")
    for action in (actions.train, actions.pause, actions.stop, actions.continue_training, actions.lr_find):
        train_menu.addAction(action)
    train_menu.addSeparator()
    train_menu.addAction(actions.save_configuration)

    view_menu = bar.addMenu("&View")
    # Read at build time, like the window's tab titles: both follow TAB_NAMES as it is then.
    for index in range(len(TAB_NAMES)):
        view_menu.addAction(
            add_action(owner, tab_menu_name(index), lambda i=index: commands.show_tab(i), f"Ctrl+{index + 1}")
        )

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(
        add_action(
            owner,
            "&User guide",
            lambda: show_guide(owner),
            QKeySequence.StandardKey.HelpContents,
            "Getting started, what each tab does and what its numbers mean (works offline)",
        )
    )
    help_menu.addAction(add_action(owner, "&About", lambda: show_about(owner)))
    return actions


def shortcuts_html(owner: QWidget) -> str:
    """A table of the shortcuts of `owner`'s actions, as they are now (not a hand-kept list)."""
    rows = []
    for action in owner.actions():
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            name = action.text().replace("&&", "\0").replace("&", "").replace("\0", "&")
            rows.append(f"<tr><td><b>{html.escape(keys)}</b></td><td>{html.escape(name)}</td></tr>")
    return "<table cellpadding='3'>" + "".join(rows) + "</table>"


def guide_html(owner: QWidget) -> str:
    """The user guide's page with the shortcuts table filled in."""
    path = resource_path(*GUIDE_FILE)
    try:
        page = path.read_text(encoding="utf-8")
    except OSError:
        page = f"<h1>User guide</h1><p>The guide is missing from this installation ({html.escape(str(path))}).</p>"
        page += SHORTCUTS_MARK
    return page.replace(SHORTCUTS_MARK, shortcuts_html(owner))


def show_guide(owner: QWidget) -> QDialog:
    """Open (or raise) the user guide beside the window; it does not block the app."""
    dialog = owner.findChild(QDialog, GUIDE_NAME)
    if dialog is None:
        dialog = QDialog(owner, Qt.WindowType.Window)
        dialog.setObjectName(GUIDE_NAME)
        dialog.setWindowTitle("CNN Workbench — User guide")
        dialog.resize(760, 820)
        browser = QTextBrowser(dialog)
        browser.setOpenExternalLinks(True)
        browser.setSearchPaths([str(resource_path(GUIDE_FILE[0]))])
        layout = QVBoxLayout(dialog)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(browser)
    browser = dialog.findChild(QTextBrowser)
    browser.setHtml(guide_html(owner))
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def show_about(parent: QWidget) -> None:
    QMessageBox.about(
        parent,
        "About CNN Workbench",
        f"<b>CNN Workbench {__version__}</b><p>Drag folders of labeled images onto the window, pick a CNN, "
        "train or fine-tune it and watch it learn.</p><p>Sample data: Fashion-MNIST © Zalando SE, MIT licence.</p>",
    )
