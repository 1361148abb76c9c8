"""Optimizers and learning-rate schedules, each option mapping to one obvious line."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.engine.training.config import TrainConfig


def default_lr(config: TrainConfig) -> float:
    """The usual starting point; fine-tuning pretrained weights wants a gentler one."""
    sgd = config.optimizer in (None, "sgd")
    base = 0.05 if sgd else 2e-3
    if config.linear_probe:  # LP-FT: the head already fits, fine-tuning only nudges (Kumar et al.: small rates)
        return base / 16 if sgd else base / 8  # AdamW's 2.5e-4: benchmarks/stage2_sweep.py
    return base / 5 if (config.pretrained or config.weights) else base


def build_optimizer(param_groups: list[dict], config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    if config.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=config.weight_decay)


@dataclass
class Schedule:
    """Wraps the scheduler so the trainer calls `after_step` / `after_epoch` without knowing which kind it is."""

    scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None
    per_step: bool

    def after_step(self) -> None:
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()

    def after_epoch(self, val_acc: float | None) -> None:
        if self.scheduler is None or self.per_step:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            if val_acc is not None:  # "divide by 10 when validation accuracy plateaus"
                self.scheduler.step(val_acc)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict | None:
        return self.scheduler.state_dict() if self.scheduler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scheduler is not None and state is not None:
            self.scheduler.load_state_dict(state)


def build_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int, epochs: int
) -> Schedule:
    sched = torch.optim.lr_scheduler
    if config.schedule == "onecycle" and total_steps >= 10:  # shorter: its warm-up phase would be empty
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        return Schedule(
            sched.OneCycleLR(
                optimizer,
                max_lr=max_lrs,
                total_steps=max(total_steps, 1),
                pct_start=0.25,
                div_factor=10.0,
                final_div_factor=100.0,
            ),
            per_step=True,
        )
    if config.schedule in ("cosine", "onecycle"):
        return Schedule(sched.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1)), per_step=True)
    if config.schedule == "step":
        return Schedule(
            sched.StepLR(optimizer, step_size=max(config.step_size, 1), gamma=0.1), per_step=False
        )
    if config.schedule == "plateau":
        return Schedule(
            sched.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=config.plateau_patience),
            per_step=False,
        )
    return Schedule(None, per_step=False)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The largest group's rate: the head's, under discriminative learning rates."""
    return max(group["lr"] for group in optimizer.param_groups)
