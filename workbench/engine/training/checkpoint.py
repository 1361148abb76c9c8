"""Resumable checkpoints: one file per checkpoint, written atomically, loaded without running code.

A checkpoint holds everything needed to continue a run or to use the model elsewhere: weights,
optimizer/schedule/scaler state, epoch, RNG states, class names, preprocessing, architecture and its
arguments. It is saved with `torch.save` and loaded with `torch.load(weights_only=True)`, whose
unpickler accepts only tensors and plain containers, so a hostile file cannot execute code.
"""

from __future__ import annotations

import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.engine.atomic import atomic_path
from workbench.engine.errors import WeightsError, WorkbenchError

FORMAT = "cnn-workbench-checkpoint"
VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


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


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically: a failure (full disk, read-only folder) leaves the previous checkpoint intact."""
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, **payload}
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except OSError as exc:
        raise WorkbenchError(
            f"could not write checkpoint {path}: {exc.strerror or exc}. The previous checkpoint is untouched; "
            "free some space (or set WORKBENCH_HOME to another disk) and continue with `workbench train --resume`."
        ) from None
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path}: no such file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"checkpoint {path}: refused — it contains objects other than tensors and plain data, which could run "
            f"code when loaded ({str(exc).splitlines()[0][:200]})"
        ) from None
    except Exception as exc:  # torch raises many kinds on garbage (IndexError, RuntimeError, EOFError...)
        raise WeightsError(
            f"checkpoint {path}: not a readable checkpoint ({str(exc).splitlines()[0][:200]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WeightsError(f"checkpoint {path}: not a CNN Workbench checkpoint")
    return payload


def find_checkpoint(ref: str | Path) -> Path:
    """A checkpoint file, a run folder, or a run id (`last` for the newest run)."""
    from workbench.engine.runs import RunRegistry

    path = Path(ref).expanduser()
    if path.is_file():
        return path
    run_dir = path if path.is_dir() else Path(RunRegistry().get(str(ref)).run_dir)
    for name in (BEST, LAST):
        candidate = run_dir / "checkpoints" / name
        if candidate.is_file():
            return candidate
    raise WeightsError(f"run {run_dir.name} has no checkpoint yet (it stopped before finishing an epoch)")


def load_model(ref: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint, in eval mode; returns (model, checkpoint metadata without states)."""
    from workbench.engine.models import build_model

    payload = load_checkpoint(find_checkpoint(ref))
    model = build_model(
        payload["model"],
        len(payload["classes"]),
        payload["preprocessing"]["channels"],
        **payload.get("model_args", {}),
    )
    model.load_state_dict(payload["model_state"])
    model.to(device).eval()
    meta = {k: v for k, v in payload.items() if not k.endswith("_state") and k != "rng"}
    return model, meta
