"""The guard that keeps PySide6 6.12's lost references to None from aborting the app on Python 3.11."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QWidget

from workbench.app import none_guard


def test_top_up_restores_references_when_they_run_low(qapp, monkeypatch):
    if not none_guard.needed():  # None is immortal here: nothing to guard
        assert none_guard.top_up() is False
        return
    widget = QWidget()
    for _ in range(5000):
        widget.update()  # with PySide6 6.12.0 each of these takes a reference to None away
    monkeypatch.setattr(none_guard, "FLOOR", sys.getrefcount(None) + 1000)  # "running low" now
    before = sys.getrefcount(None)
    assert none_guard.top_up() is True
    assert sys.getrefcount(None) >= before + none_guard.FLOOR - 10
    assert none_guard.top_up() is False  # enough now


def test_importing_the_app_package_tops_up_at_once():
    assert not none_guard.needed() or sys.getrefcount(None) > none_guard.FLOOR // 2
