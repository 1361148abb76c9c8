"""Helpers of the few-folder tests (test_few_shot*.py, test_lp_ft.py): run a config to its end, read what
it said, and the weights stage 2 starts from and ends with."""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import Message, RunFinished
from workbench.engine.training.trainer import Trainer

FAST = {"img_size": 64, "test_split": 0.0}  # pretrained runs at 64 px keep these tests quick on 2 cores


def run(config: TrainConfig) -> list:
    events = list(Trainer(config).run())
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == "finished", finished.reason
    return events


def messages(events) -> str:
    return "\n".join(e.text for e in events if isinstance(e, Message))


def tap_columns(state: dict) -> torch.Tensor:
    return state["_fc.weight"][:, 1280:]


def final_and_probe_weights(events) -> tuple[dict, dict]:
    from workbench.engine.training import checkpoint as ckpt

    folder = Path(events[-1].checkpoint).parent
    return (
        ckpt.load_checkpoint(folder / ckpt.LAST)["model_state"],
        ckpt.load_checkpoint(folder / ckpt.PROBE)["model_state"],
    )
