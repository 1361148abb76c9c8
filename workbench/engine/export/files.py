"""Where an export's files go: the model file, its own JSON beside it, the temp files of interrupted
writes, and what to tell the user when the disk refuses a write."""

from __future__ import annotations

import contextlib
import errno
import re
from collections.abc import Iterable
from pathlib import Path

from workbench.engine.errors import ConfigError, WorkbenchError

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}
ACCEPTED_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth"), "safetensors": (".safetensors",)}
SIDECAR_SUFFIX = ".json"
# atomic_path's temp files: tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp"), whose random part is eight
# characters of [a-z0-9_] (CPython's tempfile). Nothing else matching it is ever written by the workbench.
_TEMP_PATTERN = r"\.{name}\.[a-z0-9_]{{8}}\.tmp"
_NO_ROOM = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


def safe_stem(name: str) -> str:
    """A file name that stays inside its folder whatever the checkpoint says."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "model"


def target_path(checkpoint: Path, model_name: str, format: str, out: str | Path | None) -> Path:
    if out is None or Path(out).expanduser().is_dir() or not Path(out).suffix:
        if out is None:
            run_dir = (
                checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
            )
            folder = run_dir / "exports"
        else:
            folder = Path(out).expanduser()
        return folder / f"{safe_stem(model_name)}{SUFFIXES[format]}"
    target = Path(out).expanduser()
    if not target.name.lower().endswith(ACCEPTED_SUFFIXES[format]):
        raise ConfigError(
            f"{target}: a {format} export needs a file name ending in {' or '.join(ACCEPTED_SUFFIXES[format])} "
            "(or give a folder)"
        )
    if target.resolve() == checkpoint.resolve():
        raise ConfigError(f"{target} is the checkpoint being exported: choose another file name")
    return target


def sidecar_path(model_file: Path) -> Path:
    """The JSON copy of one exported file's metadata, named after the whole file (`model.onnx.json`), so
    two formats — or two runs — exported to one folder never share one (exports before version 2 wrote a
    single `<stem>.json` for every format, which a later export overwrote)."""
    return model_file.with_name(model_file.name + SIDECAR_SUFFIX)


def remove_leftovers(targets: Iterable[Path]) -> list[Path]:
    """Delete the temp files that a killed write of one of `targets` left beside it; returns them.

    Only names of the atomic-write pattern for exactly these targets are touched. Two exports of the same
    file at the same moment are not supported (the later one replaces the earlier one's file anyway)."""
    removed: list[Path] = []
    for target in targets:
        folder, pattern = target.parent, re.compile(_TEMP_PATTERN.format(name=re.escape(target.name)))
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if pattern.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(OSError):  # gone already, or not ours to delete: leave it
                    entry.unlink()
                    removed.append(entry)
    return removed


def write_error(target: Path, exc: OSError, *, written: Path | None = None) -> WorkbenchError:
    """A failed write as the user can act on it: which file, why, what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_ROOM:
        advice = "free some space on that disk, or export to another folder (--out)"
    elif exc.errno in _NOT_ALLOWED:
        advice = "the folder is not writable: choose another one with --out"
    else:
        advice = "check that folder, or export to another one (--out)"
    if written is not None:
        return WorkbenchError(
            f"wrote {written}, but not {target.name} beside it: {reason}. {written.name} carries its metadata "
            f"inside and works alone; {advice} and export again to get the JSON copy"
        )
    return WorkbenchError(
        f"cannot write {target}: {reason}. Nothing was written (an earlier file of that name is untouched, "
        f"and no temp file is left); {advice}"
    )
