"""What an exported file says about itself, and the checks that make it safe to act on.

Predictions allocate and index by this metadata (image size and channels, mean/std, class names), and it
may come from any ONNX file or a hand-edited JSON, so `validate_metadata` checks every field before use.
Two sha256 digests tie it to its file (the "integrity" block, from version 2 on): one of the weights
payload, one of the metadata itself, so damaged weights and an edited or damaged class list are both
caught. Exports from before the digests (version 1) still load, validated but unverified.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from workbench.engine.errors import WeightsError
from workbench.engine.evaluation.calibration import KEY as CALIBRATION_KEY
from workbench.engine.evaluation.calibration import T_RANGE, fitted_temperature
from workbench.engine.evaluation.out_of_domain import KEY as OOD_KEY
from workbench.engine.evaluation.out_of_domain import LOGIT_MEASURES, OutOfDomain
from workbench.engine.evaluation.tta import uses_flip_tta
from workbench.engine.training.config import IMG_SIZE_RANGE

EXPORT_FORMAT = "cnn-workbench-export"
EXPORT_VERSION = 2  # 2: integrity digests; 1: none (still loaded)
METADATA_KEY = "cnn_workbench"  # ONNX metadata_props key, TorchScript extra file stem, safetensors header key
INTEGRITY = "integrity"
INPUT_NAME, OUTPUT_NAME = "input", "logits"
# The image sizes the workbench trains at (TrainConfig.validate, --img-size): nothing larger can be a real
# export, and a bigger value would make predict allocate size² × channels per image (100000 px: 21 GB+).
MIN_SIZE, MAX_SIZE = IMG_SIZE_RANGE  # what training accepts
CHANNELS = (1, 3)
TTA_VALUES = ("flip", "none")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def export_metadata(meta: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    """What a user of the exported file needs to feed it images and read its outputs (unsealed), exactly
    as JSON gives it back (lists, not tuples; null for NaN), so the file read back compares equal."""
    return _as_json(_describe(meta, checkpoint))


def _as_json(obj: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(obj, default=str), parse_constant=lambda _constant: None)


def _describe(meta: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
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
        # Probabilities are softmax(logits / temperature) (evaluation/calibration.py; 1 for runs without one).
        CALIBRATION_KEY: fitted_temperature(meta).to_dict(),
        # The out-of-domain check an export can run from its logits alone (evaluation/out_of_domain.py).
        OOD_KEY: _logit_only_detector(meta),
    }


def _logit_only_detector(meta: dict[str, Any]) -> dict[str, Any]:
    detector = OutOfDomain.from_dict(meta.get(OOD_KEY)).for_logits_only().to_dict()
    return {key: value for key, value in detector.items() if key != "class_means"}


# ---------------------------------------------------------------------------------------------- digests


def sha256(data: bytes | memoryview) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def metadata_digest(metadata: dict[str, Any]) -> str:
    """sha256 of every field but the integrity block, in a canonical JSON spelling (sorted keys)."""
    fields = {key: value for key, value in metadata.items() if key != INTEGRITY}
    return sha256(json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode())


def seal(metadata: dict[str, Any], weights_digest: str) -> dict[str, Any]:
    """The metadata with its integrity block: the file's weights digest and the metadata's own."""
    unsealed = {key: value for key, value in metadata.items() if key != INTEGRITY}
    return {**unsealed, INTEGRITY: {"weights": weights_digest, "metadata": metadata_digest(unsealed)}}


def verify_integrity(metadata: dict[str, Any], weights_digest: str, path: Path, source: Path) -> bool:
    """Compare the stored digests with the file as read; False for a version-1 export (nothing stored).

    `source` is where the metadata came from: the file itself, or the JSON beside it (then both are named:
    either may be the wrong one)."""
    stored = metadata.get(INTEGRITY)
    if stored is None:
        return False
    if stored["metadata"] != metadata_digest(metadata):
        about = "" if source == path else f" (it describes {path})"
        raise WeightsError(
            f"{source}: its metadata (classes, preprocessing...) is not what was exported{about}: damaged or "
            "edited since, its digest does not match. Export the run again"
        )
    if stored["weights"] != weights_digest:
        found = f"sha256 {weights_digest[7:19]}… where {stored['weights'][7:19]}… was exported"
        if source == path:
            raise WeightsError(
                f"{path} is damaged: its weights are not the ones exported ({found}). Export the run again"
            )
        raise WeightsError(
            f"{source} does not describe {path}: the file's weights are not the ones it records ({found}); the "
            "file is damaged or the JSON belongs to another export"
        )
    return True


# ---------------------------------------------------------------------------------------------- validation


def parse_metadata(text: str | bytes | None, source: Path) -> dict[str, Any] | None:
    """The metadata as JSON, or None when `text` holds none of ours (absent, not JSON, another format)."""
    if not text:
        return None
    try:
        metadata = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WeightsError(
            f"{source}: its CNN Workbench metadata is not valid JSON (damaged or edited)"
        ) from None
    if not isinstance(metadata, dict) or metadata.get("format") != EXPORT_FORMAT:
        return None
    return metadata


def validate_metadata(metadata: dict[str, Any], source: Path) -> dict[str, Any]:
    """Check every field predictions rely on; WeightsError naming `source`, the field, its value and what
    is allowed. Returns the metadata unchanged (its digest covers it as written)."""
    _check_version(metadata, source)
    _check_model(metadata, source)
    _check_classes(metadata.get("classes"), source)
    _check_preprocessing(metadata.get("preprocessing"), source)
    tta = metadata.get("test_time_augmentation", "none")
    if tta not in TTA_VALUES:
        raise _bad(source, "test_time_augmentation", tta, "must be 'flip' or 'none'")
    _check_confidence(metadata, source)
    if metadata["version"] >= 2:
        _check_integrity(metadata.get(INTEGRITY), source)
    return metadata


def _check_confidence(metadata: dict[str, Any], source: Path) -> None:
    """The optional temperature and out-of-domain record (absent in exports made before them: T = 1, no
    check)."""
    calibration = metadata.get(CALIBRATION_KEY)
    if calibration is not None:
        temperature = calibration.get("temperature") if isinstance(calibration, dict) else None
        if not _is_finite(temperature) or not T_RANGE[0] <= temperature <= T_RANGE[1]:
            raise _bad(
                source, f"{CALIBRATION_KEY}.temperature", temperature,
                f"must be a number from {T_RANGE[0]} to {T_RANGE[1]}",
            )  # fmt: skip
    detector = metadata.get(OOD_KEY)
    if detector is None:
        return
    if not isinstance(detector, dict):
        raise _bad(source, OOD_KEY, detector, "must be a table with 'measure' and 'thresholds'")
    measure, thresholds = detector.get("measure"), detector.get("thresholds")
    if measure is not None and measure not in LOGIT_MEASURES:
        raise _bad(source, f"{OOD_KEY}.measure", measure, f"must be one of {', '.join(LOGIT_MEASURES)} or null")
    if not isinstance(thresholds, dict) or not all(map(_is_finite, thresholds.values())):
        raise _bad(source, f"{OOD_KEY}.thresholds", thresholds, "must be a table of finite numbers per measure")
    if measure is not None and measure not in thresholds:
        raise _bad(source, f"{OOD_KEY}.thresholds", thresholds, f"must hold a threshold for '{measure}'")


def _bad(source: Path, field: str, value: object, allowed: str) -> WeightsError:
    shown = "missing" if value is None else f"{_short(value)}"
    return WeightsError(f"{source}: metadata field '{field}' is {shown}: {allowed}")


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({type(value).__name__})"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_version(metadata: dict[str, Any], source: Path) -> None:
    version = metadata.get("version")
    if not _is_int(version) or version < 1:
        raise _bad(source, "version", version, f"must be a whole number from 1 to {EXPORT_VERSION}")
    if version > EXPORT_VERSION:
        raise WeightsError(
            f"{source}: exported by a newer CNN Workbench (metadata version {version}; this one reads up to "
            f"{EXPORT_VERSION}): update the workbench"
        )


def _check_model(metadata: dict[str, Any], source: Path) -> None:
    model = metadata.get("model")
    if not isinstance(model, str) or not model:
        raise _bad(source, "model", model, "must be the architecture's name")
    args = metadata.get("model_args")
    if args is not None and not (isinstance(args, dict) and all(isinstance(k, str) for k in args)):
        raise _bad(source, "model_args", args, "must be a table of argument names and values")


def _check_classes(classes: object, source: Path) -> None:
    allowed = "must be a non-empty list of distinct, non-empty class names (strings)"
    if not isinstance(classes, list) or not classes:
        raise _bad(source, "classes", classes, allowed)
    for name in classes:
        if not isinstance(name, str) or not name.strip():
            raise _bad(source, "classes", classes, f"{allowed}; {_short(name)} is not one")
    duplicates = sorted({name for name in classes if classes.count(name) > 1})
    if duplicates:
        raise _bad(source, "classes", classes, f"{allowed}; {', '.join(map(repr, duplicates))} repeated")


def _check_preprocessing(pre: object, source: Path) -> None:
    if not isinstance(pre, dict):
        raise _bad(source, "preprocessing", pre, "must be a table with size, channels, mean and std")
    size, channels = pre.get("size"), pre.get("channels")
    if not _is_int(size) or not MIN_SIZE <= size <= MAX_SIZE:
        raise _bad(
            source,
            "preprocessing.size",
            size,
            f"must be a whole number of pixels from {MIN_SIZE} to {MAX_SIZE} (the image sizes the workbench trains at)",
        )
    if channels not in CHANNELS or not _is_int(channels):
        raise _bad(source, "preprocessing.channels", channels, "must be 1 (grey) or 3 (RGB)")
    for name in ("mean", "std"):
        values = pre.get(name)
        allowed = f"must be a list of {channels} finite number(s), one per channel"
        if not isinstance(values, list) or len(values) != channels or not all(map(_is_finite, values)):
            raise _bad(source, f"preprocessing.{name}", values, allowed)
    if not all(value > 0 for value in pre["std"]):  # images are divided by it
        raise _bad(
            source, "preprocessing.std", pre["std"], "every value must be above 0 (images are divided by it)"
        )
    resize = pre.get("resize")
    if resize is not None and not isinstance(resize, str):
        raise _bad(source, "preprocessing.resize", resize, "must be a description (text)")


def _check_integrity(integrity: object, source: Path) -> None:
    allowed = "must hold the 'weights' and 'metadata' digests (sha256:<64 hex digits>) written at export"
    if not isinstance(integrity, dict):
        raise _bad(source, INTEGRITY, integrity, allowed)
    for key in ("weights", "metadata"):
        value = integrity.get(key)
        if not isinstance(value, str) or not _DIGEST.fullmatch(value):
            raise _bad(source, f"{INTEGRITY}.{key}", value, allowed)
