"""Issue #14 as a newcomer meets the app, driven like a user (real clicks and keys, waiting on what is on
screen): the installed sample is read-only, shipped weights are not offered for download, the summary counts
frozen parameters under the strategy, the Model tab shows the engine's own default, the View menu names the
tabs as they are named (one list for both), the model the user chose comes back after a relaunch, file
dialogs start in the dataset's folder, Help → User guide (F1), tooltips on the Train tab in plain words, and the
zoo as the course's "Keras Applications" table."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialog,
    QFileDialog,
    QLineEdit,
    QPushButton,
    QTabBar,
    QTextBrowser,
)

from workbench.app.dataset.scan import DatasetSummary
from workbench.app.model.panel import ModelPanel
from workbench.app.model.zoo_table import (
    COLUMNS,
    DEPTH_COLUMN,
    SIZE_COLUMN,
    SPEED_COLUMN,
    TOP1_COLUMN,
    TOP5_COLUMN,
    SortRole,
)
from workbench.app.window import menus
from workbench.app.window.main_window import MainWindow
from workbench.app.window.menus import GUIDE_NAME
from workbench.app.window.settings import AppSettings, sample_dataset_path
from workbench.engine.models import get_spec
from workbench.engine.models.catalog import default_choice
from workbench.engine.training.defaults import offline_weights_installed


@pytest.fixture
def window(qtbot):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    yield win
    win.shutdown_workers()


def _summary(size: int, channels: int, classes: int, train: int) -> DatasetSummary:
    names = [f"c{i}" for i in range(classes)]
    return DatasetSummary(
        folders=["/data/x"],
        classes=names,
        counts={"train": dict.fromkeys(names, train // classes)},
        items=[],
        problems=[],
        typical_size=size,
        channels=channels,
    )


def _click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def _click_tab(qtbot, window, index: int) -> None:
    bar = window.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == index, timeout=5_000)


def _pick_in_table(qtbot, panel, name: str) -> None:
    """A user's click on `name`'s row of the zoo table."""
    row = panel.model_names().index(name)
    panel.table.scrollTo(panel.zoo_filter.index(row, 0))
    where = panel.table.visualRect(panel.zoo_filter.index(row, 0)).center()
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.waitUntil(lambda: panel.selected_model() == name, timeout=5_000)
    assert not panel.automatic.isChecked()


def _click_first_thumbnail(qtbot, panel) -> None:
    grid = panel.image_grid.grid
    qtbot.waitUntil(lambda: grid.model().rowCount() > 0, timeout=10_000)
    where = grid.visualRect(grid.model().index(0, 0)).center()
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.waitUntil(lambda: panel.selected_item() is not None, timeout=5_000)


# ---- #14.12 (a) the installed sample is read-only -------------------------------------------------------


def test_the_installed_sample_offers_no_curation_and_says_why(qtbot, window, drop, fmnist_small, tmp_path):
    panel = window.dataset_panel
    assert sample_dataset_path().is_dir()
    with qtbot.waitSignal(panel.dataset_loaded, timeout=60_000):
        _click(qtbot, panel.sample_button)
    _click_first_thumbnail(qtbot, panel)
    for control in (panel.exclude_button, panel.move_button, panel.move_target):
        assert not control.isEnabled()
        assert "installation" in control.toolTip()
    assert panel.curation.read_only_label.isVisible()
    assert "copy the folder" in panel.curation.read_only_label.text()
    assert "read-only" in window.statusBar().currentMessage()

    # A copy of the user's own is theirs to curate.
    own = tmp_path / "mine"
    shutil.copytree(fmnist_small, own)
    with qtbot.waitSignal(panel.dataset_loaded, timeout=60_000):
        assert drop(window, [own])
    _click_first_thumbnail(qtbot, panel)
    assert panel.exclude_button.isEnabled() and panel.move_button.isEnabled()
    assert not panel.curation.read_only_label.isVisible()
    assert "hidden .excluded folder" in panel.exclude_button.toolTip()


# ---- #14.12 (b) weights that ship with the app are not "downloaded" --------------------------------------


@pytest.mark.skipif(
    not offline_weights_installed(), reason="EfficientNet-Lite0's offline weights are not installed"
)
def test_shipped_weights_are_not_offered_for_download(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo()
    _pick_in_table(qtbot, panel, "efficientnet_lite0")
    _click(qtbot, panel.pretrained_radio)
    assert panel.pretrained_radio.isChecked()
    qtbot.waitUntil(lambda: panel.download_button.text() == "Weights on disk", timeout=30_000)
    assert not panel.download_button.isEnabled()
    assert "already on this computer" in panel.download_button.toolTip()
    panel.shutdown()


# ---- #14.12 (c) the summary counts what the strategy freezes ---------------------------------------------


def test_summary_counts_trainable_and_frozen_parameters_under_the_strategy(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo()
    panel.set_dataset(_summary(64, 3, 5, 500))
    _pick_in_table(qtbot, panel, "efficientnet_lite0")  # the user picks: this model, ImageNet weights
    _click(qtbot, panel.pretrained_radio)
    # 500 photos like ImageNet's: the advisor's feature extractor. The engine fits a linear head first
    # (stage 1: (1,280 + 13,856 tap features) × 5 + 5 = 75,685), then stage 2 trains the head's last-layer part
    # (1,280 × 5 + 5), its tap columns held at zero.
    qtbot.waitUntil(lambda: panel.advice_label.text().startswith("Advisor:"), timeout=30_000)
    qtbot.waitUntil(lambda: "stage 2 then fine-tunes 6,405 of 3,446,693" in panel.totals.text(), timeout=30_000)
    assert "<b>75,685</b> trainable" in panel.totals.text() and "all trainable" not in panel.totals.text()

    panel.start_from.strategy.setCurrentIndex(panel.start_from.strategy.findData("fine-tune-all"))
    qtbot.waitUntil(lambda: "fine-tunes 3,377,413 of 3,446,693" in panel.totals.text(), timeout=30_000)
    _click(qtbot, panel.start_from.scratch_radio)
    qtbot.waitUntil(lambda: "from scratch" in panel.totals.text(), timeout=30_000)
    panel.shutdown()


# ---- #14.12 (d) the Model tab shows the model the engine would train ------------------------------------


def test_let_the_workbench_choose_shows_the_engines_model_for_the_dataset(qtbot, window, drop, fmnist_small):
    with qtbot.waitSignal(window.dataset_panel.dataset_loaded, timeout=60_000) as loaded:
        assert drop(window, [fmnist_small])
    summary = loaded.args[0]
    expected = default_choice(summary.typical_size, summary.channels, summary.split_total("train"))
    _click_tab(qtbot, window, 1)
    panel = window.model_panel
    assert panel.automatic.isChecked()
    qtbot.waitUntil(lambda: panel.selected_model() == expected.model, timeout=60_000)
    assert expected.model in panel.choice_label.text()
    assert panel.chosen_model() is None  # training still leaves the choice to the engine
    if expected.linear_probe:  # the engine's LP-FT: stage 1 trains the head only
        qtbot.waitUntil(lambda: "stage 1" in panel.totals.text(), timeout=60_000)
        assert "frozen" in panel.totals.text()


# ---- #14.11 the View menu names the tabs as they are named ----------------------------------------------


def _menu(window, title: str):
    for action in window.menuBar().actions():
        if action.text().replace("&", "") == title:
            return action.menu()
    raise AssertionError(f"no {title} menu")


def test_the_view_menu_names_the_tabs_as_the_tabs_do(qtbot, window):
    view = _menu(window, "View")
    names = [action.text().replace("&", "") for action in view.actions()]
    tabs = [window.tabs.tabText(i).split(maxsplit=1)[1] for i in range(window.tabs.count())]
    assert names == tabs
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.tabs.currentIndex() == 2, timeout=5_000)


def test_tab_titles_and_view_menu_items_come_from_one_list(qtbot, monkeypatch):
    renamed = ("Images", "Network", "Training", "Results", "Classify", "Look inside", "History")
    monkeypatch.setattr(menus, "TAB_NAMES", renamed)  # a renamed tab is renamed in both places
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    items = [action.text().replace("&", "") for action in _menu(win, "View").actions()]
    assert items == list(renamed)
    for index, name in enumerate(renamed):
        # the menu item's own shortcut, Ctrl+1 … Ctrl+7, brings its tab forward
        qtbot.keyClick(win, Qt.Key(Qt.Key.Key_1 + index), Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda i=index: win.tabs.currentIndex() == i, timeout=5_000)
        assert win.tabs.tabText(index) == f"{index + 1}  {name}", index
    win.shutdown_workers()


# ---- #14 the model the user chose comes back after a relaunch ------------------------------------------


def _relaunch(qtbot, win: MainWindow | None) -> MainWindow:
    """Close `win` as the user does (its settings saved), then launch the app again on the same settings."""
    if win is not None:
        win.close()
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=10_000)
    again = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitExposed(again)
    with qtbot.waitSignal(again.dataset_panel.dataset_loaded, timeout=60_000):
        pass  # the last dataset reopens by itself
    return again


def test_relaunch_restores_the_model_the_user_chose_not_the_row_the_engine_selected(
    qtbot, drop, fmnist_small
):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000) as loaded:
        assert drop(win, [fmnist_small])
    summary = loaded.args[0]
    engine = default_choice(summary.typical_size, summary.channels, summary.split_total("train")).model
    _click_tab(qtbot, win, 1)
    panel = win.model_panel
    qtbot.waitUntil(lambda: panel.selected_model() == engine, timeout=60_000)
    assert panel.automatic.isChecked()
    # The user wants exactly that model, with its settings in their hands: they untick the box.
    _click(qtbot, panel.automatic)
    assert not panel.automatic.isChecked() and panel.chosen_model() == engine
    # ...and start it from its ImageNet weights (the engine's pick for so few images has them), with a
    # weights file typed for later.
    assert get_spec(engine).pretrained
    _click(qtbot, panel.start_from.pretrained_radio)
    panel.start_from.weights_path.setText("/data/mine.pth")
    assert win.build_config().pretrained

    again = _relaunch(qtbot, win)
    panel = again.model_panel
    # Their own pick, not "the workbench chooses" (the row alone said the same model either way).
    qtbot.waitUntil(
        lambda: panel.selected_model() == engine and not panel.automatic.isChecked(), timeout=60_000
    )
    qtbot.wait(500)  # the engine's own work on the dataset must not take the choice back
    assert not panel.automatic.isChecked() and panel.chosen_model() == engine
    assert again.build_config().model == engine
    # The starting weights came back with the model: not "From scratch".
    assert panel.start_from.pretrained_radio.isChecked() and again.build_config().pretrained
    assert panel.start_from.weights_path.text() == "/data/mine.pth"

    _click_tab(qtbot, again, 1)
    _click(qtbot, panel.automatic)  # back to "Let the workbench choose"
    assert panel.automatic.isChecked()
    third = _relaunch(qtbot, again)
    panel = third.model_panel
    qtbot.waitUntil(lambda: panel.selected_model() == engine, timeout=60_000)
    assert panel.automatic.isChecked() and panel.chosen_model() is None
    assert third.build_config().model is None  # the engine chooses, as the user left it
    third.shutdown_workers()


# ---- #14.11 file dialogs open in the dataset's folder ---------------------------------------------------


def test_file_dialogs_open_in_the_datasets_folder(
    qtbot, window, drop, fmnist_small, class_folders, monkeypatch, tmp_path
):
    with qtbot.waitSignal(window.dataset_panel.dataset_loaded, timeout=60_000):
        assert drop(window, [fmnist_small])
    asked: dict[str, str] = {}

    def open_file(_parent, caption, start, _filter):
        asked[caption] = start
        return "", ""

    def save_file(_parent, caption, start, _filter):
        asked[caption] = start
        return str(tmp_path / "mine.toml"), _filter

    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(open_file))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_file))

    # Model tab → a model of one's own → Weights file "Browse…"
    _click_tab(qtbot, window, 1)
    panel = window.model_panel
    qtbot.waitUntil(lambda: panel.model_names() != [], timeout=60_000)
    _pick_in_table(qtbot, panel, "lenet5")
    browse = next(b for b in panel.start_from.findChildren(QPushButton) if b.text() == "Browse…")
    _click(qtbot, browse)
    assert asked["Weights file"] == str(fmnist_small)

    # Training → Save configuration (Ctrl+Shift+S) → "Save TOML…"
    qtbot.keyClick(
        window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    qtbot.waitUntil(
        lambda: any(type(w).__name__ == "ClusterDialog" for w in window.findChildren(QDialog)), timeout=5_000
    )
    dialog = next(w for w in window.findChildren(QDialog) if type(w).__name__ == "ClusterDialog")
    _click(qtbot, dialog.save_button)
    assert asked["Save training configuration"] == str(fmnist_small / "run.toml")
    assert (tmp_path / "mine.toml").is_file()  # and it saved where the user said
    dialog.close()
    window.activateWindow()  # as the window manager does once the dialog is gone
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=5_000)

    # File → Open class folders (Ctrl+Shift+O): a dataset of one folder shows its class folders inside it …
    opened_in: list[str] = []

    def run_dialog(dialog: QFileDialog) -> int:
        opened_in.append(dialog.directory().absolutePath())
        return 0  # the user cancels

    monkeypatch.setattr(QFileDialog, "exec", run_dialog)
    qtbot.keyClick(
        window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert opened_in == [str(fmnist_small)]
    # … a dataset of several class folders, the folder they sit in side by side.
    with qtbot.waitSignal(window.dataset_panel.dataset_loaded, timeout=60_000):
        assert drop(window, class_folders)
    qtbot.keyClick(
        window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert opened_in[1] == str(class_folders[0].parent)


# ---- #14.15 Help → User guide, and tooltips on the Train tab --------------------------------------------


def test_f1_opens_the_offline_user_guide_with_the_real_shortcuts(qtbot, window):
    help_menu = _menu(window, "Help")
    assert "User guide" in [action.text().replace("&", "") for action in help_menu.actions()]
    qtbot.keyClick(window, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: window.findChild(QDialog, GUIDE_NAME) is not None, timeout=5_000)
    guide = window.findChild(QDialog, GUIDE_NAME)
    qtbot.waitUntil(guide.isVisible, timeout=5_000)
    text = guide.findChild(QTextBrowser).toPlainText()
    for words in (
        "Getting started",
        "95% interval",
        "Validation (val) vs test",
        "Mirror-averaged",
        "Stage 1",
    ):
        assert words in text
    for tab in range(window.tabs.count()):
        assert window.tabs.tabText(tab).split(maxsplit=1)[1] in text
    shortcuts = [a for a in window.actions() if not a.shortcut().isEmpty()]
    assert len(shortcuts) >= 10
    for action in shortcuts:  # listed from the real actions: a changed shortcut changes the guide
        assert action.shortcut().toString() in text
        assert action.text().replace("&", "") in text
    guide.close()


def test_every_train_tab_control_says_what_it_does(qtbot, window):
    _click_tab(qtbot, window, 2)
    panel = window.training_panel
    silent = [
        f"{type(w).__name__} {getattr(w, 'text', lambda: '')() or w.objectName()}"
        for kind in (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit)
        for w in panel.findChildren(kind)
        # Qt's own parts of a control (a tab bar's scroll arrows, a combo box's line edit) are not controls.
        if not w.toolTip().strip() and not isinstance(w.parent(), (QComboBox, QAbstractSpinBox, QTabBar))
    ]
    assert silent == []


# The options a newcomer meets first; their tooltips are the engine's declared help (the CLI's --help too).
PLAIN_TIPS = (
    "epochs", "batch_size", "lr", "weight_decay", "label_smoothing", "schedule",
    "img_size", "val_split", "seed", "device", "amp", "tta",
)  # fmt: skip
JARGON = ("--", "L2", "one-hot", "bf16", "fp16", "/10", "regularization", "N epochs")


def test_train_tab_tooltips_say_in_plain_words_what_each_setting_does_and_when_to_change_it(qtbot, window):
    _click_tab(qtbot, window, 2)
    form = window.training_panel.form
    _click(qtbot, form.advanced_button)  # the details, one click away
    for name in PLAIN_TIPS:
        control = form.lr if name == "lr" else form.fields[name]
        tip = control.toolTip()
        assert not [word for word in JARGON if word in tip], (name, tip)  # no flags, no textbook terms
        # one sentence: what it does, then (after ";") when to change it or what to leave it at
        assert tip.count(". ") == 0 or name == "lr", (name, tip)
        assert "; " in tip and len(tip) >= 60, (name, tip)
        assert any(
            hint in tip
            for hint in (
                "raise",
                "lower",
                "keep",
                "turn it off",
                "turns it off",
                "pick",
                "suits",
                "set it",
                "change",
            )
        ), (name, tip)


# ---- #14.17 the zoo as the "Keras Applications" table ---------------------------------------------------


def test_zoo_table_lists_size_accuracy_depth_and_measured_speed_and_sorts(qtbot):
    assert {"Size (MB)", "Top-1", "Top-5", "Depth", "ms/image", "Params"} <= set(COLUMNS)
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo(preferred="lenet5")
    zoo = panel.zoo
    qtbot.waitUntil(lambda: zoo.value("resnet18", TOP1_COLUMN) == "69.8%", timeout=120_000)
    assert zoo.value("resnet18", TOP5_COLUMN) == "89.1%"  # torchvision's published ImageNet-1K figures
    assert zoo.value("resnet18", SIZE_COLUMN) == "44.7"
    assert zoo.value("resnet18", DEPTH_COLUMN) == "21"
    qtbot.waitUntil(lambda: zoo.value("efficientnet_lite0", TOP1_COLUMN) == "75.1%", timeout=120_000)
    assert zoo.value("lenet5", TOP1_COLUMN) == "–" and zoo.value("lenet5", DEPTH_COLUMN) == "5"
    # Milliseconds per image, measured here in the background.
    qtbot.waitUntil(lambda: zoo.value("lenet5", SPEED_COLUMN) not in ("…", ""), timeout=300_000)
    assert float(zoo.value("lenet5", SPEED_COLUMN)) > 0

    header = panel.table.horizontalHeader()
    x = header.sectionViewportPosition(TOP1_COLUMN) + header.sectionSize(TOP1_COLUMN) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, 5))
    values = [
        panel.zoo_filter.index(r, TOP1_COLUMN).data(SortRole) for r in range(panel.zoo_filter.rowCount())
    ]
    assert values == sorted(values) or values == sorted(values, reverse=True)
    panel.shutdown()
