"""Training → Save configuration / train on a cluster: the TOML the CLI reads and the torchrun command."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings
from workbench.engine.training.config import TrainConfig


def test_saved_toml_trains_the_same_settings_and_the_command_names_it(qtbot, drop, fmnist_small, tmp_path):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    with qtbot.waitSignal(win.dataset_panel.dataset_loaded, timeout=60_000):
        drop(win, [fmnist_small])
    qtbot.waitUntil(lambda: win.model_panel.select_model("lenet5"), timeout=60_000)
    win.training_panel.form.epochs.setValue(3)

    win.cluster_action.trigger()  # the menu item (Ctrl+Shift+S)
    dialog = next(w for w in win.findChildren(object) if type(w).__name__ == "ClusterDialog")
    saved = dialog.save_to(tmp_path / "cluster run.toml")
    config = TrainConfig.from_toml(saved)
    assert config == win.build_config()
    assert config.model == "lenet5" and config.epochs == 3 and config.data == [str(fmnist_small)]

    dialog.gpus.setValue(4)
    assert dialog.command.text() == (
        f"torchrun --standalone --nproc_per_node=4 -m workbench train --config '{tmp_path / 'cluster run.toml'}'"
    )
    dialog.nodes.setValue(2)
    assert (
        "--nnodes=2" in dialog.command.text() and "--rdzv_endpoint=$HEAD_NODE:29500" in dialog.command.text()
    )
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.command.text()
    dialog.close()
    win.shutdown_workers()
