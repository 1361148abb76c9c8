"""Export a trained model for use elsewhere — ONNX, TorchScript, or safetensors weights — and load such
files back (`workbench predict` accepts them).

Every export is checked before it is kept: the written file is read back exactly as `load_exported` reads
it (its digests verified, its metadata validated) and run on a random batch (of a size different from the
one used to export, which proves the batch dimension is free); its outputs must match the PyTorch model's:
max absolute difference (reported) below `tolerance` (1e-4), or below 1e-5 × the largest |logit| when that
is looser (logits above 10). Each format is serialized in memory and written with Python I/O, atomically:
a failed export, a failed check or a full disk leaves nothing behind and no earlier file damaged, and the
next export into a folder removes the temp files a killed one left there.

Metadata (classes, preprocessing, architecture, input/output layout, and sha256 digests of the weights and
of the metadata itself) travels inside every exported file: ONNX metadata_props, a TorchScript extra file,
the safetensors header. A copy is written beside it as `<file>.json` (`course_cnn.onnx.json`), one per
exported file. When loading, the copy inside the file is the authority; the JSON beside it must then be
identical, or the file is refused with a message naming both (it describes another export, or was
edited). Only a file without embedded metadata (from elsewhere) is described by its JSON, and then the
JSON's weights digest must match the file. The single `<stem>.json` of exports before version 2 is never
read: it may describe another format's file. See metadata.py for the fields and their checks.

ONNX uses PyTorch's torch.export-based exporter (it needs the `onnxscript` package, in the `export` extra):
the older TorchScript-based one cannot export an adaptive average pool whose output size does not divide
its input size, which the course CNN and AlexNet have at most image sizes.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.engine.atomic import atomic_path, write_json_atomic
from workbench.engine.errors import ConfigError, WeightsError, WorkbenchError, first_line
from workbench.engine.export.files import (
    ACCEPTED_SUFFIXES,
    FORMATS,
    SUFFIXES,
    remove_leftovers,
    sidecar_path,
    write_error,
)
from workbench.engine.export.files import target_path as _target_path
from workbench.engine.export.formats import ONNX_OPSET, READERS, SERIALIZERS, Runner
from workbench.engine.export.metadata import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    INPUT_NAME,
    INTEGRITY,
    METADATA_KEY,
    OUTPUT_NAME,
    export_metadata,
    metadata_digest,
    parse_metadata,
    validate_metadata,
    verify_integrity,
)
from workbench.engine.paths import runs_dir

__all__ = [
    "ACCEPTED_SUFFIXES",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "FORMATS",
    "INPUT_NAME",
    "INTEGRITY",
    "METADATA_KEY",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "RELATIVE_TOLERANCE",
    "SUFFIXES",
    "TOLERANCE",
    "ExportResult",
    "ExportedModel",
    "export_metadata",
    "export_run",
    "exported_format",
    "load_exported",
    "metadata_digest",
    "sidecar_path",
    "validate_metadata",
]

TOLERANCE = 1e-4
RELATIVE_TOLERANCE = 1e-5  # applies when it is the looser bound: largest |logit| above 10


@dataclass
class ExportResult:
    format: str
    path: Path  # the model file (its metadata inside)
    metadata_path: Path  # the JSON copy beside it: `<file>.json`
    max_abs_diff: float  # between the exported file's outputs and PyTorch's, on `check_batch` images
    check_batch: int
    tolerance: float  # the bound the check applied: max(tolerance, RELATIVE_TOLERANCE × largest |logit|)
    weights_sha256: str = ""  # the digest stored in the metadata and verified by the check
    removed_leftovers: list[Path] = field(default_factory=list)  # temp files of a killed earlier export

    @property
    def paths(self) -> list[Path]:
        return [self.path, self.metadata_path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": str(self.path),
            "metadata_path": str(self.metadata_path),
            "max_abs_diff": self.max_abs_diff,
            "check_batch": self.check_batch,
            "tolerance": self.tolerance,
            "weights_sha256": self.weights_sha256,
            "removed_leftovers": [str(p) for p in self.removed_leftovers],
        }


@dataclass
class ExportedModel:
    """An exported file loaded for inference: call it with a float (N, C, H, W) batch → (N, classes) logits."""

    format: str
    path: Path
    meta: dict[str, Any]  # the export's metadata, validated: classes, preprocessing, model, model_args...
    run: Runner
    metadata_source: Path | None = None  # the file the metadata was read from: `path`, or its JSON
    verified: bool = False  # digests checked (False only for exports before version 2, which have none)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


# ---------------------------------------------------------------------------------------------- export


def export_run(
    ref: str | Path,
    format: str,
    out: str | Path | None = None,
    *,
    tolerance: float = TOLERANCE,
    check_batch: int = 3,
) -> ExportResult:
    """Export the model of a run (id or 'last', run folder or checkpoint file).

    out: a folder (default `<run folder>/exports/`), where the file is named after the architecture, or a
    file name with the format's extension (.onnx, .pt/.pth, .safetensors).
    """
    from workbench.engine.training.checkpoint import find_checkpoint, load_model

    if format not in FORMATS:
        raise ConfigError(f"unknown export format '{format}': choose one of {', '.join(FORMATS)}")
    checkpoint = find_checkpoint(ref)
    model, meta = load_model(checkpoint, device="cpu")
    target = _target_path(checkpoint, meta["model"], format, out)
    sidecar = sidecar_path(target)
    removed = remove_leftovers([target, sidecar])
    metadata = export_metadata(meta, checkpoint)
    pre = metadata["preprocessing"]
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, pre["channels"], pre["size"], pre["size"], generator=generator)
    check = torch.randn(check_batch, pre["channels"], pre["size"], pre["size"], generator=generator)
    with torch.inference_mode():
        expected = model(check).float()

    label = f"{format} export of {meta['model']} ({checkpoint})"
    try:
        with atomic_path(target) as tmp:
            sealed = _write(format, model, example, tmp, metadata, label)
            diff, allowed = _check(format, tmp, sealed, check, expected, tolerance, label)
    except OSError as exc:  # the disk (full, read-only...): atomic_path has removed its temp file
        raise write_error(target, exc) from None
    _write_sidecar(sidecar, sealed, target)
    return ExportResult(
        format, target, sidecar, diff, check_batch, allowed, sealed[INTEGRITY]["weights"], removed
    )


def _write(
    format: str, model: nn.Module, example: torch.Tensor, tmp: Path, metadata: dict[str, Any], label: str
) -> dict[str, Any]:
    """Serialize and write `tmp`; returns the sealed metadata the file carries."""
    try:
        return _WRITERS[format](model, example, tmp, metadata)
    except (WorkbenchError, OSError):
        raise
    except Exception as exc:  # an exporter's own failure (an operator it cannot translate...)
        raise WorkbenchError(f"{label} failed: {first_line(exc, 300)}; try another format") from None


def _check(
    format: str,
    tmp: Path,
    sealed: dict[str, Any],
    check: torch.Tensor,
    expected: torch.Tensor,
    tolerance: float,
    label: str,
) -> tuple[float, float]:
    """Read the written file back as predict will (digests, metadata, runtime) and compare its outputs."""
    try:
        runner = _runner(format, tmp, sealed, "cpu")
        with torch.inference_mode():
            actual = runner(check).float()
    except WeightsError as exc:
        raise WorkbenchError(
            f"{label}: the written file does not read back intact ({exc}); nothing was written"
        ) from None
    if actual.shape != expected.shape:
        raise WorkbenchError(
            f"{label}: the exported model outputs shape {list(actual.shape)} for a batch of {len(check)}, "
            f"PyTorch {list(expected.shape)}; nothing was written"
        )
    diff = (actual - expected).abs().max().item()
    # float32 carries ~7 significant digits and deep graphs lose one or two: logits far above 10
    # (untrained deep networks reach 1e7) are held to a relative bound instead.
    allowed = max(tolerance, RELATIVE_TOLERANCE * expected.abs().max().item())
    if not diff < allowed:  # also catches NaN
        raise WorkbenchError(
            f"{label}: outputs differ from PyTorch's by up to {diff:.3g} (tolerance {allowed:.3g}); "
            "nothing was written"
        )
    return diff, allowed


def _write_sidecar(sidecar: Path, sealed: dict[str, Any], target: Path) -> None:
    """The JSON copy; if it cannot be written, an older one must not stay to contradict the new file."""
    try:
        write_json_atomic(sidecar, sealed)
    except OSError as exc:
        with contextlib.suppress(OSError):
            sidecar.unlink(missing_ok=True)
        raise write_error(sidecar, exc, written=target) from None


Writer = Callable[[nn.Module, torch.Tensor, Path, dict[str, Any]], dict[str, Any]]


def _writer(format: str) -> Writer:
    """(model, example, path, metadata) → the sealed metadata, after writing the file to `path`."""
    serialize = SERIALIZERS[format]

    def write(
        model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        data, sealed = serialize(model, example, metadata)  # in memory: only Python I/O meets the disk
        with open(path, "wb") as f:
            f.write(data)
        return sealed

    return write


_WRITERS: dict[str, Writer] = {format: _writer(format) for format in FORMATS}


def _runner(format: str, path: Path, metadata: dict[str, Any], device: str) -> Runner:
    """Run a just-written file (export's check), verified as `load_exported` verifies it; its embedded
    metadata must be the one meant to be written."""
    exported = _open(format, path, device)
    if exported.meta != metadata or not exported.verified:
        raise WeightsError(f"{path}: carries other metadata than the export wrote")
    return exported.run


# ---------------------------------------------------------------------------------------------- loading


def exported_format(path: str | Path) -> str | None:
    """'onnx', 'torchscript' or 'safetensors' for an exported file; None for anything else (a checkpoint)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(".safetensors"):
        return "safetensors"
    if name.endswith(SUFFIXES["torchscript"]):  # our own name: even when damaged beyond recognition
        return "torchscript"
    if path.is_file() and zipfile.is_zipfile(path):
        with contextlib.suppress(zipfile.BadZipFile, OSError), zipfile.ZipFile(path) as archive:
            # torch.jit.save archives carry compiled code; torch.save archives (checkpoints) only data.
            if any("/code/" in entry or entry.endswith("constants.pkl") for entry in archive.namelist()):
                return "torchscript"
    return None


def load_exported(path: str | Path, device: str = "cpu", *, trust_code: bool = False) -> ExportedModel:
    """Load an exported file for inference, verified: its metadata (see the module's docstring for which
    copy counts) validated field by field, its digests compared with the file as read, and one forward
    pass at the declared image size whose output width must be the number of classes.

    A TorchScript file is a program: loading it runs its code. Only files inside the user's own runs
    folder load without `trust_code=True`; ONNX and safetensors never run code from the file. Nothing of
    a TorchScript file runs before its digest is verified."""
    path = Path(path).expanduser()
    format = exported_format(path)
    if format is None:
        raise WeightsError(f"{path}: not an exported model (.onnx, TorchScript .pt or .safetensors)")
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    if format == "torchscript" and not trust_code and not path.resolve().is_relative_to(runs_dir().resolve()):
        raise WeightsError(
            f"{path}: a TorchScript file runs its own code when loaded, and this one is not an export of your "
            "runs. Use an ONNX or safetensors export, or pass --trust-torchscript if you trust where it came from."
        )
    return _open(format, path, device)


def _open(format: str, path: Path, device: str) -> ExportedModel:
    with _read_errors(path, format):
        payload = READERS[format](path.read_bytes(), path)  # one read: what is verified is what runs
    metadata, source = _authoritative_metadata(payload.embedded, path)
    verified = verify_integrity(metadata, payload.digest, path, source)
    with _read_errors(path, format):
        run = payload.runner(metadata, device)
    _check_network(run, metadata, path)
    return ExportedModel(format, path, metadata, run, source, verified)


def _authoritative_metadata(embedded: str | None, path: Path) -> tuple[dict[str, Any], Path]:
    """(validated metadata, the file it came from): the file's own copy first, else its JSON."""
    sidecar = sidecar_path(path)
    beside = _read_sidecar(sidecar) if sidecar.is_file() else None
    inside = parse_metadata(embedded, path)
    if inside is not None:
        metadata = validate_metadata(inside, path)
        if beside is not None:
            _require_same(beside, inside, sidecar, path)
        return metadata, path
    described = parse_metadata(beside, sidecar) if beside is not None else None
    if described is None:
        raise WeightsError(
            f"{path}: no CNN Workbench metadata (classes, preprocessing) inside the file or in {sidecar.name} "
            "beside it"
        )
    metadata = validate_metadata(described, sidecar)
    if INTEGRITY not in metadata:  # nothing ties it to this file: it could describe any network
        raise WeightsError(
            f"{sidecar}: describes {path.name} but carries no digest of its weights, and the file holds no "
            "metadata of its own: export the run again"
        )
    return metadata, sidecar


def _read_sidecar(sidecar: Path) -> str:
    try:
        return sidecar.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{sidecar}: cannot be read ({first_line(exc)})") from None


def _require_same(text: str, inside: dict[str, Any], sidecar: Path, path: Path) -> None:
    """The JSON beside a file must be a copy of the file's own metadata: a different one is never used,
    and never silently ignored (it was edited, or belongs to another export)."""
    try:
        beside = json.loads(text)
    except json.JSONDecodeError:
        beside = None
    if beside == inside:
        return
    if isinstance(beside, dict):
        differing = sorted(k for k in {*beside, *inside} if beside.get(k) != inside.get(k))
        what = f"its {', '.join(repr(k) for k in differing)} differ{'s' if len(differing) == 1 else ''}"
    else:
        what = "it is not valid JSON"
    raise WeightsError(
        f"{sidecar} does not match {path}: {what} from the metadata inside {path.name}, which is the "
        f"authority. Delete {sidecar.name} (it belongs to another export, or was edited) or export again"
    )


def _check_network(run: Runner, metadata: dict[str, Any], path: Path) -> None:
    """One forward pass at the declared size: the network must take those images and give one score per
    class (a shorter class list would index past the scores; a longer one would name wrong classes)."""
    pre, classes = metadata["preprocessing"], len(metadata["classes"])
    shape = (1, pre["channels"], pre["size"], pre["size"])
    try:
        with torch.inference_mode():
            scores = run(torch.zeros(shape))
    except Exception as exc:
        raise WeightsError(
            f"{path}: the network does not take the images its metadata field 'preprocessing' describes "
            f"({pre['channels']} channel(s), {pre['size']}×{pre['size']} px): {first_line(exc)}"
        ) from None
    if tuple(scores.shape) != (1, classes):
        outputs = f"{scores.shape[1]} scores" if scores.dim() == 2 else f"shape {list(scores.shape)}"
        raise WeightsError(
            f"{path}: metadata field 'classes' lists {classes} names, but the network outputs {outputs} per "
            "image: the metadata belongs to another model"
        )


@contextlib.contextmanager
def _read_errors(path: Path, format: str) -> Iterator[None]:
    """Each runtime raises its own kinds of exception on a damaged file: one clear WeightsError instead."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as exc:
        raise WeightsError(
            f"{path}: cannot be loaded as {format} — damaged, truncated or not such a file ({first_line(exc)})"
        ) from None
