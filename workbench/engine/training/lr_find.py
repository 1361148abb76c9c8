"""Learning-rate finder (Smith 2015, fastai's `lr_find`): sweep the rate exponentially over a few
hundred steps, record the smoothed loss, and suggest a rate a decade below where it bottoms out."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from workbench.engine.data import BatchIterator, guess_image_geometry
from workbench.engine.device import pick_device
from workbench.engine.models import build_model
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.data_setup import decode, scan
from workbench.engine.training.defaults import choose_strategy, resolve_defaults
from workbench.engine.training.optim import build_optimizer
from workbench.engine.training.steps import seed_everything, train_step
from workbench.engine.training.transfer import TransferPlan


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]  # smoothed
    suggestion: float

    def to_dict(self) -> dict:
        return {"lrs": self.lrs, "losses": self.losses, "suggestion": self.suggestion}


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
    config.validate()
    seed_everything(config.seed, False)
    device = pick_device(config.device)
    index = _drain(scan(config, should_stop=should_stop))
    size, channels = guess_image_geometry(index.split("train"))
    config, _ = resolve_defaults(
        config, typical_size=size, channels=channels, num_train_images=len(index.split("train"))
    )
    data = _drain(
        decode(
            index, config.img_size, config.channels, imagenet_stats=config.pretrained, should_stop=should_stop
        )
    )
    model = build_model(
        config.model,
        len(data.classes),
        config.channels,
        pretrained=config.pretrained,
        weights_path=config.weights,
        **config.model_args,
    ).to(device)
    if config.strategy is None:
        config.strategy, _ = choose_strategy(config, model, len(data.train.labels))
    plan = TransferPlan(
        model,
        config.strategy,
        unfreeze=config.unfreeze,
        backbone_lr_mult=config.backbone_lr_mult,
        head_epochs=0,
        pretrained=config.pretrained or bool(config.weights),
    )
    plan.start_epoch(0)
    plan.train()
    optimizer = build_optimizer(plan.param_groups(start_lr, config.weight_decay), config, start_lr)
    base_lrs = [group["lr"] / start_lr for group in optimizer.param_groups]  # keep discriminative ratios
    batches = BatchIterator(
        data.train.images,
        data.train.labels,
        config.batch_size,
        shuffle=True,
        device=device,
        mean=data.preprocessing.mean,
        std=data.preprocessing.std,
        augment=config.augment,
        seed=config.seed,
        drop_last=len(data.train.labels) > config.batch_size,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=False)
    gamma = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    lrs: list[float] = []
    losses: list[float] = []
    smoothed, best = 0.0, math.inf
    epoch = 0
    while len(lrs) < num_steps:
        batches.set_epoch(epoch)
        for x, y in batches:
            lr = start_lr * gamma ** len(lrs)
            for group, ratio in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = lr * ratio
            loss, _ = train_step(
                model,
                x,
                y,
                optimizer,
                scaler,
                amp_dtype=None,
                label_smoothing=config.label_smoothing,
                grad_clip=config.grad_clip,
            )
            value = loss.item()
            smoothed = value if not lrs else 0.9 * smoothed + 0.1 * value
            debiased = smoothed / (1 - 0.9 ** (len(lrs) + 1))
            lrs.append(lr)
            losses.append(debiased)
            best = min(best, debiased)
            if not math.isfinite(debiased) or debiased > 4 * best or len(lrs) >= num_steps:
                break
            if should_stop is not None and should_stop():
                break
        else:
            epoch += 1
            continue
        break
    finite = [(lr, loss) for lr, loss in zip(lrs, losses, strict=True) if math.isfinite(loss)]
    lrs, losses = [p[0] for p in finite], [p[1] for p in finite]
    return LRFindResult(lrs, losses, suggest_lr(lrs, losses))


def _drain(gen):
    """Run an event generator to its end and return its value (lr_find reports no progress)."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
