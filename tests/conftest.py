"""Fixtures shared by the whole suite.

Every test runs with WORKBENCH_HOME in a temp folder (never the user's real data) and Qt offscreen.
Real-data fixtures write real PNG files from the Debian Fashion-MNIST package once per session.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def workbench_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("workbench-home")
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))  # no test may touch ~/.cache/torch
    return home


# ---------------------------------------------------------------------------------------------- real data

FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(scope="session")
def fashion_mnist_source():
    """The folder of Debian's dataset-fashion-mnist package (the four IDX files)."""
    from pathlib import Path

    from workbench.engine.data.fashion_mnist import IDX_FILES

    folder = Path(FASHION_MNIST_DEBIAN)
    missing = [
        name
        for pair in IDX_FILES.values()
        for name in pair
        if not (folder / f"{name}.gz").is_file() and not (folder / name).is_file()
    ]
    if missing:
        pytest.fail(
            f"Fashion-MNIST files missing from {folder} ({', '.join(missing)}): run the test command from "
            "README.md (./packaging/bootstrap test), which installs Debian's dataset-fashion-mnist package"
        )
    return folder


@pytest.fixture(scope="session")
def fmnist_folder_factory(fashion_mnist_source, tmp_path_factory):
    """build(train_per_class, test_per_class) -> a pre-split PNG folder DEST/{train,test}/<class>/*.png.

    The first N images of each class, written once per session and size (later calls reuse them).
    Treat the folders as read-only: other tests share them.
    """
    from workbench.engine.data.fashion_mnist import export_fashion_mnist

    built = {}

    def build(train_per_class: int, test_per_class: int):
        key = (train_per_class, test_per_class)
        if key not in built:
            dest = tmp_path_factory.mktemp(f"fmnist-{train_per_class}-{test_per_class}")
            export_fashion_mnist(
                dest,
                source=str(fashion_mnist_source),
                per_class={"train": train_per_class, "test": test_per_class},
            )
            built[key] = dest
        return built[key]

    return build


@pytest.fixture(scope="session")
def fmnist_folder(fmnist_folder_factory):
    """Small pre-split Fashion-MNIST PNG folder: 60 train and 20 test images per class (read-only)."""
    return fmnist_folder_factory(60, 20)


@pytest.fixture(scope="session")
def course_cnn_run(fmnist_folder, tmp_path_factory) -> dict[str, str]:
    """course_cnn, 4 epochs on 600 real Fashion-MNIST PNGs, in its own WORKBENCH_HOME: trained enough for
    its features to set clothes apart from screenshots (a 1-epoch model flags only a few at the same 5%
    false-alarm rate). {"home", "run_id", "checkpoint"}; shared: treat the run as read-only."""
    from workbench.engine.training.config import TrainConfig
    from workbench.engine.training.trainer import Trainer

    home = tmp_path_factory.mktemp("course-cnn-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=4, batch_size=32, seed=0)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return {"home": str(home), "run_id": finished.run_id, "checkpoint": finished.checkpoint}


@pytest.fixture
def write_image():
    """write_image(path, size=(w, h), mode="RGB", color=..., **save_options) -> path: a real image file.

    The format follows the extension (Pillow); parent folders are created.
    """
    from pathlib import Path

    from PIL import Image

    def write(path, size=(16, 12), mode="RGB", color=None, **save_options):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if color is None:
            color = 128 if len(mode) == 1 or mode.startswith("I") else (200, 100, 50, 255)[: len(mode)]
        Image.new(mode, size, color).save(path, **save_options)
        return path

    return write
