"""Pretrained weights: find them (torch's download cache, an offline package, a user's file), read them
without running code, and load them only when every name and shape fits the architecture.

- torchvision ImageNet weights are downloaded once into torch's hub cache (`$TORCH_HOME/hub/checkpoints`,
  the same file torchvision itself would use), with `progress(bytes_done, bytes_total)` and the hash
  torchvision puts in the file name checked; later builds reuse the file.
- A user's file is a torchvision-style state dict: `.pth`/`.pt` read with `torch.load(weights_only=True)`
  or `.safetensors`; both refuse anything but tensors.
- Loading never silently loads part of a file: missing keys, unexpected keys and shape mismatches are
  reported together in one WeightsError that names the layers.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from workbench.engine.atomic import atomic_path
from workbench.engine.errors import Mention, WeightsError, first_line
from workbench.engine.models.adapt import (
    adapt_input_channels,
    find_head,
    first_conv,
    replace_head,
    set_input_channels,
)

Progress = Callable[[int, int], None]
StateDict = dict[str, torch.Tensor]

DOWNLOAD_TIMEOUT_S = 30
_CHUNK = 1 << 20
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")  # torchvision names files "<name>-<sha256 prefix>.pth"
_MAX_LISTED = 5


@dataclass(frozen=True)
class PretrainedWeights:
    """Where a model's published weights live and how their file differs from the model's own layout.

    locate(progress) -> a local file, downloading it first if needed.
    rename: maps legacy key names in published files to the current module names.
    optional_prefixes: keys that the file has but the model only has on request (auxiliary heads): neither
        required nor refused.
    """

    locate: Callable[[Progress | None], Path]
    rename: Callable[[StateDict], StateDict] | None = None
    optional_prefixes: tuple[str, ...] = field(default=())

    def fetch(self, progress: Progress | None = None) -> tuple[StateDict, str]:
        path = self.locate(progress)
        return read_state_dict(path), str(path)


@dataclass
class LoadReport:
    loaded: list[str]  # keys copied from the file
    ignored: list[str]  # optional keys in the file the model does not have (e.g. aux heads not asked for)
    kept: list[str]  # model keys the file lacks but may: optional ones and BatchNorm's batch counters


# --- torchvision downloads -----------------------------------------------------------------------------


def torchvision_weights_url(tv_name: str) -> str:
    """URL of torchvision's recommended (DEFAULT) ImageNet weights for `tv_name`."""
    from torchvision.models import get_model_weights

    return get_model_weights(tv_name).DEFAULT.url


def torchvision_weights(
    tv_name: str,
    *,
    rename: Callable[[StateDict], StateDict] | None = None,
    optional_prefixes: tuple[str, ...] = (),
) -> PretrainedWeights:
    def locate(progress: Progress | None) -> Path:
        return download_to_cache(torchvision_weights_url(tv_name), progress, label=tv_name)

    return PretrainedWeights(locate, rename, optional_prefixes)


def cache_path(url: str) -> Path:
    """Where torch (and torchvision) keep the file downloaded from `url`."""
    name = Path(urllib.parse.urlparse(url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def download_to_cache(url: str, progress: Progress | None = None, *, label: str = "the model") -> Path:
    """The cached copy of `url`, downloaded first (atomically, hash-checked) when missing."""
    target = cache_path(url)
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0)
            digest, done = hashlib.sha256(), 0
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as out:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
                expected = _HASH_IN_NAME.search(target.name)
                if expected and not digest.hexdigest().startswith(expected.group(1)):
                    raise WeightsError(
                        f"the download of {url} is corrupt (its SHA-256 does not start with {expected.group(1)}); "
                        "try again"
                    )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsError(
            f"cannot download the ImageNet weights of {label} from {url} ({reason}): this computer seems to be "
            "offline. Download that file on a connected machine and pass it with ",
            Mention("weights"),
            f", or copy it to {target}",
        ) from None
    return target


# --- reading files ---------------------------------------------------------------------------------------


def read_state_dict(path: str | Path) -> StateDict:
    """Tensors of a state-dict file, without executing anything stored in it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    if path.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj: object = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "unsupported global" not in str(exc).lower():  # damaged, or not a pickle at all
                raise WeightsError(
                    f"{path}: not a PyTorch weights file (damaged or another format)"
                ) from None
            raise WeightsError(
                f"{path} stores Python objects besides tensors; it is refused because loading it could run "
                "code. Save a plain state dict instead: torch.save(model.state_dict(), FILE)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - arbitrary bytes make torch's unpickler raise anything
            raise WeightsError(f"{path}: not a PyTorch weights file ({first_line(exc)})") from None
    return _as_state_dict(obj, path)


def _as_state_dict(obj: object, path: Path) -> StateDict:
    def is_state(candidate: object) -> bool:
        return (
            isinstance(candidate, dict)
            and bool(candidate)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in candidate.items())
        )

    if not is_state(obj) and isinstance(obj, dict):  # a training checkpoint that wraps the state dict
        for key in ("state_dict", "model_state", "model_state_dict", "model"):
            if is_state(obj.get(key)):
                obj = obj[key]
                break
    if not is_state(obj):
        raise WeightsError(f"{path} holds no state dict (a mapping from layer names to tensors)")
    state: StateDict = dict(obj)  # type: ignore[arg-type]
    if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


# --- loading ---------------------------------------------------------------------------------------------


def _shape(tensor: torch.Tensor) -> list[int]:
    return list(tensor.shape)


def _listed(items: list[str]) -> str:
    more = f" (and {len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
    return ", ".join(items[:_MAX_LISTED]) + more


def load_checked(
    model: nn.Module,
    state: StateDict,
    *,
    origin: str,
    name: str = "",
    optional_prefixes: tuple[str, ...] = (),
) -> LoadReport:
    """Copy `state` into `model` if every name and shape fits; otherwise WeightsError naming the misfits."""
    expected = model.state_dict()

    def optional(key: str) -> bool:
        return key.startswith(optional_prefixes) if optional_prefixes else False

    mismatched = [
        f"{k}: file has {_shape(v)}, model needs {_shape(expected[k])}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    missing = [
        k for k in expected if k not in state and not k.endswith("num_batches_tracked") and not optional(k)
    ]
    unexpected = [k for k in state if k not in expected and not optional(k)]
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append(_listed(mismatched))
        if missing:
            parts.append(f"missing from the file: {_listed(missing)}")
        if unexpected:
            parts.append(f"not in the model: {_listed(unexpected)}")
        label = name or type(model).__name__
        raise WeightsError(f"{origin} does not fit {label}: " + "; ".join(parts))
    usable = {k: v for k, v in state.items() if k in expected}
    model.load_state_dict(usable, strict=False)
    return LoadReport(
        loaded=list(usable),
        ignored=[k for k in state if k not in expected],
        kept=[k for k in expected if k not in state],
    )


def load_into(
    model: nn.Module,
    state: StateDict,
    *,
    origin: str,
    num_classes: int,
    in_channels: int,
    source: PretrainedWeights | None = None,
    name: str = "",
) -> LoadReport:
    """Load weights published for another class count / channel count, then adapt to the dataset's.

    The model is first given the file's head and stem sizes (read from the file), loaded strictly, then
    gets a new head for `num_classes` and a stem for `in_channels` built from the pretrained kernels.
    """
    if source is not None and source.rename is not None:
        state = source.rename(state)
    head_name, head = find_head(model)
    head_key = f"{head_name}.weight"
    stem_key = f"{first_conv(model)[0]}.weight"
    optional_prefixes = source.optional_prefixes if source else ()
    if head_key in state and state[head_key].shape[1:] != head.weight.shape[1:]:
        # The model's head reads other features than the published one (e.g. EfficientNet-Lite's taps):
        # it starts fresh, and the file's head is left out.
        state = {k: v for k, v in state.items() if not k.startswith(f"{head_name}.")}
        optional_prefixes = (*optional_prefixes, f"{head_name}.")
    file_classes = state[head_key].shape[0] if head_key in state else num_classes
    file_channels = (
        state[stem_key].shape[1] if stem_key in state and state[stem_key].ndim == 4 else in_channels
    )
    # GoogLeNet/Inception's colour rescaling as the builder chose it for `in_channels`; the detour through
    # the file's channel count must not change it.
    transform_input = getattr(model, "transform_input", None)
    if file_classes != num_classes:
        replace_head(model, file_classes)
    if file_channels != in_channels:
        set_input_channels(model, file_channels)
    report = load_checked(model, state, origin=origin, name=name, optional_prefixes=optional_prefixes)
    if file_classes != num_classes:
        replace_head(model, num_classes)
    if file_channels != in_channels:
        adapt_input_channels(model, in_channels)
    if transform_input is not None:
        model.transform_input = transform_input
    return report
