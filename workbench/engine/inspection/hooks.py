"""Small helpers the inspection functions share: temporary forward hooks, eval mode, one-image batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from workbench.engine.errors import ModelError


@contextlib.contextmanager
def forward_hooks(modules: Iterable[nn.Module], hook: Callable[[nn.Module, Any, Any], Any]) -> Iterator[None]:
    """`hook` registered as a forward hook on every given module for the duration of the block."""
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (dropout off, running batch-norm statistics) for the block; afterwards every
    module gets back its own mode (transfer learning keeps some frozen modules in eval while training)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def model_device_dtype(model: nn.Module) -> tuple[torch.device | None, torch.dtype | None]:
    reference = next(model.parameters(), None)
    return (reference.device, reference.dtype) if reference is not None else (None, None)


def as_batch(x: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """One image, (C, H, W) or (1, C, H, W), as a batch of one on the model's device and dtype."""
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ModelError(f"expected one image (C, H, W) or (1, C, H, W), got shape {list(x.shape)}")
    device, dtype = model_device_dtype(model)
    return x.to(device=device, dtype=dtype) if device is not None else x.float()


def logits_of(output: Any) -> torch.Tensor:
    """The class scores from a forward's result: a tensor, or the `logits` / first field of a tuple
    (GoogLeNet and Inception v3 return (logits, aux...) when their auxiliary heads run)."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(f"the model returned {type(output).__name__}, not class scores")
