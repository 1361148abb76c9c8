"""The size sweep behind the zoo table's Params/MACs columns: every model summarized at the dataset's input,
in the background, with the results kept per input so switching datasets back costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from workbench.app.model.zoo_info import ZooRow
from workbench.app.qt.workers import BackgroundJob

DatasetInput = tuple[int, int, int]  # (typical image side, channels, classes)


class ZooSizeSweep:
    """Feeds `on_row` one ZooRow per model: cached rows at once, the missing ones as the worker yields them.

    The sweep summarizes every model, so it runs only while `owner` (the table's panel) is on screen: a user
    who never opens the Model tab costs no CPU. Until then it is `pending`, and the panel restarts it when shown.
    While the app trains (`training`), it measures no model's speed: timed beside a training run, resnet18
    came out 24× slower than resnet50. Those are measured when the training ends.
    """

    def __init__(self, owner: QWidget, on_row: Callable[[ZooRow], None]) -> None:
        self._owner = owner
        self._on_row = on_row
        # A failed sweep leaves the columns empty; the layer summary reports the model's own problem.
        self._job = BackgroundJob(owner)
        self._job.progressed.connect(self._remember)
        self._cache: dict[DatasetInput, dict[str, ZooRow]] = {}
        self._input: DatasetInput | None = None
        self._specs: dict[str, Any] = {}
        self.pending = False
        self.training = False

    def start(self, specs: dict[str, Any], dataset_input: DatasetInput) -> None:
        """Report the sizes of every spec at `dataset_input`: from the cache, else in the background."""
        from workbench.app.model.zoo_info import zoo_rows, zoo_speeds

        self._job.cancel()  # the rows of another input are not wanted any more
        self._specs, self._input = specs, dataset_input
        cached = self._cache.setdefault(dataset_input, {})
        for row in cached.values():
            self._on_row(row)
        missing = [spec for name, spec in specs.items() if name not in cached]
        unmeasured = [] if self.training else [r for r in cached.values() if r.ms_per_image is None and not r.error]
        if not (missing or unmeasured) or not self._owner.isVisible():
            self.pending = bool(missing or unmeasured)
            return
        self.pending = False
        size, channels, classes = dataset_input
        if missing:
            self._job.start(zoo_rows, missing, size, channels, classes, measure_speed=not self.training)
        else:
            self._job.start(zoo_speeds, unmeasured)

    def set_training(self, training: bool) -> None:
        """The app started or ended a training run: stop timing models, or time those still untimed."""
        if training == self.training:
            return
        self.training = training
        if self._input is not None and (self._job.busy or not training):
            self.start(self._specs, self._input)  # the same rows, with or without their speed

    def _remember(self, row: ZooRow) -> None:
        self._cache.setdefault(row.dataset_input, {})[row.name] = row
        self._on_row(row)

    def known(self, dataset_input: DatasetInput) -> int:
        """How many models have their parameters and MACs computed for `dataset_input`."""
        return len(self._cache.get(dataset_input, {}))

    def stop(self) -> None:
        self._job.cancel()
