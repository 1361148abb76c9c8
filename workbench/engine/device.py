"""Pick the compute device (CUDA → MPS → CPU) and describe it for the status bar and logs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from workbench.engine.errors import OptionError


def pick_device(name: str = "auto") -> torch.device:
    """The device a run of option `name` uses, with its index (`canonical_device`)."""
    if name == "auto":
        if torch.cuda.is_available():
            return canonical_device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return canonical_device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError("device", name, "not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise OptionError("device", name, "use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("device", name, "no CUDA GPU is available on this machine; use cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise OptionError("device", name, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise OptionError("device", name, "Apple's Metal backend is not available here; use cpu or auto")
    return canonical_device(device)


def canonical_device(device: torch.device | str) -> torch.device:
    """`device` as the tensors on it report theirs: torch.device("cuda") != torch.device("cuda:0"), though
    every tensor put on the former reports the latter, so a device compared with a tensor's must carry its
    index (one such comparison sent every CUDA run's batches down the path for images kept on the CPU,
    where indexing them failed)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    if device.type == "mps" and device.index is None:
        return torch.device("mps", 0)
    if device.type == "cpu":
        return torch.device("cpu")  # "cpu:0" holds tensors that report "cpu"
    return device


def describe_device(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"{props.name} ({props.total_memory / 2**30:.1f} GiB)"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({os.cpu_count() or 1} cores)"


def autocast_dtype(device: torch.device, model: torch.nn.Module | None = None) -> torch.dtype | None:
    """Mixed-precision dtype for this device (and model), or None where it does not pay off.

    CPUs with native bf16 (AVX512-BF16 / AMX) train small CNNs 1.4-2x faster under bf16 autocast
    (measured: benchmarks/README.md); older CPUs would emulate it, slower than fp32. Depthwise
    convolutions (MobileNet, EfficientNet) are the exception: oneDNN runs them ~10x slower in bf16 than
    in fp32 on that same CPU (EfficientNet-Lite0 at 224 px: 3 vs 31 images/s), so they stay in fp32.
    """
    if device.type == "cpu" and model is not None and has_depthwise_convolutions(model):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def prefers_channels_last(device: torch.device) -> bool:
    """Whether convolutions run faster on NHWC tensors here: on CUDA (tensor cores) and on CPUs, where oneDNN's
    NHWC kernels trained compact_vgg 1.3-1.5x faster than NCHW on this project's 2-core Xeon, in fp32 and
    bf16 alike. MPS support for it is patchy, so it stays NCHW there."""
    return device.type in ("cuda", "cpu")


def in_inference_layout(
    model: torch.nn.Module, device: torch.device | str, config: Mapping[str, Any]
) -> torch.nn.Module:
    """`model` (on `device`) in the memory layout its run trained in: NHWC where `prefers_channels_last` and
    the run's `config` (TrainConfig as a dict) asked for it (channels_last, the default). Judging a checkpoint
    in that layout rounds as the run's own test figure did, and is faster: EfficientNet-Lite0 with stage 1's
    taps at 224 px, on this project's 2-core CPU, 42 images/s against 26 in NCHW (benchmarks/README.md)."""
    channels_last = bool(config.get("channels_last", True))
    if channels_last and prefers_channels_last(torch.device(device)):
        model.to(memory_format=torch.channels_last)
    return model


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def has_depthwise_convolutions(model: torch.nn.Module) -> bool:
    return any(
        isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules()
    )
