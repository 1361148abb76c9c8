"""Resumable checkpoints: one file per checkpoint, written atomically, loaded without running code.

A checkpoint holds everything needed to continue a run or to use the model elsewhere: weights,
optimizer/schedule/scaler state, epoch, RNG states, class names, preprocessing, architecture and its
arguments. It is saved with `torch.save` and loaded with `torch.load(weights_only=True)`, whose
unpickler accepts only tensors and plain containers, so a hostile file cannot execute code. Loading also
verifies it (zip CRC-32s and a stored sha256 digest, see "integrity" below): a damaged file is an error
that names it, never a model that quietly predicts nonsense.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import random
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.engine.atomic import write_atomic
from workbench.engine.errors import Action, Mention, Text, WeightsError, WorkbenchError, concat, first_line

FORMAT = "cnn-workbench-checkpoint"
VERSION = 1
LAST = "last.pt"
BEST = "best.pt"
PROBE = "probe.pt"  # stage 1's network (the fitted head), which LP-FT's last step averages with
# In a checkpoint whose head was refitted on the validation images too (probe_stage.py): the head as fitted on
# the training images alone, which the run's validation figures, temperature and out-of-domain check use.
HELD_OUT_HEAD = "held_out_head"


@dataclass
class Preprocessing:
    """How an image becomes the model's input: the engine's decode + normalization, in data."""

    size: int
    channels: int
    mean: list[float]
    std: list[float]
    resize: str = "shorter side to size, center crop"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def capture_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    python_state = state["python"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any], copies: tuple[Path, ...] = ()) -> Path:
    """Write atomically (and to each of `copies`, serialized once): a failure (full disk, read-only folder)
    leaves the previous checkpoint intact.

    `torch.save` serializes into memory and only Python file I/O touches the disk: torch's own zip writer
    reports a full disk as a RuntimeError from its C++ code ("inline_container.cc"), while Python raises an
    OSError with the real reason, which becomes the clear error below.
    """
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    payload[DIGEST] = content_digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)

    def write(f) -> None:
        f.write(buffer.getbuffer())

    for target in (path, *map(Path, copies)):
        try:
            write_atomic(target, write)
        except OSError as exc:
            raise _write_error(target, exc) from None
    return path


def _write_error(path: Path, exc: OSError) -> WorkbenchError:
    # A run's checkpoint (RUNS/<run id>/checkpoints/last.pt): the run resumes once there is room.
    run_id = path.parent.parent.name if path.parent.name == "checkpoints" else ""
    then = ("; then resume the run: ", Action("continue", run_id)) if run_id else (" and try again",)
    return WorkbenchError(
        f"could not write checkpoint {path}: {exc.strerror or exc}. The previous checkpoint is untouched; "
        "free some space (or set WORKBENCH_HOME to another disk)",
        *then,
    )


# ---- integrity ------------------------------------------------------------------------------------------
# Two checks, because neither covers everything alone:
# - torch writes a CRC-32 for every record of its zip container but never checks it when loading; we do,
#   with `zipfile`, so damage anywhere (tensor bytes, the pickle, optimizer state) is caught before unpickling;
# - a sha256 digest of what predictions depend on (architecture, classes, preprocessing, every weight), stored
#   in the checkpoint and compared with the tensors as loaded: end to end, independent of the container.
# Checkpoints written before the digest existed have none and load as before (their CRCs are still checked).

DIGEST = "digest"
_DIGESTED_FIELDS = ("model", "model_args", "classes", "preprocessing")
_CHUNK = 1 << 20
_ZIP_MAGIC = b"PK\x03\x04"  # how torch.load, too, tells its zip format from the legacy one
_UNSAFE_MARK = "unsupported global"  # in torch's message when the unpickler met a class or function


class _Damaged(WeightsError):
    """The file is there but its bytes are not the ones that were written (message names the file)."""


def content_digest(payload: dict[str, Any]) -> str:
    """sha256 over the model's identity and every tensor of `model_state` (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    fields = {name: payload.get(name) for name in _DIGESTED_FIELDS}
    digest.update(json.dumps(fields, sort_keys=True, default=repr).encode())
    state = payload.get("model_state")
    if not isinstance(state, Mapping):
        raise TypeError(f"model_state is a {type(state).__name__}, not a mapping")
    for name in sorted(state):
        _digest_entry(digest, str(name), state[name])
    return f"sha256:{digest.hexdigest()}"


def _digest_entry(digest: Any, name: str, value: object) -> None:
    if not isinstance(value, torch.Tensor):  # a module's extra state: rare, plain data
        digest.update(f"\0{name}\0{value!r}".encode())
        return
    digest.update(f"\0{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
    flat = value.detach().to("cpu").contiguous().reshape(-1)
    digest.update(flat.view(torch.uint8).numpy().data)  # raw bytes, whatever the dtype (bfloat16 too)


def _check_container(path: Path) -> None:
    """Verify every zip record's CRC-32; a file that is not a zip is left for torch.load to judge."""
    with open(path, "rb") as f:
        starts_like_zip = f.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    try:
        has_directory = zipfile.is_zipfile(path)  # itself raises BadZipFile on some damaged directories
    except zipfile.BadZipFile as exc:
        raise _Damaged(f"checkpoint {path} is damaged: {first_line(exc)}") from None
    if not has_directory:
        if starts_like_zip:  # torch writes the directory last: a file cut short has none
            raise _Damaged(
                f"checkpoint {path} is damaged: its zip directory is missing or unreadable (the file was cut "
                "short or overwritten)"
            )
        return
    try:
        with zipfile.ZipFile(path) as archive:
            for record in archive.infolist():
                with archive.open(record) as stream:  # reading to the end checks the CRC-32
                    while stream.read(_CHUNK):
                        pass
    except zipfile.BadZipFile as exc:  # a CRC-32 that does not match, a record header overwritten...
        raise _Damaged(
            f"checkpoint {path} is damaged: its bytes are not the ones saved ({first_line(exc)})"
        ) from None
    except Exception as exc:  # a damaged directory can make zipfile fail in other ways (struct, unicode...)
        raise _Damaged(
            f"checkpoint {path} is damaged: unreadable zip structure ({first_line(exc)})"
        ) from None


def _check_digest(path: Path, payload: dict[str, Any]) -> None:
    stored = payload.get(DIGEST)
    if stored is None:
        return  # written by a version without digests: nothing to compare with
    try:
        matches = content_digest(payload) == stored
    except Exception:  # a damaged payload can break the walk itself (a non-tensor where a tensor was)
        matches = False
    if not matches:
        raise _Damaged(
            f"checkpoint {path} is damaged: its weights, classes or preprocessing differ from what was saved"
        )


def _read_checkpoint(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise WeightsError(f"checkpoint {path}: no such file")
    if path.stat().st_size == 0:
        raise _Damaged(f"checkpoint {path} is empty (0 bytes): it was never completely written")
    _check_container(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if _UNSAFE_MARK not in str(exc).lower():  # garbage, or a bare pickle: not torch's format
            raise _Damaged(
                f"checkpoint {path}: refused — not a checkpoint torch can read safely (damaged, truncated or "
                "another format)"
            ) from None
        raise WeightsError(
            f"checkpoint {path}: refused — it contains objects other than tensors and plain data, which could run "
            f"code when loaded ({first_line(exc)})"
        ) from None
    except Exception as exc:  # torch raises many kinds on garbage (IndexError, RuntimeError, EOFError...)
        raise _Damaged(
            f"checkpoint {path}: not a readable checkpoint — damaged, truncated or another format "
            f"({first_line(exc)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"checkpoint {path}: not a CNN Workbench checkpoint")
    _check_digest(path, payload)
    return payload


def _fallback_hint(path: Path) -> str:
    """For a run's best.pt or last.pt: whether its other copy is intact, so the user knows what is left."""
    if path.name not in (BEST, LAST) or path.parent.name != "checkpoints":
        return ""
    other = path.with_name(LAST if path.name == BEST else BEST)
    if not other.is_file():
        return ". This run has no other checkpoint: train it again"
    try:
        epoch = _read_checkpoint(other, "cpu").get("epoch")
    except (WeightsError, OSError):
        return f". {other} is damaged too: train the run again (and check the disk)"
    intact = f". The run's other checkpoint, {other} (after epoch {epoch}), is intact"
    if path.name == LAST:  # resuming needs last.pt; the best weights can still seed a new run
        return Text(
            f"{intact}: the run cannot be resumed, but a new run can start from it (",
            Mention("weights", str(other)),
            ")",
        )
    return f"{intact}: use that file instead"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and verify a checkpoint; every failure is a WeightsError that names the file."""
    path = Path(path)
    try:
        return _read_checkpoint(path, map_location)
    except _Damaged as exc:
        raise WeightsError(concat(str(exc), _fallback_hint(path))) from None
    except OSError as exc:  # our own reads (permissions, I/O errors); torch's are in _read_checkpoint
        raise WeightsError(f"checkpoint {path}: cannot be read ({exc.strerror or exc})") from None


def find_checkpoint(ref: str | Path) -> Path:
    """A checkpoint file, a run folder, or a run id (`last` for the newest run).

    A run gives best.pt, else last.pt, without reading them. When best.pt turns out damaged, loading it fails
    with a message naming the intact last.pt rather than switching to it here: the two are different models
    (last.pt is usually a later, less accurate epoch), and evaluating or exporting another model than the
    one asked for, behind a warning that may go unseen, is worse than stopping with a clear choice.
    """
    from workbench.engine.runs import RunRegistry

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    run_dir = path if path.is_dir() else Path(RunRegistry().get(str(ref)).run_dir)
    if not run_dir.is_dir():
        raise WeightsError(
            f"the folder of run {run_dir.name}, {run_dir}, is missing (deleted or moved); move it back, or "
            "remove the run from the list with ",
            Action("delete", run_dir.name),
        )
    for name in (BEST, LAST):
        candidate = run_dir / "checkpoints" / name
        if candidate.is_file():
            return candidate
    raise WeightsError(f"run {run_dir.name} has no checkpoint yet (it stopped before finishing an epoch)")


def load_model(ref: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint, in eval mode; returns (model, checkpoint metadata without states)."""
    from workbench.engine.models import build_model

    path = find_checkpoint(ref)
    payload = load_checkpoint(path)
    try:
        model = build_model(
            payload["model"],
            len(payload["classes"]),
            payload["preprocessing"]["channels"],
            **payload.get("model_args", {}),
        )
        model.load_state_dict(payload["model_state"])
    except WorkbenchError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # intact but incomplete: not written by us
        raise WeightsError(
            f"checkpoint {path}: its contents do not make a model ({type(exc).__name__}: {first_line(exc)})"
        ) from None
    model.to(device).eval()
    meta = {k: v for k, v in payload.items() if not k.endswith("_state") and k != "rng"}
    return model, meta
