"""A run being written: the handle a training process holds (the run's lock, its files, its registry row)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engine.atomic import write_json_atomic
from workbench.engine.errors import Action, WorkbenchError
from workbench.engine.runs.rows import STATUSES, relative_checkpoint


@dataclass
class RunHandle:
    """A run being written by this process; holds the run's lock until `close()`."""

    update_row: Callable[..., None]  # writes fields of this run's registry row (given by the registry)
    run_id: str
    run_dir: Path
    _lock_file: Any = field(default=None, repr=False)

    @property
    def checkpoints_dir(self) -> Path:
        path = self.run_dir / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, filename: str, obj: Any) -> None:
        path = self.run_dir / filename
        try:
            write_json_atomic(path, obj)
        except OSError as exc:
            raise WorkbenchError(
                f"could not write {path}: {exc.strerror or exc}. Checkpoints saved so far are intact; free some "
                "space, then resume the run: ",
                Action("continue", self.run_id),
            ) from None

    def record_epoch(self, metrics: list[dict[str, Any]], best_val_acc: float | None) -> None:
        """Store the full metric history (the run folder and the registry stay in step)."""
        self.write_json("history.json", metrics)
        self.update_row(metrics=json.dumps(metrics), best_val_acc=best_val_acc)

    def record_checkpoint(self, path: str | os.PathLike) -> None:
        self.update_row(checkpoint=relative_checkpoint(self.run_dir, path))

    def update(self, **fields: Any) -> None:
        if "config" in fields:  # the run folder and the registry stay in step
            self.write_json("config.json", fields["config"])
            fields["config"] = json.dumps(fields["config"])
        self.update_row(**fields)

    def finish(self, status: str, reason: str = "", test_acc: float | None = None) -> None:
        assert status in STATUSES, status
        self.update_row(status=status, reason=reason, test_acc=test_acc, pid=None)
        self.close()

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None


class FollowerRunHandle(RunHandle):
    """A distributed rank other than 0: knows the run's id and folder, writes nothing (rank 0 does)."""

    def __init__(self, run_id: str, run_dir: Path):
        super().__init__(update_row=lambda **fields: None, run_id=run_id, run_dir=run_dir)

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def write_json(self, filename: str, obj: Any) -> None:
        pass

    def record_epoch(self, metrics: list[dict[str, Any]], best_val_acc: float | None) -> None:
        pass

    def record_checkpoint(self, path: str | os.PathLike) -> None:
        pass

    def update(self, **fields: Any) -> None:
        pass

    def finish(self, status: str, reason: str = "", test_acc: float | None = None) -> None:
        pass


