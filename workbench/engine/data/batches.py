"""The training loop's data source: batches of normalized (and augmented) images, already on the device.

The whole split is a uint8 tensor (see cache.py). An epoch is a permutation; a batch is one indexing of
that tensor by a slice of the permutation — no per-sample Python, no DataLoader workers.

- CUDA: the uint8 split moves to the GPU once when it fits (then batches never cross the bus); otherwise
  each batch is gathered into one of two pinned buffers and copied asynchronously while the GPU works.
- Conversion to float, augmentation and normalization run on the device.
- Shuffling and augmentation are determined by (seed, epoch): `set_epoch` before each epoch.
- Distributed training: every rank draws the same permutation and takes every `world_size`-th sample,
  padded (or, with drop_last, trimmed) so all ranks run the same number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from workbench.engine.data.augment import BatchAugmenter
from workbench.engine.device import canonical_device
from workbench.engine.training.config import AugmentConfig

_GPU_SHARE = 0.5  # the split may take this share of free GPU memory; the rest is for the model


class BatchIterator:
    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool,
        device: torch.device | str,
        mean: Sequence[float],
        std: Sequence[float],
        augment: AugmentConfig | None = None,
        seed: int = 0,
        channels_last: bool = False,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ):
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        channels = images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std have {len(mean)}/{len(std)} values for {channels}-channel images")
        self.device = canonical_device(device)  # compared with the images' device below
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.channels_last = channels_last
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.augmenter = BatchAugmenter(augment) if augment is not None else None
        stats_shape = (1, channels, 1, 1)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(stats_shape)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(stats_shape)
        self._mean_255, self._std_255 = (
            self._mean * 255,
            self._std * 255,
        )  # for uint8 input without augmentation
        self._labels = labels.to(self.device, torch.int64)
        self._count = len(images)
        self._images = images
        self._pinned: list[torch.Tensor] = []
        self._copied: list[torch.cuda.Event | None] = []
        if self.device.type != "cpu" and self._fits_on_device(images):
            self._images = images.to(self.device)
        elif self.device.type == "cuda":
            shape = (batch_size, *images.shape[1:])
            self._pinned = [torch.empty(shape, dtype=torch.uint8).pin_memory() for _ in range(2)]
            self._copied = [None, None]

    @property
    def images_on_device(self) -> bool:
        return self._images.device == self.device

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        per_rank = self._per_rank()
        return per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._order()
        on_device = order.to(self.device) if self.images_on_device else None
        if self.augmenter is not None:
            # Each rank augments its own samples differently, but reproducibly.
            self.augmenter.generator = _generator(self.seed, self.epoch, 1, self.rank)
        for b in range(len(self)):
            window = slice(b * self.batch_size, (b + 1) * self.batch_size)
            if on_device is not None:
                index = on_device[window]
                raw = self._images[index]
            else:
                index = order[window]
                raw = self._gather(index, b % 2)
            yield self._prepare(raw), self._labels[index.to(self._labels.device)]

    # ------------------------------------------------------------------------------------------ internals

    def _per_rank(self) -> int:
        if self.world_size == 1:
            return self._count
        if self.drop_last:
            return self._count // self.world_size
        return math.ceil(self._count / self.world_size)

    def _order(self) -> torch.Tensor:
        if self.shuffle:  # the same permutation on every rank: the shards then partition it
            order = torch.randperm(self._count, generator=_generator(self.seed, self.epoch, 0))
        else:
            order = torch.arange(self._count)
        if self.world_size > 1:
            needed = self._per_rank() * self.world_size
            if needed > len(order):  # pad by repeating from the start, as DistributedSampler does
                order = order.repeat(math.ceil(needed / len(order)))
            order = order[:needed][self.rank :: self.world_size]
        return order

    def _gather(self, index: torch.Tensor, slot: int) -> torch.Tensor:
        """The batch's uint8 images, on the device (via a pinned buffer on CUDA)."""
        if not self._pinned:
            return self._images.index_select(0, index).to(self.device)
        done = self._copied[slot]
        if done is not None:
            done.synchronize()  # the copy that last used this buffer must finish before we refill it
        buffer = self._pinned[slot][: len(index)]
        torch.index_select(self._images, 0, index, out=buffer)
        raw = buffer.to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._copied[slot] = event
        return raw

    def _prepare(self, raw: torch.Tensor) -> torch.Tensor:
        if self.augmenter is not None and self.augmenter.active:
            x = self.augmenter(raw.float().div_(255))
            x = (x - self._mean).div_(self._std)
        else:  # one fused pass: (raw / 255 - mean) / std
            x = raw.float().sub_(self._mean_255).div_(self._std_255)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _fits_on_device(self, images: torch.Tensor) -> bool:
        nbytes = images.numel() * images.element_size()
        if self.device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(self.device)
            return nbytes <= free * _GPU_SHARE
        return nbytes <= 1 << 30  # MPS and others report no free memory: keep small splits there


def drops_last_batch(images: int, batch_size: int) -> bool:
    """A training epoch leaves out its last, partial batch (a tiny batch upsets batch norm), unless all the
    images fit in one."""
    return images > batch_size


def training_steps(images: int, batch_size: int) -> int:
    """Optimizer steps in one training epoch of `images` (one process), as the trainer's batches give them."""
    return images // batch_size if drops_last_batch(images, batch_size) else min(images, 1)


def _generator(*words: int) -> torch.Generator:
    """A CPU generator seeded from several integers, well mixed (nearby seeds give unrelated streams)."""
    state = np.random.SeedSequence([w & 0xFFFFFFFF for w in words]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
