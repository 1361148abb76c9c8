import os

import pytest

from workbench.engine import paths
from workbench.engine.errors import WorkbenchError


def test_workbench_home_relocates_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "wb"))
    for folder in (paths.data_dir(), paths.cache_dir(), paths.config_dir(), paths.runs_dir()):
        assert folder.is_dir() and folder.is_relative_to(tmp_path / "wb")


def test_unusable_home_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("WORKBENCH_HOME", str(blocker))
    with pytest.raises(WorkbenchError, match="a-file.*WORKBENCH_HOME"):
        paths.data_dir()
    assert paths.data_dir_path() == blocker / "data"  # reporting the place never fails
    assert not os.path.isdir(blocker)
