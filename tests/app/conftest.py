"""Fixtures for the desktop-app tests: small real Fashion-MNIST PNG folders (written once per session) and a
real drag-and-drop of file URLs onto a widget."""

from __future__ import annotations

import shutil
from pathlib import Path

import PySide6
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QWidget

from workbench.engine.data.fashion_mnist import export_fashion_mnist

TRAIN_PER_CLASS, TEST_PER_CLASS = 12, 3


@pytest.fixture(scope="session")
def fmnist_small(tmp_path_factory) -> Path:
    """A pre-split folder `train/<class>/*.png`, `test/<class>/*.png` of real Fashion-MNIST images (10 classes,
    12 + 3 each), written by the engine's exporter from the Debian package files."""
    root = tmp_path_factory.mktemp("fmnist-small")
    export_fashion_mnist(root, per_class={"train": TRAIN_PER_CLASS, "test": TEST_PER_CLASS})
    return root


@pytest.fixture(scope="session")
def class_folders(fmnist_small, tmp_path_factory) -> list[Path]:
    """Three loose folders of real PNGs (copied out of the split layout), each one class when dropped together."""
    root = tmp_path_factory.mktemp("loose")
    folders = []
    for name in ("Sandal", "Sneaker", "Bag"):
        folders.append(Path(shutil.copytree(fmnist_small / "train" / name, root / name.lower())))
    return folders


def drop_paths(target: QWidget, paths: list[Path]) -> bool:
    """Drag `paths` over `target` and drop them (real QDragEnterEvent + QDropEvent); True if the drop was taken."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    centre = target.rect().center()
    # PySide6 6.12 takes a QPointF here (the QPoint form is deprecated); earlier versions only a QPoint.
    where = QPointF(centre) if PySide6.__version_info__ >= (6, 12) else centre
    enter = QDragEnterEvent(
        where,
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        QPointF(centre),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, drop)
    return drop.isAccepted()


@pytest.fixture
def drop():
    """`drop(widget, [paths])`: a user dragging folders from the file manager onto `widget`."""
    return drop_paths


@pytest.fixture(autouse=True)
def no_background_work_outlives_its_test():
    """Each app test runs as the app does: Python's garbage collector only from the UI thread (gc_pump). A
    test that builds a panel without the window would otherwise let a worker thread collect the test's Qt
    objects — seen: a zoo-table worker destroying a QMenu while the UI thread waited on the same Qt lock,
    a deadlock. Each test ends with its workers done and its garbage collected here, on the UI thread."""
    import gc

    from PySide6.QtCore import QThreadPool

    automatic_gc = gc.isenabled()
    gc.disable()
    yield
    QThreadPool.globalInstance().waitForDone(120_000)
    gc.collect()
    if automatic_gc:
        gc.enable()  # the tests after this one (engine, CLI) run as usual
