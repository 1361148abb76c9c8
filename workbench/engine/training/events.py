"""The one stream of typed events the engine yields to its clients (CLI, desktop app).

Clients only read these; they never reach into the trainer. Every event is a small frozen
dataclass that survives `dataclasses.asdict` -> JSON.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """How a run stands. A str, so JSON, the registry and older code comparing with "finished" all agree."""

    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process ended without finishing (killed, crashed)


@dataclass(frozen=True)
class Event:
    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    run_id: str
    run_dir: str
    model: str
    classes: list[str]
    device: str
    train_images: int
    val_images: int
    test_images: int
    epochs: int
    steps_per_epoch: int
    start_epoch: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. "image size 28 chosen from the data"
    plan: str = ""  # one sentence: model, weights, size, stages, strategy, epochs (defaults.describe_plan)
    resumed: bool = False  # a continued or resumed run: its earlier epochs (stage 1 included) are in its history


@dataclass(frozen=True)
class DataProgress(Event):
    """Long data work before training (scanning, decoding into the cache)."""

    stage: str  # "scan" | "decode"
    done: int
    total: int


@dataclass(frozen=True)
class Message(Event):
    """Something the user should read: a skipped file, a batch-size change, an automatic choice."""

    text: str
    level: str = "info"  # "info" | "warning"


@dataclass(frozen=True)
class FileSkipped(Event):
    """An image that could not be used (undecodable, unreadable…); the run goes on without it."""

    path: str  # as on disk (may hold non-UTF-8 bytes as lone surrogates: show it with event_text)
    reason: str


@dataclass(frozen=True)
class Paused(Event):
    """Training waits between two steps until resumed (or stopped)."""


@dataclass(frozen=True)
class Resumed(Event):
    """Training goes on after a pause."""


@dataclass(frozen=True)
class StepEnded(Event):
    step: int  # global step, counting from 1
    epoch: int  # 1-based epoch this step belongs to
    loss: float
    lr: float
    images_per_s: float
    step_in_epoch: int = 0
    steps_per_epoch: int = 0


@dataclass(frozen=True)
class EpochEnded(Event):
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float
    lr: float = 0.0
    images_per_s: float = 0.0
    val_top5: float | None = None
    stage: str = ""  # "linear probe" for stage 1's head fitted on frozen features (epoch 0); "" = training
    val_images: int = 0  # how many images val_acc was measured on (for its uncertainty)
    cv_accuracy: float | None = None  # k-fold cross-validated accuracy on the training images (stage 1)
    cv_se: float | None = None  # its standard error across folds


@dataclass(frozen=True)
class CheckpointSaved(Event):
    path: str
    epoch: int  # epochs completed
    best: bool = False
    stopped_in_epoch: int | None = None  # a stop's checkpoint: the epoch (1-based) it interrupted


@dataclass(frozen=True)
class RunFinished(Event):
    status: RunStatus  # FINISHED | STOPPED | FAILED
    reason: str = ""
    run_id: str = ""
    checkpoint: str | None = None
    epochs: int = 0  # epochs completed
    val_accuracy: float | None = None
    test_accuracy: float | None = None
