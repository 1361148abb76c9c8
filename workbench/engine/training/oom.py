"""Out of memory during a step: process fewer images at a time, down to a floor, and carry on.

What shrinks is the *micro-batch*, not the batch: a batch that does not fit is pushed through the model in
2, 4, 8… slices whose gradients add up before the one optimizer step. Steps per epoch, the learning-rate
schedule and the results stay what the user asked for (only BatchNorm sees smaller groups).

    backoff = OomBackoff(config.batch_size, floor=4)
    loss, correct = backoff.run(lambda micro: train_step(..., micro_batch=micro))
    for text in backoff.pop_messages():
        yield Message(text, "warning")

The size that fitted sticks for the following steps, so the cost of finding it is paid once.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

from workbench.engine.errors import Mention, WorkbenchError, first_line

T = TypeVar("T")

# How allocators word it: CUDA ("CUDA out of memory"), MPS ("MPS backend out of memory"), cuDNN's
# workspace, and the CPU allocator ("DefaultCPUAllocator: can't allocate memory").
_OOM_PHRASES = ("out of memory", "can't allocate memory", "cudnn_status_alloc_failed")


class OutOfMemory(WorkbenchError):
    """Even the smallest micro-batch does not fit."""


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(phrase in text for phrase in _OOM_PHRASES)


def release_cached_memory() -> None:
    """Give the memory of the failed attempt back: collect its tensors, then empty the CUDA cache."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def micro_batches(
    x: torch.Tensor, y: torch.Tensor, size: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
    """(images, labels, weight) slices of at most `size`; weight = share of the batch, for scaling each
    slice's mean loss so that the accumulated gradient equals the whole batch's."""
    for xs, ys in zip(x.split(size), y.split(size), strict=True):
        yield xs, ys, len(ys) / len(y)


class OomBackoff:
    """Runs steps with a micro-batch size that halves on out-of-memory errors, never below `floor`."""

    def __init__(
        self,
        batch_size: int,
        floor: int = 1,
        *,
        release: Callable[[], None] = release_cached_memory,
        device_name: str = "GPU",
    ):
        if batch_size < 1 or floor < 1:
            raise ValueError(f"batch_size ({batch_size}) and floor ({floor}) must be at least 1")
        self.batch_size = batch_size
        self.floor = min(floor, batch_size)
        self.micro_batch = batch_size
        self.reductions: list[tuple[int, int]] = []  # (from, to), every halving so far
        self._release = release
        self._device_name = device_name
        self._unreported: list[str] = []

    def run(self, step: Callable[[int], T]) -> T:
        """`step(micro_batch)`, retried with half the micro-batch after each out-of-memory error.

        The step must leave nothing half-done when it fails (zero the gradients first, step the optimizer
        last). Raises `OutOfMemory` when the floor does not fit either; any other error passes through.
        """
        while True:
            try:
                return step(self.micro_batch)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                detail = first_line(exc)
            # Out of the except block, the traceback — and the failed attempt's tensors its frames hold —
            # is gone, so releasing now really frees that memory.
            self._shrink(detail)
            self._release()

    def pop_messages(self) -> list[str]:
        """What changed since the last call, worded for the user (the trainer yields them as warnings)."""
        messages, self._unreported = self._unreported, []
        return messages

    def _shrink(self, detail: str) -> None:
        if self.micro_batch <= self.floor:
            raise OutOfMemory(
                f"out of {self._device_name} memory even with {self.micro_batch} image(s) at a time ({detail}); "
                "choose a smaller model or a smaller ",
                Mention("img_size"),
                f", close other programs using the {self._device_name}, or train on the CPU (",
                Mention("device", "cpu"),
                ")",
            )
        old, self.micro_batch = self.micro_batch, max(self.floor, self.micro_batch // 2)
        self.reductions.append((old, self.micro_batch))
        self._unreported.append(
            f"out of {self._device_name} memory with {old} images at a time: now {self.micro_batch} at a time, "
            f"gradients accumulated over each batch of {self.batch_size} (same schedule and results, slower)"
        )
