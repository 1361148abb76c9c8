"""What one run is: its record, the rules a registry row (or a run folder's files) must pass, and how a row is
rebuilt from the run folder when the registry is damaged."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from workbench.engine.errors import WorkbenchError, text_from_stored
from workbench.engine.names import display_name

STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
MISSING = "missing"  # shown, never stored: the run folder is gone (it may come back, e.g. a remounted disk)
DAMAGED = "damaged"  # shown, never stored: the row is unreadable and the run folder cannot restore it

RUN_JSON = "run.json"
RUN_JSON_FORMAT = "cnn-workbench-run"
# What create_run makes; a row naming anything else never becomes a path.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})  # the file, not the moment (locks, full disks)

COLUMNS = (
    "run_id", "name", "status", "model", "dataset", "config", "metrics", "created", "updated", "run_dir",
    "checkpoint", "best_val_acc", "test_acc", "reason", "pid",
)  # fmt: skip


@dataclass
class RunRecord:
    run_id: str
    name: str
    status: str
    model: str
    dataset: str  # for people: the root, or "first (+N more)"; `datasets` holds the roots themselves
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    created: float
    updated: float
    run_dir: str  # always `<registry root>/runs/<run_id>`
    checkpoint: str | None  # always inside run_dir
    best_val_acc: float | None
    test_acc: float | None = None
    reason: str = ""
    datasets: list[str] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        return last_epoch(self.metrics)

    @property
    def folder_missing(self) -> bool:
        """The run folder is not there (deleted or moved): no checkpoint can be found, whatever the status says."""
        return not Path(self.run_dir).is_dir()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def last_epoch(metrics: list[Any]) -> int:
    """Epochs trained: the history's last epoch number. Not its length: stage 1's instant model is epoch 0
    of the history, and a resumed run's history may hold an epoch twice."""
    epochs = [row.get("epoch") for row in metrics if isinstance(row, dict)]
    return max((e for e in epochs if isinstance(e, int) and not isinstance(e, bool)), default=0)


class RegistryDamagedError(WorkbenchError):
    """`registry.sqlite` is not a readable SQLite database (garbage, truncated, overwritten)."""


# ---- dataset roots and labels ------------------------------------------------------------------------------


def encode_roots(roots: list[str]) -> str:
    # ensure_ascii escapes lone surrogates (non-UTF-8 bytes of os.fsdecode) as \udcXX, which SQLite's UTF-8 text
    # can store and json.loads turns back into the same str, so os.fsencode gives the original bytes.
    return json.dumps(roots)


def decode_roots(text: str) -> list[str]:
    """The dataset column: a JSON list of roots; older rows hold one root as plain text."""
    try:
        roots = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(roots, list) and all(isinstance(root, str) for root in roots):
        return roots
    return [text]


def printable(text: str) -> str:
    """Text safe to store and print: non-UTF-8 bytes (lone surrogates) shown as `\\xe9`, as everywhere."""
    return display_name(text)


def display_roots(roots: list[str]) -> str:
    if not roots:
        return ""
    more = f" (+{len(roots) - 1} more)" if len(roots) > 1 else ""
    return printable(roots[0]) + more


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATASET_NAME_MAX = 60  # characters of the dataset's folder name kept in a default run name


def default_name(model: str, roots: list[str], when: float | None = None) -> str:
    """A run's name until the user gives one: model, dataset folder and local time (`when`, default now), e.g.
    "efficientnet_lite0 on shoes · Dec 3 14:05", so runs of one model on one dataset can be told apart.
    English month names whatever the locale (Qt sets the C library's): a name must not change with it.
    Always valid for `check_name`: separators in a folder's name become "_", a long name is shortened."""
    moment = time.localtime(time.time() if when is None else when)
    stamp = f"{_MONTHS[moment.tm_mon - 1]} {moment.tm_mday} {moment.tm_hour:02d}:{moment.tm_min:02d}"
    if not roots:
        return f"{model} · {stamp}"
    folder = PurePath(roots[0]).name or roots[0]
    folder = re.sub(r"[/\\\0]", "_", folder)
    if len(folder) > _DATASET_NAME_MAX:
        folder = folder[: _DATASET_NAME_MAX - 1] + "…"
    more = f" +{len(roots) - 1}" if len(roots) > 1 else ""
    return f"{model} on {folder}{more} · {stamp}"


def check_name(name: str) -> str:
    """Run names are labels, never paths: refuse separators and dot-names so nothing escapes its folder."""
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        raise WorkbenchError(f"run name {name!r}: must be non-empty and contain no '/', '\\' or '..'")
    if len(name) > 200:
        raise WorkbenchError(f"run name {name[:40]!r}…: longer than 200 characters")
    return printable(name)


# ---- checkpoint paths --------------------------------------------------------------------------------------


def relative_checkpoint(run_dir: Path, path: str | os.PathLike) -> str:
    """How a checkpoint is stored: relative to its run folder, so the row survives a moved home."""
    try:
        return Path(path).relative_to(run_dir).as_posix()
    except ValueError:
        return f"checkpoints/{Path(path).name}"


def checkpoint_in(run_dir: Path, run_id: str, stored: str | None) -> str | None:
    """The stored checkpoint as a path inside `run_dir`. Older registries stored absolute paths of the home they
    were written in: keep only the part below the run's folder, so a copy never points into the original."""
    if not stored:
        return None
    path = PurePath(stored)
    if path.name in ("", ".", ".."):
        return None
    parts = path.parts
    if path.is_absolute():
        below = [i for i, part in enumerate(parts) if part == run_id]
        parts = parts[below[-1] + 1 :] if below else ("checkpoints", path.name)
    if not parts or any(part in ("", ".", "..") for part in parts) or PurePath(*parts).is_absolute():
        parts = ("checkpoints", path.name)  # never follow a path out of the folder
    return str(run_dir.joinpath(*parts))


# ---- reading rows ------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def _status(value: Any) -> str:
    if value not in STATUSES:
        raise ValueError(f"unknown status {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _json_object(value: Any) -> dict[str, Any]:
    parsed = json.loads(_text(value))
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    return parsed


def _json_history(value: Any) -> list[dict[str, Any]]:
    parsed = json.loads(_text(value))
    if not isinstance(parsed, list) or not all(isinstance(row, dict) for row in parsed):
        raise ValueError("not a list of epochs")
    return parsed


def _reason(value: Any) -> str:
    """How a run ended, with the options it names (errors.stored_text)."""
    return text_from_stored(_text(value))


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


# Each column of a row (or of a run folder's files), with its check; a failing one is what "damaged" means.
PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": _text,
    "status": _status,
    "model": _text,
    "dataset": _text,
    "config": _json_object,
    "metrics": _json_history,
    "created": _number,
    "updated": _number,
    "checkpoint": _optional_text,
    "best_val_acc": _optional_number,
    "test_acc": _optional_number,
    "reason": _reason,
}
PLACEHOLDERS: dict[str, Any] = {
    "name": "?", "status": DAMAGED, "model": "?", "dataset": "[]", "config": {}, "metrics": [], "created": 0.0,
    "updated": 0.0, "checkpoint": None, "best_val_acc": None, "test_acc": None, "reason": "",
}  # fmt: skip


def parse_values(raw: dict[str, Any], keys: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The parsed values of `keys` that pass their check, and the names of those that do not."""
    values: dict[str, Any] = {}
    bad: list[str] = []
    for key in keys:
        try:
            values[key] = PARSERS[key](raw[key])
        except (KeyError, ValueError, TypeError):
            bad.append(key)
    return values, bad


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def folder_values(run_dir: Path) -> dict[str, Any]:
    """What a run folder's own files say about its row, in the registry's column encoding (only what is there)."""
    saved = _read_json(run_dir / RUN_JSON)
    saved = saved if isinstance(saved, dict) else {}
    found = {
        key: saved[key] for key in PARSERS if key in saved and key not in ("config", "metrics", "dataset")
    }
    roots = saved.get("datasets")
    if isinstance(roots, list) and all(isinstance(root, str) for root in roots):
        found["dataset"] = encode_roots(roots)
    config = _read_json(run_dir / "config.json")
    if isinstance(config, dict):
        found["config"] = json.dumps(config)
    history = _read_json(run_dir / "history.json")
    if isinstance(history, list):
        found["metrics"] = json.dumps(history)
    return found


def _created_from_id(run_id: str) -> float | None:
    try:
        return time.mktime(time.strptime(run_id[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        return None


def inferred_row(run_id: str, run_dir: Path, found: dict[str, Any]) -> dict[str, Any]:
    """A full row for a run folder the registry does not list, from its files; what they do not say (a run
    written before run.json existed) is inferred: its end from its epochs, its date from its id."""
    config = json.loads(found.get("config", "{}"))
    metrics = json.loads(found.get("metrics", "[]"))
    roots = decode_roots(found["dataset"]) if "dataset" in found else _config_roots(config)
    model = found.get("model") or str(config.get("model") or "unknown")
    epochs = config.get("epochs")
    completed = isinstance(epochs, int) and 0 < epochs <= last_epoch(metrics if isinstance(metrics, list) else [])
    accuracies = [
        row["val_acc"] for row in metrics if isinstance(row, dict) and _is_number(row.get("val_acc"))
    ]
    checkpoints = [run_dir / "checkpoints" / name for name in ("best.pt", "last.pt")]
    created = found.get("created") or _created_from_id(run_id) or run_dir.stat().st_mtime
    row = {
        "run_id": run_id,
        "name": printable(default_name(model, roots, when=float(created))),
        "status": "finished" if completed else "interrupted",
        "model": model,
        "dataset": encode_roots(roots),
        "config": json.dumps(config),
        "metrics": json.dumps(metrics),
        "created": created,
        "updated": found.get("updated") or created,
        "run_dir": f"runs/{run_id}",
        "checkpoint": next((f"checkpoints/{p.name}" for p in checkpoints if p.is_file()), None),
        "best_val_acc": max(accuracies) if accuracies else None,
        "test_acc": None,
        "reason": "" if completed else "rebuilt from its run folder: how the run ended was not recorded",
        "pid": None,
    }
    merged = row | {key: value for key, value in found.items() if key in row}
    return {key: printable(value) if isinstance(value, str) else value for key, value in merged.items()}


def _config_roots(config: dict[str, Any]) -> list[str]:
    data = config.get("data")
    if isinstance(data, str):
        return [data] if data else []
    if isinstance(data, list) and all(isinstance(root, str) for root in data):
        return data
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_damage(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name in _DAMAGE_CODES
    return type(exc) is sqlite3.DatabaseError  # older SQLite bindings: corrupt/not-a-db are the plain kind


def run_json_of(row: dict[str, Any]) -> dict[str, Any]:
    """run.json: what a rebuilt registry needs of the row besides config.json and history.json."""
    return {
        "format": RUN_JSON_FORMAT,
        "run_id": row["run_id"],
        "name": row["name"],
        "model": row["model"],
        "datasets": decode_roots(row["dataset"]) if isinstance(row["dataset"], str) else [],
        "status": row["status"],
        "reason": row["reason"],
        "created": row["created"],
        "updated": row["updated"],
        "best_val_acc": row["best_val_acc"],
        "test_acc": row["test_acc"],
        "checkpoint": row["checkpoint"],
    }


def folder_count(count: int) -> str:
    return f"{count} run folder" + ("" if count == 1 else "s")


def missing_reason(run_dir: str | Path) -> str:
    return f"run folder {run_dir} was deleted or moved"
