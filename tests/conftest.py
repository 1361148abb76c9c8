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
    return home
