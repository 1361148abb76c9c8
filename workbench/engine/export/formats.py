"""The three export formats: each serialized in memory (the caller writes the bytes with Python I/O), and
each read back from bytes, before anything in it runs, as (embedded metadata, weights digest).

Serializing in memory is what makes a full disk an ordinary OSError: torch.jit.save writing a file itself
reports ENOSPC from C++, which aborted the whole process (exit 134) and left its temp file behind.

What "weights digest" covers, per format (everything the outputs depend on, nothing the metadata holds):
- ONNX: the model protobuf as serialized without our metadata_props entry (graph, weights, opsets);
- TorchScript: every record of the archive (code, constants, tensors) but our metadata and torch's random
  serialization id, by name; reading them with `zipfile` also checks each record's CRC-32, which torch
  does not;
- safetensors: every tensor's name, dtype, shape and bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.engine.errors import WeightsError, WorkbenchError, first_line
from workbench.engine.export.metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, seal, sha256

ONNX_OPSET = 18  # the torch.export-based exporter's own opset; onnxruntime runs it from version 1.14
TORCHSCRIPT_EXTRA = f"{METADATA_KEY}.json"
_TORCHSCRIPT_SKIPPED = (f"extra/{TORCHSCRIPT_EXTRA}", ".data/serialization_id")  # ours; random per save

Runner = Callable[[torch.Tensor], torch.Tensor]
Serialized = tuple[bytes, dict[str, Any]]  # (file contents, the sealed metadata inside them)


@dataclass
class Payload:
    """An exported file as read, before anything in it is trusted."""

    embedded: str | None  # the metadata JSON inside the file, if any
    digest: str  # sha256 of its weights payload, as read
    runner: Callable[[dict[str, Any], str], Runner]  # (validated metadata, device) → batch → logits


def require(module: str, purpose: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise WorkbenchError(
            f"{purpose} needs the '{module}' package: pip install 'cnn-workbench[export]'"
        ) from None


@contextlib.contextmanager
def quiet_exporters() -> Iterator[None]:
    """Silence the exporters' warnings (TorchScript's deprecation, tracer notes on shape-dependent Python
    code): the export is judged by its numerical check, and the user can act on none of them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def module_runner(module: Callable[[torch.Tensor], torch.Tensor], device: str) -> Runner:
    return lambda x: module(x.to(device))


# ---------------------------------------------------------------------------------------------- ONNX


def onnx_bytes(model: nn.Module, example: torch.Tensor, metadata: dict[str, Any]) -> Serialized:
    require("onnxscript", "ONNX export")  # what torch's torch.export-based exporter builds graphs with
    batch = torch.export.Dim("batch", min=1)
    with quiet_exporters():
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
    # One self-contained protobuf (weights inside): every zoo model is far below its 2 GB limit.
    proto = program.model_proto
    sealed = seal(metadata, sha256(proto.SerializeToString()))
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(sealed)
    return proto.SerializeToString(), sealed


def read_onnx(data: bytes, path: Path) -> Payload:
    onnx = require("onnx", "Reading an ONNX model")
    proto = onnx.load_model_from_string(data)
    ours = [entry.value for entry in proto.metadata_props if entry.key == METADATA_KEY]
    if len(ours) > 1:
        raise WeightsError(f"{path}: holds {len(ours)} copies of the CNN Workbench metadata; one is expected")
    others = [entry for entry in proto.metadata_props if entry.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(others)
    digest = sha256(proto.SerializeToString())  # protobuf serializes a parsed message byte for byte
    return Payload(ours[0] if ours else None, digest, lambda _meta, device: _onnx_runner(data, device))


def _onnx_runner(data: bytes, device: str) -> Runner:
    ort = require("onnxruntime", "Running an ONNX model")
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(data, providers=providers)
    input_name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {input_name: x.detach().cpu().float().numpy()})[0])

    return run


# ---------------------------------------------------------------------------------------------- TorchScript


def torchscript_bytes(model: nn.Module, example: torch.Tensor, metadata: dict[str, Any]) -> Serialized:
    with quiet_exporters(), torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
    # Saved twice: once to digest its records, once with the sealed metadata. torch writes the same records
    # both times (the export's check re-reads the file and compares, so a difference cannot go unnoticed).
    _, digest = _torchscript_records(_jit_save(traced, {}))
    sealed = seal(metadata, digest)
    return _jit_save(traced, {TORCHSCRIPT_EXTRA: json.dumps(sealed)}), sealed


def read_torchscript(data: bytes, path: Path) -> Payload:
    embedded, digest = _torchscript_records(data)
    return Payload(embedded, digest, lambda _meta, device: module_runner(_jit_load(data, device), device))


def _jit_save(module: torch.jit.ScriptModule, extra: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with quiet_exporters():
        torch.jit.save(module, buffer, _extra_files=extra)
    return buffer.getvalue()


def _jit_load(data: bytes, device: str) -> torch.jit.ScriptModule:
    with quiet_exporters():
        return torch.jit.load(io.BytesIO(data), map_location=device).eval()


def _torchscript_records(data: bytes) -> tuple[str | None, str]:
    """(our metadata record's text, digest of every other record); `zipfile` checks each CRC-32 as it reads."""
    digest = hashlib.sha256()
    embedded = None
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in sorted(archive.infolist(), key=lambda record: record.filename):
            name = info.filename.split("/", 1)[-1]  # the top folder is named after the file when saved
            content = archive.read(info)
            if name == _TORCHSCRIPT_SKIPPED[0]:
                embedded = content.decode("utf-8")
            elif name not in _TORCHSCRIPT_SKIPPED:
                digest.update(f"{name}\0{len(content)}\0".encode())
                digest.update(content)
    return embedded, f"sha256:{digest.hexdigest()}"


# ---------------------------------------------------------------------------------------------- safetensors


def safetensors_bytes(model: nn.Module, example: torch.Tensor, metadata: dict[str, Any]) -> Serialized:
    from safetensors.torch import save

    # Cloned tensors: safetensors refuses tensors that share memory, and views are not contiguous.
    state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
    sealed = seal(metadata, tensors_digest(state))
    return save(state, metadata={METADATA_KEY: json.dumps(sealed)}), sealed


def read_safetensors(data: bytes, path: Path) -> Payload:
    from safetensors.torch import load

    tensors = load(data)  # validates the header against the buffer
    header_size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_size])
    embedded = (header.get("__metadata__") or {}).get(METADATA_KEY)
    return Payload(
        embedded,
        tensors_digest(tensors),
        lambda meta, device: _safetensors_runner(tensors, meta, device, path),
    )


def tensors_digest(state: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(state[name].shape)}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy().data)  # raw bytes, whatever the dtype
    return f"sha256:{digest.hexdigest()}"


def _safetensors_runner(
    tensors: dict[str, torch.Tensor], metadata: dict[str, Any], device: str, path: Path
) -> Runner:
    from workbench.engine.models import build_model

    classes, channels = len(metadata["classes"]), metadata["preprocessing"]["channels"]
    args = metadata.get("model_args") or {}
    try:
        model = build_model(metadata["model"], classes, channels, **args)
    except (WorkbenchError, TypeError, ValueError) as exc:
        raise WeightsError(
            f"{path}: metadata fields 'model' {metadata['model']!r} and 'model_args' {args!r} "
            f"do not make a network ({first_line(exc)})"
        ) from None
    trained_for = _trained_classes(model, tensors, classes)
    if trained_for is not None:
        raise WeightsError(
            f"{path}: metadata field 'classes' lists {classes} names, but its weights output {trained_for} "
            "scores per image: the metadata belongs to another model"
        )
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise WeightsError(
            f"{path}: the weights do not fit {metadata['model']} ({first_line(exc)})"
        ) from None
    return module_runner(model.to(device).eval(), device)


def _trained_classes(model: nn.Module, tensors: Mapping[str, torch.Tensor], classes: int) -> int | None:
    """The class count the weights were trained for, when it is not `classes`: only the head's tensors
    (whose first dimension is the class count) differ between the two builds."""
    for name, own in model.state_dict().items():
        theirs = tensors.get(name)
        if (
            theirs is not None
            and own.dim() == theirs.dim() >= 1
            and own.shape[0] == classes != theirs.shape[0]
            and own.shape[1:] == theirs.shape[1:]
        ):
            return int(theirs.shape[0])
    return None


SERIALIZERS: dict[str, Callable[[nn.Module, torch.Tensor, dict[str, Any]], Serialized]] = {
    "onnx": onnx_bytes,
    "torchscript": torchscript_bytes,
    "safetensors": safetensors_bytes,
}
READERS: dict[str, Callable[[bytes, Path], Payload]] = {
    "onnx": read_onnx,
    "torchscript": read_torchscript,
    "safetensors": read_safetensors,
}
