"""Fashion-MNIST export from the real IDX files (Debian's dataset-fashion-mnist) and the bundled sample."""

from __future__ import annotations

import gzip
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets
from PIL import Image

from workbench.engine.data import fashion_mnist as fm
from workbench.engine.data import scan_dataset
from workbench.engine.errors import DatasetError

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample-data" / "fashion-mnist-mini"


@pytest.fixture(scope="module")
def idx(fashion_mnist_source):
    return fm.load_fashion_mnist(str(fashion_mnist_source))


def test_idx_files_load_with_the_expected_shapes(idx):
    assert idx["train"][0].shape == (60000, 28, 28) and idx["train"][1].shape == (60000,)
    assert idx["test"][0].shape == (10000, 28, 28) and idx["test"][1].shape == (10000,)
    assert np.bincount(idx["test"][1]).tolist() == [1000] * 10


def test_export_writes_the_first_n_of_each_class_with_identical_pixels(tmp_path, fashion_mnist_source, idx):
    reports: list[tuple[int, int]] = []
    counts = fm.export_fashion_mnist(
        tmp_path,
        source=str(fashion_mnist_source),
        per_class=4,
        progress=lambda done, total: reports.append((done, total)),
    )

    assert counts == {"train": 40, "test": 40}
    assert reports[-1] == (80, 80)
    for split in ("train", "test"):
        images, labels = idx[split]
        assert sorted(p.name for p in (tmp_path / split).iterdir()) == sorted(fm.FASHION_MNIST_CLASSES)
        for label, name in enumerate(fm.FASHION_MNIST_CLASSES):
            files = sorted((tmp_path / split / name).glob("*.png"))
            first_four = np.flatnonzero(labels == label)[:4].tolist()
            assert [int(f.stem) for f in files] == first_four
            for f in files:
                assert np.array_equal(np.asarray(Image.open(f)), images[int(f.stem)])


def test_class_names_are_the_datasets_in_label_order_and_safe_as_folder_names():
    assert fm.FASHION_MNIST_CLASSES == [
        "T-shirt_top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
    assert not any("/" in c or "\\" in c for c in fm.FASHION_MNIST_CLASSES)


def test_rerunning_the_export_rewrites_nothing(tmp_path, fashion_mnist_source):
    fm.export_fashion_mnist(tmp_path, source=str(fashion_mnist_source), per_class={"train": 3, "test": 2})
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    for p in before:  # make any rewrite visible in the modification times
        (p.parent / p.name).touch()
    stamped = {p: p.stat().st_mtime_ns for p in before}

    counts = fm.export_fashion_mnist(
        tmp_path, source=str(fashion_mnist_source), per_class={"train": 3, "test": 2}
    )

    assert counts == {"train": 30, "test": 20}
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamped
    index = scan_dataset(tmp_path)
    assert index.layout == "pre-split" and index.counts()["test"] == [2] * 10


def test_read_idx_accepts_raw_and_gzipped_and_refuses_garbage(tmp_path, fashion_mnist_source):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress((fashion_mnist_source / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    gz = fm.read_idx(fashion_mnist_source / "t10k-labels-idx1-ubyte.gz")
    assert np.array_equal(fm.read_idx(raw), gz) and gz.dtype == np.uint8

    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello world")
    with pytest.raises(DatasetError, match="not an IDX file"):
        fm.read_idx(garbage)
    cut = tmp_path / "cut"
    cut.write_bytes(raw.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="truncated"):
        fm.read_idx(cut)


def test_a_source_without_the_files_says_where_to_get_them(tmp_path):
    with pytest.raises(DatasetError) as caught:
        fm.export_fashion_mnist(tmp_path / "out", source=str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path) in message and "t10k-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--source" in message


def test_offline_without_any_source_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(fm, "DEBIAN_SOURCE", str(tmp_path / "no-debian-package"))

    class Offline:  # stands in for the network only: torchvision's downloader failing to connect
        def __init__(self, *args, **kwargs):
            raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", Offline)
    with pytest.raises(DatasetError) as caught:
        fm.load_fashion_mnist()
    message = str(caught.value)
    assert "downloading failed" in message and "name resolution" in message
    assert "apt-get install dataset-fashion-mnist" in message and "--source" in message


def test_bad_per_class_is_a_clear_error(fashion_mnist_source, tmp_path):
    from workbench.engine.errors import ConfigError

    with pytest.raises(ConfigError, match="--per-class 0"):
        fm.export_fashion_mnist(tmp_path, source=str(fashion_mnist_source), per_class=0)


def test_bundled_sample_is_an_exact_subset_with_its_licence(idx):
    index = scan_dataset(SAMPLE, val_fraction=0.0)
    assert index.layout == "pre-split"
    assert index.classes == sorted(fm.FASHION_MNIST_CLASSES)
    assert index.counts() == {"train": [40] * 10, "test": [10] * 10}
    for sample in index.samples[::37]:
        path = Path(sample.path)
        split = path.parent.parent.name
        images, labels = idx[split]
        assert np.array_equal(np.asarray(Image.open(path)), images[int(path.stem)])
        assert fm.FASHION_MNIST_CLASSES[labels[int(path.stem)]] == path.parent.name
    licence = (SAMPLE / "LICENSE.txt").read_text()
    assert "MIT License" in licence and "Zalando" in licence and "zalandoresearch/fashion-mnist" in licence
