"""A pretrained network cut before its classifier: images in, feature vectors (embeddings) out.

The peers' recipe for small folders (Teachable Machine, Create ML, Turi Create) runs a frozen network once
per image and keeps the vectors; the linear probe (training/linear_probe.py) then fits a head on them in
seconds. The body is the model with its head layer replaced by an identity, so the features are exactly
what the head reads (after global pooling) and a head fitted on them drops back into the model unchanged.

On a CPU the body runs in onnxruntime when it is installed: measured on this project's 2-core machine,
EfficientNet-Lite0 at 224 px embeds ~54 images/s there against ~31 in eager PyTorch (channels-last, fp32;
bf16 autocast is 10x slower for its depthwise convolutions). The exported body is cached next to the
embeddings, keyed like them. On CUDA/MPS (and when onnxruntime is missing or refuses the network) it
runs in PyTorch.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.engine.atomic import atomic_path
from workbench.engine.errors import ModelError
from workbench.engine.models.adapt import find_head

EMBEDDER_VERSION = 1  # bump when the way features are computed changes: old caches are then ignored
CPU_BATCH = 8  # eager PyTorch runs depthwise networks fastest in small batches (cache-resident activations)
ONNX_BATCH = 32  # onnxruntime prefers larger ones (128 px: 48 images/s at 32 against 40 at 8)
GPU_BATCH = 128

log = logging.getLogger(__name__)


def set_module(model: nn.Module, qualified_name: str, module: nn.Module) -> None:
    parent_name, _, child = qualified_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def linear_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's classifier when it is one Linear layer (what a linear probe can replace)."""
    name, head = find_head(model)
    if not isinstance(head, nn.Linear):
        raise ModelError(
            f"{type(model).__name__}'s classifier is a {type(head).__name__}, not a linear layer: "
            "it has no feature vector for a linear probe"
        )
    return name, head


def body_of(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode whose head is an identity: it outputs the head's input features."""
    name, _ = linear_head(model)
    body = copy.deepcopy(model).eval()
    set_module(body, name, nn.Identity())
    for p in body.parameters():
        p.requires_grad_(False)
    return body


def weights_digest(body: nn.Module) -> str:
    """A fingerprint of the body's weights (parameters and buffers): features depend on nothing else."""
    digest = hashlib.sha256()
    for key, tensor in sorted(body.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def _args_digest(model_args: Mapping[str, Any]) -> str:
    text = json.dumps(model_args, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def embedding_key(
    body: nn.Module, *, model_name: str, size: int, channels: int, model_args: Mapping[str, Any] | None = None
) -> str:
    """What the features of `body` (see `body_of`) depend on, as the embedding store files them."""
    architecture = model_name + (f"-{_args_digest(model_args)}" if model_args else "")
    return f"{architecture}-{size}px-{channels}ch-v{EMBEDDER_VERSION}-{weights_digest(body)}"


class Embedder:
    """Feature vectors of normalized image batches, from `model`'s frozen body.

    `key` identifies what the features depend on (architecture and its arguments, weights, input size and
    channels): the embedding store files vectors under it. Arguments such as EfficientNet-Lite's `taps`
    change the features without changing a single weight, so they are part of the key.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        model_name: str,
        size: int,
        channels: int,
        device: torch.device,
        cache_dir: Path | None = None,
        model_args: Mapping[str, Any] | None = None,
    ):
        self.body = body_of(model).to(device)
        self.device, self.size, self.channels = device, size, channels
        self.key = embedding_key(
            self.body, model_name=model_name, size=size, channels=channels, model_args=model_args
        )
        self.batch_size = CPU_BATCH if device.type == "cpu" else GPU_BATCH
        self.backend = "pytorch"
        self._session = None
        if device.type == "cpu" and cache_dir is not None:
            self._session = _onnx_session(self.body, size, channels, cache_dir / f"{self.key}.onnx")
            if self._session is not None:
                self.backend, self.batch_size = "onnxruntime", ONNX_BATCH
        if self._session is None and device.type == "cpu":
            self.body.to(memory_format=torch.channels_last)

    @property
    def dim(self) -> int:
        with torch.no_grad():
            return self(torch.zeros(1, self.channels, self.size, self.size)).shape[1]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Features (N, D) as float32 on the CPU for a normalized batch (N, C, S, S)."""
        if self._session is not None:
            array = np.ascontiguousarray(x.detach().cpu().float().numpy())
            return torch.from_numpy(self._session.run(None, {"images": array})[0])
        x = x.to(self.device, non_blocking=True)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.body(x).float().cpu()

    def embed(
        self,
        images: torch.Tensor,
        normalize: Callable[[torch.Tensor], torch.Tensor],
        *,
        mirrored: bool = False,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> torch.Tensor:
        """Features of uint8 images (N, C, S, S); of their horizontal mirrors with `mirrored`."""
        out = []
        for start in range(0, len(images), self.batch_size):
            if should_stop is not None and should_stop():
                from workbench.engine.data import DecodeCancelled

                raise DecodeCancelled("stopped while computing embeddings")
            batch = normalize(images[start : start + self.batch_size])
            out.append(self(batch.flip(-1) if mirrored else batch))
            if progress is not None:
                progress(len(out[-1]))
        return torch.cat(out) if out else torch.zeros(0, self.dim)


def _onnx_session(body: nn.Module, size: int, channels: int, path: Path):
    """An onnxruntime session for `body` (exported once to `path`), or None when that cannot be had."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    if not path.is_file():
        try:
            buffer = io.BytesIO()
            with warnings_silenced():
                torch.onnx.export(
                    body.cpu(),
                    torch.zeros(1, channels, size, size),
                    buffer,
                    input_names=["images"],
                    output_names=["features"],
                    dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                    dynamo=False,
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                Path(tmp).write_bytes(buffer.getvalue())
        except Exception as exc:  # an architecture the exporter refuses: PyTorch does the work instead
            log.info("embedding in PyTorch: ONNX export failed (%s)", exc)
            return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a damaged cached file: drop it, embed in PyTorch this time
        log.info("embedding in PyTorch: cached ONNX body unusable (%s)", exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


@contextlib.contextmanager
def warnings_silenced():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
