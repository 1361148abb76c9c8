"""Distributed data parallel training under `torchrun`, on PyTorch's own machinery.

`torchrun --nproc_per_node=N -m workbench train DATA …` sets RANK / WORLD_SIZE / LOCAL_RANK; the trainer
then joins the process group (NCCL on CUDA, gloo on CPU), wraps the model in DistributedDataParallel,
gives each rank its shard of every global batch (see data/batches.py), all-reduces the training
metrics, and lets only rank 0 write checkpoints, the registry and logs — one ordinary run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from workbench.engine.errors import OptionError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: list[float], device: torch.device) -> list[float]:
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (e.g. the run id)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def shutdown(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device_name: str) -> tuple[DistContext, torch.device | None]:
    """Join the process group torchrun set up; returns the context and this rank's device (None = decide
    as usual). Outside torchrun: a single-process context."""
    if not launched_by_torchrun():
        return DistContext(), None
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("device", device_name, f"no CUDA GPU on this node for rank {rank}")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return DistContext(rank, world, local), torch.device("cuda", local)
    return DistContext(rank, world, local), torch.device("cpu")


def per_rank_batch(batch_size: int, world_size: int) -> int:
    """`--batch-size` is the global batch: each rank takes an equal share of it."""
    if batch_size % world_size:
        raise OptionError(
            "batch_size", batch_size, f"the global batch must divide evenly among {world_size} processes"
        )
    return batch_size // world_size


def torchrun_command(config_path: str, *, nproc_per_node: int | str = "$NUM_GPUS", nnodes: int = 1) -> str:
    """The exact command that trains `config_path` with DDP: on this node, or on `nnodes` nodes
    (run it on each node with its own --node_rank; HEAD_NODE is the first node's address)."""
    import shlex

    target = f"-m workbench train --config {shlex.quote(config_path)}"
    if nnodes <= 1:
        return f"torchrun --standalone --nproc_per_node={nproc_per_node} {target}"
    return (
        f"torchrun --nnodes={nnodes} --node_rank=$NODE_RANK --nproc_per_node={nproc_per_node} "
        f"--rdzv_backend=c10d --rdzv_endpoint=$HEAD_NODE:29500 {target}"
    )
