"""Fixtures of the engine tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def few(fmnist_folder_factory):
    """12 training and 10 test images per class, 10 classes: a folder as people bring them."""
    return fmnist_folder_factory(12, 10)
