"""What a run starts from besides fresh weights: its own last checkpoint (resume) or an earlier run's."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.engine.data import DatasetIndex
from workbench.engine.errors import Action, WeightsError, WorkbenchError
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.going_on import cannot_go_on, goes_on_to_stage_2


@dataclass
class ResumeState:
    run_id: str
    run_dir: Path
    payload: dict[str, Any]  # the last checkpoint
    config: TrainConfig
    index: DatasetIndex  # the run's own file list and splits, whatever the folder holds now
    schedule_reset: bool  # epochs changed ("continue training"): a fresh schedule for the remaining epochs
    # A quick run (stage 1 only) continued: it now fine-tunes, starting where a run without "quick" would have.
    after_quick: bool = False

    @property
    def epoch(self) -> int:
        return self.payload["epoch"]

    @property
    def history(self) -> list[dict[str, Any]]:
        return [h for h in self.payload.get("history", []) if h.get("epoch", 0) <= self.epoch]


def load_resume_state(registry: RunRegistry, ref: str, epochs: int | None) -> ResumeState:
    """The state to continue run `ref`; `epochs`, when given, changes the run's total epoch count."""
    record = registry.get(ref)
    run_dir = Path(record.run_dir)
    if not run_dir.is_dir():
        raise WorkbenchError(
            f"the folder of run {record.run_id}, {run_dir}, is missing (deleted or moved); move it back, or "
            "remove the run from the list with ",
            Action("delete", record.run_id),
        )
    last = run_dir / "checkpoints" / ckpt.LAST
    if not last.is_file():
        raise WeightsError(f"run {record.run_id} has no checkpoint to resume from; start a new run instead")
    payload = ckpt.load_checkpoint(last)
    config = TrainConfig.from_dict(payload["config"])
    refused = cannot_go_on(
        record.run_id, status=record.status, done=payload["epoch"], total=config.epochs, epochs=epochs
    )
    if refused is not None:
        raise refused
    schedule_reset = bool(epochs) and epochs != config.epochs
    if schedule_reset:
        config = dataclasses.replace(config, epochs=epochs)
    after_quick = goes_on_to_stage_2(dataclasses.asdict(config), payload["epoch"])
    if after_quick:
        config = dataclasses.replace(config, quick=False)
    try:
        index = DatasetIndex.from_dict(json.loads((run_dir / "dataset.json").read_text()))
    except (OSError, ValueError, KeyError) as exc:
        raise WorkbenchError(f"cannot read the file list of run {record.run_id}: {exc}") from None
    return ResumeState(record.run_id, run_dir, payload, config, index, schedule_reset, after_quick)


def previous_run_checkpoint(weights: str | None) -> dict[str, Any] | None:
    """The checkpoint when `weights` names one of the user's runs or a workbench checkpoint file;
    None for no weights or a plain (torchvision-style) state dict, which build_model loads and checks."""
    if not weights:
        return None
    path = Path(weights).expanduser()
    if path.is_file():
        try:
            return ckpt.load_checkpoint(path)
        except WeightsError:
            return None
    return ckpt.load_checkpoint(ckpt.find_checkpoint(weights))
