"""Settings persist between launches in WORKBENCH_HOME's config folder, and survive a damaged file."""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray

from workbench.app.window.settings import AppSettings
from workbench.engine import paths


def test_values_round_trip_through_a_new_settings_object(qapp, workbench_home):
    first = AppSettings()
    first.set_last_dataset(["/data/cats", "/data/dogs"])
    first.set_last_model("resnet18_small")
    first.set_hyperparameters({"epochs": 3, "lr": 0.01, "augment": {"flip": False}})
    first.set_geometry(QByteArray(b"geometry-bytes"))
    first.set_sample_offered()
    first.sync()

    again = AppSettings()
    assert again.path.parent == paths.config_dir()
    assert str(workbench_home) in str(again.path)
    assert again.last_dataset() == ["/data/cats", "/data/dogs"]
    assert again.last_model() == "resnet18_small"
    assert again.hyperparameters() == {"epochs": 3, "lr": 0.01, "augment": {"flip": False}}
    assert bytes(again.geometry()) == b"geometry-bytes"
    assert again.sample_offered() is True


def test_fresh_settings_have_defaults_and_bad_json_is_ignored(qapp):
    settings = AppSettings()
    assert settings.last_dataset() == []
    assert settings.last_model() is None
    assert settings.geometry() is None
    assert settings.sample_offered() is False
    settings._qs.setValue("training/hyperparameters", "{not json")
    assert settings.hyperparameters() == {}


def test_a_folder_named_with_the_path_separator_stays_one_folder(qapp):
    """Issue 12 #3: folders are a list, never a string joined with os.pathsep."""
    first = AppSettings()
    first.set_last_dataset([f"/data/ti{os.pathsep}me", "/data/dogs"])
    first.sync()
    assert AppSettings().last_dataset() == [f"/data/ti{os.pathsep}me", "/data/dogs"]
