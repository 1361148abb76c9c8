"""Export a trained model for use elsewhere — ONNX, TorchScript, or safetensors weights + JSON metadata —
and load such files back (`workbench predict` accepts them).

Every export is checked before it is kept: the exported file is loaded back and run on a random batch
(of a size different from the one used to export, which proves the batch dimension is free), and its
outputs must match the PyTorch model's: max absolute difference (reported) below `tolerance` (1e-4), or
below 1e-5 × the largest |logit| when that is looser (logits above 10). Files are
written atomically: a failed export or check leaves nothing behind and no earlier file damaged.

Each export comes with `<name>.json` beside it: classes, preprocessing (size, channels, mean, std, resize),
architecture and its arguments, and the input/output layout. ONNX and TorchScript files also carry that
JSON inside (ONNX metadata_props / TorchScript extra file), so either file alone is enough to predict.

ONNX uses PyTorch's torch.export-based exporter (it needs the `onnxscript` package, in the `export` extra):
the older TorchScript-based one cannot export an adaptive average pool whose output size does not divide
its input size, which the course CNN and AlexNet have at most image sizes.
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.engine.atomic import atomic_path, write_json_atomic
from workbench.engine.errors import ConfigError, WeightsError, WorkbenchError
from workbench.engine.evaluation.tta import uses_flip_tta
from workbench.engine.paths import runs_dir

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors"}
_ACCEPTED_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth"), "safetensors": (".safetensors",)}
EXPORT_FORMAT = "cnn-workbench-export"
EXPORT_VERSION = 1
METADATA_KEY = "cnn_workbench"  # ONNX metadata_props key, TorchScript extra file stem, safetensors header key
ONNX_OPSET = 18  # the torch.export-based exporter's own opset; onnxruntime runs it from version 1.14
TOLERANCE = 1e-4
RELATIVE_TOLERANCE = 1e-5  # applies when it is the looser bound: largest |logit| above 10
INPUT_NAME, OUTPUT_NAME = "input", "logits"


@dataclass
class ExportResult:
    format: str
    path: Path  # the model file
    metadata_path: Path  # the JSON beside it
    max_abs_diff: float  # between the exported file's outputs and PyTorch's, on `check_batch` images
    check_batch: int
    tolerance: float  # the bound the check applied: max(tolerance, RELATIVE_TOLERANCE × largest |logit|)

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
        }


@dataclass
class ExportedModel:
    """An exported file loaded for inference: call it with a float (N, C, H, W) batch → (N, classes) logits."""

    format: str
    path: Path
    meta: dict[str, Any]  # the export's JSON: classes, preprocessing, model, model_args...
    run: Callable[[torch.Tensor], torch.Tensor]

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
    metadata = export_metadata(meta, checkpoint)
    size, channels = metadata["preprocessing"]["size"], metadata["preprocessing"]["channels"]
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, channels, size, size, generator=generator)
    check = torch.randn(check_batch, channels, size, size, generator=generator)
    with torch.inference_mode():
        expected = model(check).float()

    with atomic_path(target) as tmp:
        try:
            _WRITERS[format](model, example, tmp, metadata)
        except WorkbenchError:
            raise
        except Exception as exc:  # an exporter's own failure (an operator it cannot translate...)
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise WorkbenchError(
                f"{format} export of {meta['model']} ({checkpoint}) failed: {first_line}; try another format"
            ) from None
        with torch.inference_mode():
            actual = _runner(format, tmp, metadata, "cpu")(check).float()
        if actual.shape != expected.shape:
            raise WorkbenchError(
                f"{format} export of {checkpoint}: the exported model outputs shape {list(actual.shape)} for a "
                f"batch of {check_batch}, PyTorch {list(expected.shape)}; nothing was written"
            )
        diff = (actual - expected).abs().max().item()
        # float32 carries ~7 significant digits and deep graphs lose one or two: logits far above 10
        # (untrained deep networks reach 1e7) are held to a relative bound instead.
        allowed = max(tolerance, RELATIVE_TOLERANCE * expected.abs().max().item())
        if not diff < allowed:  # also catches NaN
            raise WorkbenchError(
                f"{format} export of {checkpoint}: outputs differ from PyTorch's by up to {diff:.3g} "
                f"(tolerance {allowed:.3g}); nothing was written"
            )
    metadata_path = _metadata_path(target, format)
    write_json_atomic(metadata_path, metadata)
    return ExportResult(format, target, metadata_path, diff, check_batch, allowed)


def export_metadata(meta: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    """What a user of the exported file needs to feed it images and read its outputs."""
    pre = meta["preprocessing"]
    classes = list(meta["classes"])
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "model": meta["model"],
        "model_args": dict(meta.get("model_args") or {}),
        "classes": classes,
        "preprocessing": dict(pre),
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", pre["channels"], pre["size"], pre["size"]],
            "dtype": "float32",
            "description": "RGB or grey pixels / 255, minus mean, divided by std (per channel)",
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch", len(classes)],
            "description": "class scores (logits) in the order of 'classes'; softmax gives probabilities",
        },
        # The workbench judges a model trained with flips on each image and its mirror (evaluation/tta.py);
        # the exported graph is the single view, so callers who want the same scores average the two.
        "test_time_augmentation": "flip" if uses_flip_tta(meta.get("config") or {}) else "none",
        "epoch": meta.get("epoch"),
        "best_val_acc": meta.get("best_val_acc"),
        "checkpoint": str(checkpoint),
    }


def _safe_stem(name: str) -> str:
    """A file name that stays inside its folder whatever the checkpoint says."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "model"


def _target_path(checkpoint: Path, model_name: str, format: str, out: str | Path | None) -> Path:
    if out is None or Path(out).expanduser().is_dir() or not Path(out).suffix:
        if out is None:
            run_dir = (
                checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
            )
            folder = run_dir / "exports"
        else:
            folder = Path(out).expanduser()
        return folder / f"{_safe_stem(model_name)}{SUFFIXES[format]}"
    target = Path(out).expanduser()
    if not target.name.lower().endswith(_ACCEPTED_SUFFIXES[format]):
        raise ConfigError(
            f"{target}: a {format} export needs a file name ending in {' or '.join(_ACCEPTED_SUFFIXES[format])} "
            "(or give a folder)"
        )
    if target.resolve() == checkpoint.resolve():
        raise ConfigError(f"{target} is the checkpoint being exported: choose another file name")
    return target


def _metadata_path(model_file: Path, format: str) -> Path:
    name = model_file.name
    for suffix in (SUFFIXES[format], *_ACCEPTED_SUFFIXES[format]):
        if name.lower().endswith(suffix):
            return model_file.with_name(name[: -len(suffix)] + ".json")
    return model_file.with_suffix(".json")


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' warnings (TorchScript's deprecation, tracer notes on shape-dependent Python
    code): the export is judged by its numerical check, and the user can act on none of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    _require("onnxscript", "ONNX export")  # what torch's torch.export-based exporter builds graphs with
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporters():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    program.model.metadata_props[METADATA_KEY] = json.dumps(metadata)
    # One self-contained file (weights inside): every zoo model is far below protobuf's 2 GB limit.
    program.save(str(path), external_data=False)


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    with _quiet_exporters(), torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)})


def _write_safetensors(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    # Cloned tensors: safetensors refuses tensors that share memory, and views are not contiguous.
    state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(metadata)})


_WRITERS = {"onnx": _write_onnx, "torchscript": _write_torchscript, "safetensors": _write_safetensors}


def _require(module: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise WorkbenchError(
            f"{purpose} needs the '{module}' package: pip install 'cnn-workbench[export]'"
        ) from None


# ---------------------------------------------------------------------------------------------- loading


def exported_format(path: str | Path) -> str | None:
    """'onnx', 'torchscript' or 'safetensors' for an exported file; None for anything else (a checkpoint)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith(".safetensors"):
        return "safetensors"
    if path.is_file() and zipfile.is_zipfile(path):
        with contextlib.suppress(zipfile.BadZipFile, OSError), zipfile.ZipFile(path) as archive:
            # torch.jit.save archives carry compiled code; torch.save archives (checkpoints) only data.
            if any("/code/" in entry or entry.endswith("constants.pkl") for entry in archive.namelist()):
                return "torchscript"
    return None


def load_exported(path: str | Path, device: str = "cpu", *, trust_code: bool = False) -> ExportedModel:
    """Load an exported file for inference. Its metadata comes from inside the file (ONNX, TorchScript) or
    from `<name>.json` beside it (safetensors; the header's copy when the JSON is missing).

    A TorchScript file is a program: loading it runs its code. Only files inside the user's own runs
    folder load without `trust_code=True`; ONNX and safetensors never run code from the file."""
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
    sidecar = _metadata_path(path, format)
    run: Callable[[torch.Tensor], torch.Tensor] | None = None
    with _read_errors(path, format):
        if format == "onnx":
            session = _onnx_session(path, device)
            text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
            run = _onnx_run(session)
        elif format == "torchscript":
            module, text = _torchscript_module(path, device)
            run = _module_run(module, device)
        elif sidecar.is_file():
            text = sidecar.read_text(encoding="utf-8")
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                text = (f.metadata() or {}).get(METADATA_KEY)
    if not text and sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8")
    metadata = _parse_metadata(text, path, sidecar)
    if run is None:
        run = _safetensors_run(path, metadata, device)
    return ExportedModel(format, path, metadata, run)


def _parse_metadata(text: str | None, path: Path, sidecar: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(text) if text else None
    except json.JSONDecodeError:
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        raise WeightsError(
            f"{path}: no CNN Workbench metadata (classes, preprocessing) inside the file or in {sidecar.name}"
        )
    return metadata


@contextlib.contextmanager
def _read_errors(path: Path, format: str) -> Iterator[None]:
    """Each runtime raises its own kinds of exception on a damaged file: one clear WeightsError instead."""
    try:
        yield
    except WorkbenchError:
        raise
    except Exception as exc:
        raise WeightsError(
            f"{path}: cannot be loaded as {format} ({str(exc).splitlines()[0][:200]})"
        ) from None


def _runner(
    format: str, path: Path, metadata: dict[str, Any], device: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Run a just-written file (export's check), with the metadata already in hand."""
    with _read_errors(path, format):
        if format == "onnx":
            return _onnx_run(_onnx_session(path, device))
        if format == "torchscript":
            return _module_run(_torchscript_module(path, device)[0], device)
    return _safetensors_run(path, metadata, device)


def _onnx_session(path: Path, device: str) -> Any:
    ort = _require("onnxruntime", "Running an ONNX model")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), providers=providers)


def _onnx_run(session: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    input_name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: x.detach().cpu().float().numpy()})[0])

    return run


def _torchscript_module(path: Path, device: str) -> tuple[torch.jit.ScriptModule, str | None]:
    extra = {f"{METADATA_KEY}.json": ""}
    with _quiet_exporters():
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    text = extra[f"{METADATA_KEY}.json"]
    return module.eval(), (text.decode() if isinstance(text, bytes) else text) or None


def _module_run(
    module: Callable[[torch.Tensor], torch.Tensor], device: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: module(x.to(device))


def _safetensors_run(
    path: Path, metadata: dict[str, Any], device: str
) -> Callable[[torch.Tensor], torch.Tensor]:
    from safetensors.torch import load_file

    from workbench.engine.models import build_model

    pre = metadata["preprocessing"]
    model = build_model(
        metadata["model"], len(metadata["classes"]), pre["channels"], **metadata.get("model_args", {})
    )
    with _read_errors(path, "safetensors"):
        state = load_file(str(path))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path}: the weights do not fit {metadata['model']} ({str(exc).splitlines()[0][:200]})"
        ) from None
    model.to(device).eval()
    return _module_run(model, device)
