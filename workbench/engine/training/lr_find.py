"""Learning-rate finder (Smith 2015, fastai's `lr_find`): a short run of the trainer's own setup whose rate
grows exponentially each step; it records the smoothed loss and suggests a rate a decade below where the loss
bottoms out.

The network, its weights (fresh, ImageNet, or an earlier run's with a new head), the transfer plan, the
batches and their normalization all come from `session_setup.prepare_session`, as for a run: what the sweep
measures is what training with the same settings would do. Nothing is written: no run, no checkpoint.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

import torch

from workbench.engine.data import BatchIterator
from workbench.engine.device import pick_device
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import Event, Message, StepEnded
from workbench.engine.training.optim import current_lr
from workbench.engine.training.session import Session
from workbench.engine.training.session_setup import prepare_session
from workbench.engine.training.steps import train_step

SMOOTHING = 0.9  # the loss averaged over the last ~10 steps: smooth, and lagging a 100-step sweep little
DIVERGED = 4.0  # the sweep ends once the smoothed loss is this many times its lowest (fastai's rule)


@dataclass
class LRFindResult:
    """The curve of the steps taken, and the rate it suggests. A sweep stopped before its end (`stopped`: by
    `should_stop`, not by its last step or a diverging loss) suggests nothing: its curve has not reached the
    rates where the loss bottoms out, so its lowest loss so far is no minimum (stopped after 11 of 100 steps,
    the rule would 'suggest' the sweep's first rate)."""

    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float | None  # None when stopped
    stopped: bool = False

    def to_dict(self) -> dict:
        return {"lrs": self.lrs, "losses": self.losses, "suggestion": self.suggestion, "stopped": self.stopped}


def sweep_result(lrs: list[float], losses: list[float], *, stopped: bool) -> LRFindResult:
    """The result of a sweep's steps (their rates and smoothed losses): the finite points, and a suggestion
    only when the sweep ran to its end. The app builds a stopped sweep's result here too."""
    finite = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    lrs, losses = [p[0] for p in finite], [p[1] for p in finite]
    return LRFindResult(lrs, losses, None if stopped else suggest_lr(lrs, losses), stopped)


def suggest_lr(lrs: list[float], losses: list[float]) -> float:
    """A tenth of the rate where the smoothed loss bottoms out (Smith's rule of thumb, fastai's `lr_min`).

    The steepest-slope point is too noisy to trust on small datasets: early in the sweep the loss
    jitters and the steepest "descent" can be the very first rate.
    """
    if not lrs:
        return 1e-3
    lowest = min(range(len(losses)), key=losses.__getitem__)
    return max(lrs[lowest] / 10, lrs[0])


def lr_find(
    config: TrainConfig,
    *,
    num_steps: int = 100,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
) -> LRFindResult:
    """The sweep without its progress events (see `sweep` for those)."""
    events = sweep(config, num_steps=num_steps, start_lr=start_lr, end_lr=end_lr, should_stop=should_stop)
    while True:
        try:
            next(events)
        except StopIteration as done:
            return done.value


def sweep(
    config: TrainConfig,
    *,
    num_steps: int = 100,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
) -> Generator[Event, None, LRFindResult]:
    """Set up as the trainer does, then train `num_steps` steps at rates from `start_lr` to `end_lr`.

    Yields the setup's events (DataProgress, FileSkipped, Message) and one StepEnded per step (its loss
    smoothed, its `step_in_epoch` counting up to `num_steps`); returns the curve and the suggestion. Ends
    early when the loss diverges (a complete sweep) or `should_stop()` says so (a stopped one: no suggestion).
    """
    device = pick_device(config.validate().device)
    session = yield from prepare_session(config, device, should_stop=should_stop)
    ratios = _rate_ratios(session.optimizer)
    growth = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    lrs: list[float] = []
    losses: list[float] = []
    average, lowest = 0.0, math.inf
    stopped = False
    session.plan.train()
    started = time.perf_counter()
    for step, (x, y) in enumerate(_endless(session.train_batches), start=1):
        lr = start_lr * growth ** (step - 1)
        for group, ratio in zip(session.optimizer.param_groups, ratios, strict=True):
            group["lr"] = lr * ratio
        loss = _train_step(session, x, y).item()
        for text in session.oom.pop_messages():
            yield Message(text, "warning")
        # An exponential moving average started at 0, divided by (1 - beta^step) so its first values are
        # the loss itself, not a tenth of it (or, divided without that start, ten times it).
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        smoothed = average / (1 - SMOOTHING**step)
        lrs.append(lr)
        losses.append(smoothed)
        lowest = min(lowest, smoothed)
        rate = step * len(y) / max(time.perf_counter() - started, 1e-9)
        yield StepEnded(step, 1, smoothed, lr, rate, step, num_steps)
        if not math.isfinite(smoothed) or smoothed > DIVERGED * lowest or step >= num_steps:
            break
        if should_stop is not None and should_stop():
            stopped = True
            break
    return sweep_result(lrs, losses, stopped=stopped)


def _rate_ratios(optimizer: torch.optim.Optimizer) -> list[float]:
    """Each parameter group's rate over the head's (the largest): the sweep keeps the plan's discriminative
    rates (pretrained layers slower), so the rate it suggests is the one `config.lr` sets."""
    top = current_lr(optimizer)
    return [group["lr"] / top for group in optimizer.param_groups]


def _train_step(session: Session, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One step exactly as the trainer takes it: mixed precision, clipping, label smoothing, and the
    out-of-memory fallback to smaller micro-batches."""
    assert session.oom is not None
    return session.oom.run(
        lambda micro: train_step(
            session.forward_model, x, y, session.optimizer, session.scaler, amp_dtype=session.amp_dtype,
            label_smoothing=session.config.label_smoothing, grad_clip=session.config.grad_clip,
            micro_batch=micro,
        )
    )[0]  # fmt: skip


def _endless(batches: BatchIterator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Training batches epoch after epoch: a small folder holds fewer batches than the sweep has steps."""
    epoch = 0
    while True:
        batches.set_epoch(epoch)
        yield from batches
        epoch += 1
