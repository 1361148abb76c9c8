"""The dataset browser's Review page (issue 15, item 5), driven like a user: a real Fashion-MNIST PNG folder with
a Trouser planted among the Bags and a blank scan; the review lists them, R moves the planted image to the
suggested class and X excludes the blank through the curation (undoable), K keeps one, and a new review does
not ask again. On a read-only dataset nothing moves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from workbench.app.dataset import analysis_bar
from workbench.app.dataset import panel as panel_module
from workbench.app.dataset.panel import DatasetPanel
from workbench.engine.review.decisions import ReviewDecisions


@pytest.fixture
def planted(fmnist_small, tmp_path):
    data = Path(shutil.copytree(fmnist_small, tmp_path / "fmnist"))
    wrong = data / "train" / "Bag" / "planted-trouser.png"
    sorted((data / "train" / "Trouser").glob("*.png"))[0].rename(wrong)
    blank = data / "train" / "Dress" / "blank-scan.png"
    Image.new("L", (28, 28), 235).save(blank)
    return data, wrong, blank


@pytest.fixture
def panel(qtbot, monkeypatch):
    monkeypatch.setattr(analysis_bar, "ANALYSIS_SIZE", 64)
    widget = DatasetPanel()
    qtbot.addWidget(widget)
    widget.resize(1400, 850)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def _open_and_review(qtbot, panel: DatasetPanel, folder: Path) -> None:
    with qtbot.waitSignal(panel.dataset_loaded, timeout=60_000):
        panel.load([str(folder)])
    panel.centre_tabs.setCurrentIndex(2)
    qtbot.mouseClick(panel.review_bar.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.analysis is not None, timeout=300_000)


def _go_to(view, path: Path, kind: str) -> None:
    rows = [i for i, s in enumerate(view.open_suspects()) if s.path == str(path) and s.kind == kind]
    assert rows, [(s.kind, s.path) for s in view.open_suspects()]
    view.list.setCurrentIndex(view.model.index(rows[0]))
    view.list.setFocus()


def test_keys_relabel_exclude_keep_and_answers_persist(qtbot, panel, planted):
    data, wrong, blank = planted
    _open_and_review(qtbot, panel, data)
    view = panel.review_view
    listed = {(s.kind, s.path): s for s in view.open_suspects()}
    planted_suspect = listed[("label", str(wrong))]
    assert planted_suspect.label == "Bag" and planted_suspect.suggested == "Trouser"
    assert ("outlier", str(blank)) in listed
    assert "K keep" in view.summary_label.text()

    # R: relabel to the suggestion — the file moves to Trouser, the grid and the undo history follow
    _go_to(view, wrong, "label")
    assert "Relabel to 'Trouser'" in view.relabel_button.text()
    qtbot.keyClick(view.list, Qt.Key.Key_R)
    moved = data / "train" / "Trouser" / wrong.name
    assert moved.is_file() and not wrong.exists()
    row = panel.thumbnails.row_of(str(moved))
    assert row is not None and panel.thumbnails.item(row).class_name == "Trouser"
    assert panel.curator.history[-1].action == "relabel"
    assert all(s.path != str(wrong) for s in view.open_suspects())

    # X: exclude the blank scan; Ctrl+Z (the panel's undo) puts it back and asks again
    _go_to(view, blank, "outlier")
    qtbot.keyClick(view.list, Qt.Key.Key_X)
    hidden = blank.parent / ".excluded" / blank.name
    assert hidden.is_file() and not blank.exists()
    assert panel.thumbnails.item(panel.thumbnails.row_of(str(hidden))).excluded
    assert all(s.path != str(blank) for s in view.open_suspects())
    panel.undo()
    assert blank.is_file() and any(s.path == str(blank) for s in view.open_suspects())
    _go_to(view, blank, "outlier")
    qtbot.keyClick(view.list, Qt.Key.Key_X)
    assert hidden.is_file()

    # K: keep the next suspect as it is: nothing moves, and it is not listed again
    remaining = view.open_suspects()
    kept = view.current_suspect() or (remaining[0] if remaining else None)
    if kept is not None:
        view.list.setCurrentIndex(view.model.index(view.open_suspects().index(kept)))
        qtbot.keyClick(view.list, Qt.Key.Key_K)
        assert Path(kept.path).is_file() and kept not in view.open_suspects()

    decisions = ReviewDecisions([str(data)])
    assert decisions.get(planted_suspect.key) == "relabel"
    assert decisions.get(next(k for k in [f"outlier\t{blank}"])) == "exclude"
    if kept is not None:
        assert decisions.get(kept.key) == "keep"

    # a new review of the same folder: the answered suspects are not asked again
    _open_and_review(qtbot, panel, data)
    again = panel.review_view.open_suspects()
    assert all(s.path != str(blank) for s in again)
    if kept is not None:
        assert all(s.key != kept.key for s in again)
    if kept is not None and kept.key in {s.key for s in panel.analysis.suspects}:  # found again, not asked
        assert "1 answered earlier" in panel.review_view.summary_label.text()


def test_a_read_only_dataset_moves_nothing(qtbot, panel, planted, monkeypatch):
    data, wrong, _blank = planted
    reason = "it is part of the installation (the bundled sample)"
    monkeypatch.setattr(panel_module, "read_only_reason", lambda folders: reason)
    _open_and_review(qtbot, panel, data)
    view = panel.review_view
    _go_to(view, wrong, "label")
    assert not view.relabel_button.isEnabled() and not view.exclude_button.isEnabled()
    qtbot.keyClick(view.list, Qt.Key.Key_R)
    qtbot.keyClick(view.list, Qt.Key.Key_X)
    assert wrong.is_file() and not panel.curator.history
    assert reason in view.detail.text()
    qtbot.keyClick(view.list, Qt.Key.Key_K)  # keeping moves nothing, so it is allowed
    assert all(s.path != str(wrong) or s.kind != "label" for s in view.open_suspects())
