"""What one training run holds while it trains, and how it writes itself to a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.engine.data import BatchIterator
from workbench.engine.runs import RunHandle
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.data_setup import PreparedData
from workbench.engine.training.oom import OomBackoff
from workbench.engine.training.optim import Schedule
from workbench.engine.training.transfer import TransferPlan


@dataclass
class Session:
    """Everything a run holds while it trains (built by session_setup.prepare_session)."""

    config: TrainConfig
    device: torch.device
    data: PreparedData
    model: torch.nn.Module
    forward_model: torch.nn.Module  # the compiled model on CUDA with --compile, else `model`
    plan: TransferPlan
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    train_batches: BatchIterator
    eval_batches: dict[str, BatchIterator]
    history: list[dict[str, Any]]
    start_epoch: int
    notes: list[str] = field(default_factory=list)  # what setup chose and why, for RunStarted
    # The run folder and registry row: the trainer opens it after setup (session_setup.open_run_folder);
    # passes that record nothing, like lr_find, leave it None.
    handle: RunHandle | None = None
    is_main: bool = True  # distributed: only rank 0 writes
    oom: OomBackoff | None = None  # set in __post_init__: halves the micro-batch on out-of-memory

    def __post_init__(self) -> None:
        if self.oom is None:
            name = "GPU" if self.device.type in ("cuda", "mps") else "memory"
            self.oom = OomBackoff(
                self.train_batches.batch_size, floor=min(8, self.train_batches.batch_size), device_name=name
            )

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_batches)

    @property
    def best_acc(self) -> float | None:
        """Validation accuracy of the model the run keeps (best.pt): the newest epoch marked "best", or
        for histories written before epochs were marked, the highest."""
        kept = [h["val_acc"] for h in self.history if h.get("best") and h.get("val_acc") is not None]
        if kept:
            return kept[-1]
        return max((h["val_acc"] for h in self.history if h.get("val_acc") is not None), default=None)

    def save(
        self, epoch: int, *, best: bool, schedule_state: dict | None, rng: dict, also: tuple[str, ...] = (),
        extra: dict | None = None,
    ) -> Path:
        """Write last.pt (and best.pt, and copies named in `also`); `epoch` counts the epochs the weights
        have completed; `extra`: more entries for this checkpoint alone."""
        assert self.handle is not None, "a session without a run folder saves nothing"
        folder = self.handle.checkpoints_dir
        if not self.is_main:
            return folder / ckpt.LAST
        payload = {
            "model": self.config.model,
            "model_args": self.config.model_args,
            "classes": self.data.classes,
            "preprocessing": self.data.preprocessing.to_dict(),
            "config": self.config.to_dict(),
            "epoch": epoch,
            "history": self.history,
            "best_val_acc": self.best_acc,
            "model_state": self.model.state_dict(),  # the bare model's, never DDP's "module."-prefixed
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": schedule_state,
            "scaler_state": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": rng,
            **(extra or {}),
        }
        copies = tuple(folder / name for name in (ckpt.BEST,) * best + also)
        path = ckpt.save_checkpoint(folder / ckpt.LAST, payload, copies)
        self.handle.record_checkpoint(folder / ckpt.BEST if (folder / ckpt.BEST).is_file() else path)
        return path
