"""The feature-map inspector on a real trained model: a layer's grid has one tile per channel, a clicked
channel is enlarged with its statistics, the keyboard steps through layers, flipping moves the maps, the
filters and Grad-CAM pages draw, and the newest checkpoint can be inspected."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from tiny_run import train_tiny_run

from workbench.app.inspector.view import InspectorView
from workbench.engine.errors import ModelError
from workbench.engine.inspection.inspector import Inspector
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(fmnist_folder, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("inspector-home")
    run = train_tiny_run(fmnist_folder, home)
    image = sorted((Path(fmnist_folder) / "test" / "Sneaker").glob("*.png"))[0]
    return {**run, "image": str(image)}


@pytest.fixture(autouse=True)
def trained_home(trained, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", trained["home"])


@pytest.fixture
def view(qtbot, trained) -> InspectorView:
    view = InspectorView()
    qtbot.addWidget(view)
    view.resize(1300, 800)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(view.model_loaded, timeout=30_000):
        view.set_run(trained["run_id"])
    view.set_image(trained["image"])
    return view


def _conv_layers(view: InspectorView) -> list[str]:
    tree = view.inspector.layer_tree()
    return [node.name for node in tree.walk() if node.kind == "conv"]


def test_opening_a_layer_shows_one_tile_per_channel_sorted_by_mean(qtbot, view, trained):
    tree = view.inspector.layer_tree()
    assert view.layer_names() == [node.name for node in tree.walk() if node.inspectable and node.name]
    layer = _conv_layers(view)[1]
    channels = tree.find(layer).output_shape[0]
    with qtbot.waitSignal(view.layer_shown, timeout=30_000) as shown:
        view.select_layer(layer)
    assert shown.args == [layer, channels]
    assert view.tile_count() == channels
    assert f"{channels} channels" in view.grid_title.text()

    engine = Inspector.load(trained["run_id"]).feature_maps(trained["image"], layer)
    assert [view.grid.item(i).data(Qt.ItemDataRole.UserRole) for i in range(channels)] == engine.order("mean")

    item = view.grid.item(2)
    qtbot.mouseClick(
        view.grid.viewport(), Qt.MouseButton.LeftButton, pos=view.grid.visualItemRect(item).center()
    )
    channel = item.data(Qt.ItemDataRole.UserRole)
    info = engine.channel(channel)
    assert f"channel <b>{channel}</b>" in view.stats_label.text()
    assert f"max {info.max:.4g}" in view.stats_label.text()
    assert f"zero {info.fraction_zero:.1%}" in view.stats_label.text()
    assert not view.channel_label.pixmap().isNull() and not view.input_label.pixmap().isNull()


def test_keyboard_steps_through_layers_and_flipping_moves_the_maps(qtbot, view):
    names = view.layer_names()
    with qtbot.waitSignal(view.layer_shown, timeout=30_000):
        view.select_layer(names[0])
    view.tree.setFocus()
    with qtbot.waitSignal(view.layer_shown, timeout=30_000) as shown:
        qtbot.keyClick(view.tree, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)
    assert shown.args[0] == names[1] == view.current_layer()
    with qtbot.waitSignal(view.layer_shown, timeout=30_000) as shown:
        qtbot.keyClick(view.tree, Qt.Key.Key_PageDown)
    assert shown.args[0] == names[2]
    with qtbot.waitSignal(view.layer_shown, timeout=30_000) as shown:
        qtbot.keyClick(view.tree, Qt.Key.Key_PageUp)
    assert shown.args[0] == names[1]

    first_conv = _conv_layers(view)[0]
    with qtbot.waitSignal(view.layer_shown, timeout=30_000):
        view.select_layer(first_conv)
    plain = view.pictures.maps.activation.clone()
    with qtbot.waitSignal(view.layer_shown, timeout=30_000):
        view.flip.setChecked(True)
    flipped = view.pictures.maps.activation
    assert not torch.allclose(plain, flipped)
    # a convolution commutes with the flip up to its (unflipped) kernels: the maps move, their sizes stay
    assert flipped.shape == plain.shape


def test_filters_and_grad_cam_pages(qtbot, view):
    with qtbot.waitSignal(view.filters_shown, timeout=30_000) as shown:
        view.pages.setCurrentIndex(1)
    kernels = view.inspector.kernels()
    assert shown.args == [kernels.num_kernels]
    assert not view.filters_label.pixmap().isNull()

    with qtbot.waitSignal(view.cam_shown, timeout=30_000) as shown:
        view.pages.setCurrentIndex(2)
    predicted = int(view.inspector.probabilities(view.image_path).argmax())
    assert shown.args == [predicted]
    assert view.inspector.classes[predicted] in view.cam_info.text()
    other = (predicted + 1) % len(view.inspector.classes)
    with qtbot.waitSignal(view.cam_shown, timeout=30_000) as shown:
        view.cam_class.setCurrentIndex(other + 1)
        view.request_cam()
    assert shown.args == [other]
    before = view.cam_label.pixmap().toImage()
    view.opacity.setValue(100)
    assert view.cam_label.pixmap().toImage() != before


def test_the_newest_checkpoint_is_inspected_when_asked(qtbot, view, trained):
    assert Path(str(view.inspector.checkpoint)).name == "best.pt"
    with qtbot.waitSignal(view.model_loaded, timeout=30_000) as loaded:
        view.set_run(trained["run_id"], latest=True)
    assert Path(loaded.args[0]).name == "last.pt"


def test_a_run_still_training_is_inspected_at_its_newest_checkpoint(qtbot, fmnist_folder, trained):
    """The trainer is suspended between epochs (its generator not yet exhausted): the run is live, and the
    inspector reads its last.pt into its own model copy, then the run finishes undisturbed."""
    from workbench.engine.runs import RunRegistry
    from workbench.engine.training.events import CheckpointSaved

    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=2, batch_size=64, seed=1)
    events = Trainer(config).run()
    saved = next(event for event in events if isinstance(event, CheckpointSaved))
    run_id = Path(saved.path).parent.parent.name
    assert RunRegistry().get(run_id).status == "running"

    view = InspectorView()
    qtbot.addWidget(view)
    view.show()
    with qtbot.waitSignal(view.model_loaded, timeout=30_000) as loaded:
        view.set_run(run_id, latest=True)
    assert Path(loaded.args[0]) == Path(saved.path).parent / "last.pt"
    view.set_image(trained["image"])
    layer = _conv_layers(view)[0]
    with qtbot.waitSignal(view.layer_shown, timeout=30_000) as shown:
        view.select_layer(layer)
    assert view.tile_count() == shown.args[1] == view.inspector.layer_tree().find(layer).output_shape[0]

    first_weights = view.inspector.kernels().weight.clone()
    saved_again = next(event for event in events if isinstance(event, CheckpointSaved))
    assert saved_again.epoch == 2
    with qtbot.waitSignal(view.model_loaded, timeout=30_000):
        view.checkpoint_saved(run_id)  # what the window calls on each CheckpointSaved of a training run
    assert not torch.equal(view.inspector.kernels().weight, first_weights)  # the newer epoch's weights
    qtbot.waitUntil(lambda: view.pictures is not None and view.tile_count() == shown.args[1], timeout=30_000)

    finished = list(events)[-1]
    assert finished.status == "finished" and finished.epochs == 2


# ---- requests as background jobs: a newer one supersedes, failures are shown ----------------------------------


def test_a_newer_layer_request_supersedes_an_older_one_still_computing(qtbot, view, monkeypatch):
    from workbench.app.inspector import work

    qtbot.waitUntil(lambda: not view.busy, timeout=30_000)
    names = view.layer_names()
    slow_layer, quick_layer = names[0], names[1]
    release, slow_started = threading.Event(), threading.Event()
    real = work.layer_pictures

    def layer_pictures(inspector, request, layer):
        if layer == slow_layer:
            slow_started.set()
            release.wait(10)
        return real(inspector, request, layer)

    monkeypatch.setattr(work, "layer_pictures", layer_pictures)
    shown: list[str] = []
    view.layer_shown.connect(lambda layer, _channels: shown.append(layer))
    view.select_layer(slow_layer)
    assert slow_started.wait(10) and view.busy_bar.isVisible()
    with qtbot.waitSignal(view.layer_shown, timeout=30_000):
        view.select_layer(quick_layer)
    release.set()
    qtbot.waitUntil(lambda: not view.busy, timeout=30_000)
    qtbot.wait(200)  # the slow answer, had it been delivered, would be here by now
    assert shown == [quick_layer]
    assert view.pictures.layer == quick_layer and not view.busy_bar.isVisible()


@pytest.mark.parametrize(
    ("error", "title"),
    [(ModelError("this layer cannot be inspected"), "Inspection failed"), (RuntimeError("hook failed"), None)],
)
def test_a_failed_request_is_shown_and_the_view_stays_usable(qtbot, view, monkeypatch, error, title):
    from workbench.app.inspector import work
    from workbench.app.qt.dialogs import ERROR_DIALOG_NAME, UNEXPECTED_TITLE

    qtbot.waitUntil(lambda: not view.busy, timeout=30_000)

    def failing_cam(inspector, request, class_index):
        raise error

    monkeypatch.setattr(work, "grad_cam", failing_cam)
    view.pages.setCurrentIndex(2)
    qtbot.waitUntil(lambda: view.findChild(QMessageBox, ERROR_DIALOG_NAME) is not None, timeout=30_000)
    box = view.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert box.windowTitle() == (title or "Inspection failed") != UNEXPECTED_TITLE and str(error) in box.text()
    assert ("Traceback" in box.detailedText()) == (title is None)  # a bug's details, not a user error's
    assert str(error) in view.status.text()
    qtbot.waitUntil(lambda: not view.busy and not view.busy_bar.isVisible(), timeout=10_000)
    box.close()
    with qtbot.waitSignal(view.filters_shown, timeout=30_000):  # still usable
        view.pages.setCurrentIndex(1)
