"""File → Export… in the real window: the export runs in a worker, writes the file, and reports the path and
the largest difference from PyTorch; a bad file name ends in the error dialog, not a traceback."""

from __future__ import annotations

from pathlib import Path

import onnxruntime
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from tiny_run import train_tiny_run

from workbench.app.qt.dialogs import ERROR_DIALOG_NAME
from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings


@pytest.fixture(scope="module")
def trained(fmnist_folder, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("export-home")
    run = train_tiny_run(fmnist_folder, home)
    return run


@pytest.fixture(autouse=True)
def trained_home(trained, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", trained["home"])


@pytest.fixture
def window(qtbot):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    yield win
    win.shutdown_workers()


def _export_dialog(qtbot, win: MainWindow, run_id: str):
    file_menu = win.menuBar().actions()[0].menu()
    assert win.export_action in file_menu.actions()
    win.export_action.trigger()
    dialog = win.export_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.runs.current_run_id() == run_id, timeout=10_000)
    return dialog


def test_export_from_the_menu_writes_an_onnx_file_and_reports_the_difference(
    qtbot, window, trained, tmp_path
):
    window.tabs.setCurrentWidget(window.runs_view)  # the run the user selects there is the one exported
    qtbot.waitUntil(lambda: window.runs_view.run_ids() == [trained["run_id"]], timeout=10_000)
    window.runs_view.table.selectRow(0)
    dialog = _export_dialog(qtbot, window, trained["run_id"])
    dialog.set_format("onnx")
    dialog.out.setText(str(tmp_path))
    with qtbot.waitSignal(dialog.exported, timeout=60_000) as exported:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    result = exported.args[0]
    assert result.path == tmp_path / "course_cnn.onnx" and result.path.is_file()
    assert result.max_abs_diff < 1e-4
    assert str(result.path) in dialog.message.text()
    assert f"{result.max_abs_diff:.2e}" in dialog.message.text()
    session = onnxruntime.InferenceSession(str(result.path))
    assert session.get_inputs()[0].shape[0] != 1  # dynamic batch
    qtbot.waitUntil(lambda: not dialog.busy_bar.isVisible(), timeout=5_000)


def test_a_bad_export_name_shows_the_error_dialog(qtbot, window, trained, tmp_path):
    dialog = _export_dialog(qtbot, window, trained["run_id"])
    dialog.set_format("safetensors")
    dialog.out.setText(str(tmp_path / "model.onnx"))
    with qtbot.waitSignal(dialog.failed, timeout=60_000) as failed:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    assert "model.onnx" in failed.args[0] and ".safetensors" in failed.args[0]
    error = dialog.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert error is not None and "model.onnx" in error.text()
    assert not list(Path(tmp_path).iterdir())
