"""The dataset browser's Map page (issue 15, item 4), driven like a user: find suspects and draw the map of a
real Fashion-MNIST PNG folder, hover a point to see its image, draw a box, and act on the box's images in the
grid with the existing curation (exclude, undo)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from workbench.app.dataset import analysis_bar
from workbench.app.dataset.panel import DatasetPanel


@pytest.fixture
def panel(qtbot, monkeypatch, fmnist_small, tmp_path):
    monkeypatch.setattr(analysis_bar, "ANALYSIS_SIZE", 64)  # the review's rule would embed at 160 px: slower
    data = Path(shutil.copytree(fmnist_small, tmp_path / "fmnist"))  # ours to curate
    widget = DatasetPanel()
    qtbot.addWidget(widget)
    widget.resize(1400, 850)
    widget.show()
    qtbot.waitExposed(widget)
    with qtbot.waitSignal(widget.dataset_loaded, timeout=60_000):
        widget.load([str(data)])
    yield widget
    widget.shutdown()


def _analyse(qtbot, panel: DatasetPanel) -> None:
    qtbot.mouseClick(panel.map_bar.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.analysis is not None, timeout=300_000)
    # The map's new info line re-lays the page out on a later turn of the event loop (the plot moves and shrinks
    # by a text line); pixels computed before that can land outside the map once it happens. Wait it out.
    view = panel.dataset_map
    shown: list[tuple] = []

    def laid_out() -> bool:
        QApplication.sendPostedEvents()
        shown.append((view.plot.geometry(), view.view_box.sceneBoundingRect(), view.view_box.viewRect()))
        return len(shown) > 2 and shown[-1] == shown[-2] == shown[-3]

    qtbot.waitUntil(laid_out, timeout=10_000)


def _shift_drag(qtbot, view, corner: tuple[float, float], other: tuple[float, float]) -> None:
    """A real Shift+left-drag on the plot from one map point to another (held a moment, as a hand does)."""
    viewport = view.plot.viewport()
    start = viewport.mapFrom(view.plot, view.scene_point(*corner))
    end = viewport.mapFrom(view.plot, view.scene_point(*other))

    def send(kind: QEvent.Type, at: QPoint, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
        event = QMouseEvent(kind, QPointF(at), QPointF(viewport.mapToGlobal(at)), button, buttons,
                            Qt.KeyboardModifier.ShiftModifier)  # fmt: skip
        QApplication.sendEvent(viewport, event)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    send(QEvent.Type.MouseButtonPress, start, left, left)
    qtbot.wait(600)  # pyqtgraph starts a drag after a short hold or a long move
    for t in np.linspace(0.1, 1.0, 10):
        at = QPoint(
            round(start.x() + (end.x() - start.x()) * t), round(start.y() + (end.y() - start.y()) * t)
        )
        send(QEvent.Type.MouseMove, at, none, left)
        qtbot.wait(40)  # pyqtgraph drops mouse moves that come faster than a screen refreshes
    send(QEvent.Type.MouseButtonRelease, end, left, none)


def test_map_shows_every_image_by_class_and_by_suspicion(qtbot, panel):
    panel.centre_tabs.setCurrentIndex(1)
    assert panel.centre_tabs.tabText(1) == "Map" and panel.centre_tabs.tabText(2) == "Review"
    _analyse(qtbot, panel)
    view = panel.dataset_map
    assert view.point_count() == 150 == len(panel.analysis.paths)
    names = view.group_names()
    assert len(names) == 10 and "Trouser (15)" in names
    view.colour_by.setCurrentText("suspicion")
    assert view.point_count() == 150 and any(n.startswith("not suspect") for n in view.group_names())
    # images of one class lie together: most points' nearest point has their class
    xy, labels = panel.analysis.xy, panel.analysis.labels
    d = ((xy[:, None] - xy[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[d.argmin(1)] == labels).mean() > 0.6
    assert "150 images" in view.info.text()

    # Shift+drag a box around the whole map (just inside the visible area): every image is in the grid's selection
    shown = view.view_box.viewRect()
    dx, dy = shown.width() * 0.01, shown.height() * 0.01
    with qtbot.waitSignal(view.selection_made, timeout=5_000) as selected:
        _shift_drag(
            qtbot, view, (shown.left() + dx, shown.top() + dy), (shown.right() - dx, shown.bottom() - dy)
        )
    assert len(selected.args[0]) == 150 and panel.filter_model.rowCount() == 150
    assert (
        panel.centre_tabs.currentWidget() is panel.image_grid and panel.image_grid.selection_bar.isVisible()
    )


def test_hover_shows_the_image_and_a_box_selection_goes_to_the_grid_for_curation(qtbot, panel):
    panel.centre_tabs.setCurrentIndex(1)
    _analyse(qtbot, panel)
    view, analysis = panel.dataset_map, panel.analysis
    trouser = analysis.classes.index("Trouser")
    row = int(np.flatnonzero(analysis.labels == trouser)[0])
    point = view.view_box.mapViewToScene(QPointF(float(analysis.xy[row, 0]), float(analysis.xy[row, 1])))
    hovered = view.hover_at(point)
    assert hovered >= 0 and analysis.labels[hovered] == trouser  # that point, or one on top of it
    assert view.hover_card.isVisible() and "Trouser" in view._hover_text.text()
    qtbot.waitUntil(lambda: view._hover_image.pixmap() is not None and not view._hover_image.pixmap().isNull(),
                    timeout=10_000)  # fmt: skip
    view.hover_at(QPointF(-1e6, -1e6))
    assert not view.hover_card.isVisible()

    # a box around the Trouser points: the grid shows exactly the images inside it
    points = analysis.xy[analysis.labels == trouser]
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    with qtbot.waitSignal(view.selection_made) as selected:
        view.select_box(x0, y0, x1, y1)
    chosen = set(selected.args[0])
    assert {p for p, c in zip(analysis.paths, analysis.labels, strict=True) if c == trouser} <= chosen
    assert panel.centre_tabs.currentWidget() is panel.image_grid
    assert panel.filter_model.rowCount() == len(chosen) and panel.image_grid.selection_bar.isVisible()
    assert f"{len(chosen)} images selected on the map" in panel.image_grid.selection_label.text()

    # the grid's curation acts on an image of the selection
    panel.select_row(0)
    item = panel.selected_item()
    assert item is not None and item.path in chosen
    original = Path(item.path)
    panel.exclude_selected(confirmed=True)
    assert not original.exists() and (original.parent / ".excluded" / original.name).is_file()
    assert panel.filter_model.rowCount() == len(chosen)  # the excluded image stays in the selection, crossed
    assert str(original.parent / ".excluded" / original.name) in analysis.paths  # the map follows the file
    panel.undo()
    assert original.is_file() and str(original) in analysis.paths

    qtbot.mouseClick(panel.image_grid.show_all_button, Qt.MouseButton.LeftButton)
    assert panel.filter_model.rowCount() == 150 and not panel.image_grid.selection_bar.isVisible()


def test_a_folder_of_identical_images_is_one_spot_with_a_note(qtbot, panel, tmp_path):
    image = sorted((Path(panel.folders[0]) / "train" / "Bag").glob("*.png"))[0]
    for name in ("cats", "dogs"):
        (tmp_path / "same" / name).mkdir(parents=True)
        for i in range(5):
            shutil.copy(image, tmp_path / "same" / name / f"{i}.png")
    with qtbot.waitSignal(panel.dataset_loaded, timeout=60_000):
        panel.load([str(tmp_path / "same")])
    assert panel.analysis is None and panel.dataset_map.point_count() == 0  # the last dataset's map is gone
    panel.centre_tabs.setCurrentIndex(1)
    _analyse(qtbot, panel)
    assert panel.dataset_map.point_count() == 10 and np.allclose(panel.analysis.xy, 0)
    assert "look the same" in panel.map_bar.notes.text()
    assert panel.map_bar.start_button.isEnabled()
