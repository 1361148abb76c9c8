"""The dataset map's projection (issue 15, item 4): real Fashion-MNIST embeddings keep their classes together in
2-D, large inputs are laid out from landmarks, and odd inputs (none, one, identical, few) get a layout and a
note instead of an error."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from workbench.engine.review import embed_dataset
from workbench.engine.review.projection import place_by_neighbours, principal_components, project

CLASSES = ("Trouser", "Bag", "Sneaker", "Dress", "Sandal")


@pytest.fixture(scope="module")
def embedded(fmnist_folder_factory, tmp_path_factory):
    source = fmnist_folder_factory(20, 2) / "train"
    root = tmp_path_factory.mktemp("map-classes")
    for name in CLASSES:
        shutil.copytree(source / name, root / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("map-home")))
        return embed_dataset(str(root), size=64)


def _agreement(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Share of each point's k nearest points (Euclidean) that have its class."""
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    return float((labels[nearest] == labels[:, None]).mean())


def test_real_embeddings_keep_classes_together_on_the_map(embedded):
    labels = embedded.labels.numpy()
    projection = project(embedded.features)  # the app's method (t-SNE)
    assert projection.method == "tsne" and projection.xy.shape == (100, 2)
    assert np.isfinite(projection.xy).all() and np.abs(projection.xy).max() == pytest.approx(1.0)
    high = _agreement(principal_components(embedded.features), labels)
    low = _agreement(projection.xy, labels)
    shuffled = _agreement(projection.xy, np.random.default_rng(0).permutation(labels))
    assert low >= 0.85 * high and low > 0.7 > shuffled + 0.3, (low, high, shuffled)
    plane = _agreement(project(embedded.features, method="pca").xy, labels)
    assert low > plane, (low, plane)  # what the neighbour layout is for: PCA's plane mixes classes more


def test_many_images_are_laid_out_from_landmarks_and_placed_among_their_neighbours(embedded):
    labels = embedded.labels.numpy()
    projection = project(embedded.features, landmarks=40)
    assert projection.xy.shape == (100, 2) and any("laid out from 40" in n for n in projection.notes)
    assert _agreement(projection.xy, labels) > 0.7


def test_placing_puts_a_point_among_its_nearest_landmarks():
    reduced = np.array([[0.0, 0.0], [10.0, 0.0], [0.1, 0.0], [9.9, 0.0]], np.float32)
    layout = np.array([[-1.0, -1.0], [1.0, 1.0]], np.float32)
    xy = place_by_neighbours(reduced, np.array([0, 1]), layout, k=1)
    assert np.allclose(xy, [[-1, -1], [1, 1], [-1, -1], [1, 1]])


def test_odd_inputs_get_a_layout_and_a_note():
    assert project(torch.zeros(0, 8)).xy.shape == (0, 2)
    one = project(torch.ones(1, 8))
    assert one.xy.shape == (1, 2) and "single image" in one.notes[0]
    same = project(torch.ones(50, 8))
    assert np.allclose(same.xy, 0) and "look the same" in same.notes[0]
    few = project(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)))
    assert few.method == "pca" and few.xy.shape == (6, 2) and "only 6 images" in few.notes[0]
    two_features = project(torch.randn(40, 2, generator=torch.Generator().manual_seed(1)), method="pca")
    assert two_features.xy.shape == (40, 2)
    with pytest.raises(ValueError, match="unknown projection method"):
        project(torch.ones(3, 3), method="mds")
