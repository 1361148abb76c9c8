"""One optimization step, one evaluation pass, and seeding: the arithmetic at the heart of the loop."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workbench.engine.evaluation.metrics import topk_accuracy
from workbench.engine.training.oom import micro_batches

AUX_LOSS_WEIGHT = 0.3  # GoogLeNet's weight for its auxiliary heads


def train_step(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    *,
    amp_dtype: torch.dtype | None,
    label_smoothing: float = 0.0,
    grad_clip: float | None = None,
    micro_batch: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward, loss, backward, (clip), step. Returns (loss, correct count) as device tensors: no host sync.

    `micro_batch` (set after an out-of-memory error, see oom.py) pushes the batch through in slices whose
    gradients add up before the one optimizer step: same update, less memory.
    """
    optimizer.zero_grad(set_to_none=True)
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for xs, ys, weight in micro_batches(x, y, micro_batch or len(y)):
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(xs)
            if isinstance(logits, tuple):  # Inception/GoogLeNet auxiliary heads in training mode
                logits, *aux = logits
                loss = F.cross_entropy(logits, ys, label_smoothing=label_smoothing)
                for head in aux:
                    if head is not None:
                        loss = loss + AUX_LOSS_WEIGHT * F.cross_entropy(
                            head, ys, label_smoothing=label_smoothing
                        )
            else:
                loss = F.cross_entropy(logits, ys, label_smoothing=label_smoothing)
        scaler.scale(loss * weight).backward()
        total_loss += loss.detach() * weight
        correct += (logits.detach().argmax(dim=1) == ys).sum()
    if grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return total_loss, correct


@torch.no_grad()
def evaluate_batches(
    model: torch.nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    amp_dtype: torch.dtype | None,
) -> dict[str, Any]:
    """Mean loss, accuracy and top-5 accuracy over `batches`, in eval mode (restored afterwards), how
    often each class was predicted ("predicted": a count per class) and which images it got right ("hits":
    a bool per image, in the batches' order, on the CPU)."""
    was_training = model.training
    model.eval()
    loss_sum, correct, top5, count = 0.0, 0, 0.0, 0
    predicted: torch.Tensor | None = None
    hits: list[torch.Tensor] = []
    for x, y in batches:
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        guesses = logits.argmax(dim=1)
        right = guesses == y
        correct += right.sum().item()
        hits.append(right.cpu())
        top5 += topk_accuracy(logits, y, 5) * len(y)
        count += len(y)
        counts = torch.bincount(guesses, minlength=logits.shape[1])
        predicted = counts if predicted is None else predicted + counts
    model.train(was_training)
    return {
        "loss": loss_sum / max(count, 1), "acc": correct / max(count, 1), "top5": top5 / max(count, 1),
        "predicted": [] if predicted is None else predicted.tolist(),
        "hits": torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool),
    }  # fmt: skip


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
