"""Classify individual images with a trained model: top-k classes with probabilities, optionally as CSV.

Probabilities are calibrated with the temperature stored with the model (calibration.py; T = 1 for models
saved without one), and each image is checked against the out-of-domain threshold stored with it
(out_of_domain.py): `out_of_domain` is True for an image unlike the training images, None without a check.

The model is a run's checkpoint or an exported file (.onnx, TorchScript .pt, .safetensors with its JSON),
so `workbench predict` checks an export with the same numbers as the run it came from.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from workbench.engine.atomic import write_bytes_atomic
from workbench.engine.data import decode_image
from workbench.engine.data.scan import IMAGE_EXTENSIONS
from workbench.engine.device import in_inference_layout
from workbench.engine.errors import BadImageError, DatasetError, WorkbenchError
from workbench.engine.evaluation.calibration import calibrated_probabilities, fitted_temperature
from workbench.engine.evaluation.out_of_domain import FEATURE_MEASURE, WARNING, FeatureTap, OutOfDomain
from workbench.engine.evaluation.out_of_domain import KEY as OOD_KEY
from workbench.engine.evaluation.tta import FlipAveraged, for_evaluation
from workbench.engine.names import display_name
from workbench.engine.training.checkpoint import load_model


@dataclass
class ImagePrediction:
    path: str
    top: list[tuple[str, float]] = field(default_factory=list)  # (class, probability), best first
    error: str | None = None
    temperature: float = 1.0  # the probabilities are softmax(logits / temperature)
    calibrated: bool = False  # a temperature fitted on validation (False: T = 1, plain softmax)
    out_of_domain: bool | None = None  # unlike the training images; None: no check for this model
    domain_score: float | None = None  # the measure's score (higher: less like the training images)
    domain_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "path": self.path,
            "top": [{"class": c, "probability": p} for c, p in self.top],
        }
        if self.error:
            result["error"] = self.error
            return result
        result["calibrated"] = self.calibrated
        result["temperature"] = self.temperature
        result["out_of_domain"] = self.out_of_domain
        if self.domain_score is not None:
            result["out_of_domain_score"] = self.domain_score
            result["out_of_domain_threshold"] = self.domain_threshold
        return result


def expand_image_paths(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; folders expanded to the images inside them (sorted, recursively)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            )
        elif path.exists():
            found.append(path)
        else:
            raise DatasetError(f"{path}: no such file or folder")
    return found


class Predictor:
    """Holds a loaded model; `predict` many times (the app's predictions view keeps one)."""

    def __init__(self, ref: str | Path, device: str = "cpu", *, trust_code: bool = False, tta: bool = True):
        from workbench.engine.export import exported_format, load_exported

        self.source_format = exported_format(ref) or "checkpoint"
        self.network: torch.nn.Module | None = None  # the bare network, whose features the OOD check reads
        if self.source_format == "checkpoint":
            model, self.meta = load_model(ref, device=device)
            model = in_inference_layout(model, device, self.meta.get("config") or {})
            self.network = model
            self.model = for_evaluation(model, self.meta.get("config", {}), tta=tta)
            self.detector = OutOfDomain.from_dict(self.meta.get(OOD_KEY))
        else:
            exported = load_exported(ref, device=device, trust_code=trust_code)
            self.meta = exported.meta
            flip = tta and self.meta.get("test_time_augmentation") == "flip"
            self.model = FlipAveraged(exported) if flip else exported  # callable: batch → logits
            self.detector = OutOfDomain.from_dict(self.meta.get(OOD_KEY)).for_logits_only()
        self.calibration = fitted_temperature(self.meta)
        self.device = device
        pre = self.meta["preprocessing"]
        self.size, self.channels = pre["size"], pre["channels"]
        self.mean = torch.tensor(pre["mean"]).view(-1, 1, 1)
        self.std = torch.tensor(pre["std"]).view(-1, 1, 1)

    @property
    def flip_averaged(self) -> bool:
        """Whether predictions average each image with its mirror (see tta.py)."""
        return isinstance(self.model, FlipAveraged)

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def probability_note(self) -> str:
        """How the shown probabilities were made, in the words the CLI and the app use."""
        if self.calibration.fitted:
            return (
                f"probabilities calibrated on the validation split (temperature {self.calibration.temperature:.2f}, "
                "fitted so that a shown 80% is right about 80% of the time on those images)"
            )
        return f"probabilities not calibrated ({self.calibration.note.removeprefix('T = 1 kept: ')}; T = 1)"

    @property
    def domain_note(self) -> str:
        """Whether and how images unlike the training images are flagged."""
        d = self.detector
        if not d.active:
            return d.note or "no out-of-domain check for this model"
        return (
            f"images {WARNING} are flagged ({d.measure.replace('_', ' ')} above a threshold that flags "
            f"{d.false_alarm_rate:.0%} of the {d.validation_images} validation images)"
        )

    def _logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        wants_features = self.detector.measure == FEATURE_MEASURE and self.network is not None
        with torch.inference_mode():
            if not wants_features:
                return self.model(x).float().cpu(), None
            tap = FeatureTap(self.network)
            with tap:
                logits = self.model(x).float().cpu()
            return logits, tap.take()

    def predict(
        self, paths: Sequence[str | Path], top_k: int = 5, batch_size: int = 64
    ) -> list[ImagePrediction]:
        results = [ImagePrediction(str(p)) for p in expand_image_paths(paths)]
        good: list[tuple[ImagePrediction, torch.Tensor]] = []
        for result in results:
            try:
                good.append((result, decode_image(result.path, self.size, self.channels)))
            except BadImageError as exc:
                result.error = exc.reason
        k = min(top_k, len(self.classes))
        for start in range(0, len(good), batch_size):
            chunk = good[start : start + batch_size]
            x = torch.stack([tensor for _, tensor in chunk]).float().div_(255)
            x = ((x - self.mean) / self.std).to(self.device)
            logits, features = self._logits_and_features(x)
            probs = calibrated_probabilities(logits, self.calibration.temperature)
            values, indices = probs.topk(k, dim=1)
            scores = self.detector.scores(logits, features)
            flags = self.detector.flags(scores).tolist() if scores is not None else [None] * len(chunk)
            scores_list = scores.tolist() if scores is not None else [None] * len(chunk)
            for (result, _), vals, idxs, flag, score in zip(
                chunk, values.tolist(), indices.tolist(), flags, scores_list, strict=True
            ):
                result.top = [(self.classes[i], v) for v, i in zip(vals, idxs, strict=True)]
                result.temperature, result.calibrated = self.calibration.temperature, self.calibration.fitted
                result.out_of_domain, result.domain_score = flag, score
                result.domain_threshold = self.detector.threshold if score is not None else None
        return results


def predict(
    ref: str | Path,
    paths: Sequence[str | Path],
    top_k: int = 5,
    device: str = "cpu",
    *,
    trust_code: bool = False,
    tta: bool = True,
) -> list[ImagePrediction]:
    return Predictor(ref, device=device, trust_code=trust_code, tta=tta).predict(paths, top_k=top_k)


def predictions_csv(results: Sequence[ImagePrediction]) -> str:
    """One row per image: path, then class and probability for each rank, then (when the model has an
    out-of-domain check) whether the image is unlike the training images, then the error (if any)."""
    ranks = max((len(r.top) for r in results), default=0)
    checked = any(r.out_of_domain is not None for r in results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["path"]
    for rank in range(1, ranks + 1):
        header += [f"class_{rank}", f"probability_{rank}"]
    writer.writerow([*header, *(["out_of_domain"] if checked else []), "error"])
    for result in results:
        row = [result.path]
        for rank in range(ranks):
            row += [result.top[rank][0], repr(result.top[rank][1])] if rank < len(result.top) else ["", ""]
        if checked:
            row.append("" if result.out_of_domain is None else ("yes" if result.out_of_domain else "no"))
        writer.writerow([*row, result.error or ""])
    return buffer.getvalue()


def write_predictions_csv(results: Sequence[ImagePrediction], path: str | os.PathLike) -> Path:
    """Write `predictions_csv` atomically (UTF-8; a file name that is not UTF-8 is written as `caf\\xe9`, as
    everywhere people read names); returns the path."""
    try:
        write_bytes_atomic(path, display_name(predictions_csv(results)).encode("utf-8"))
    except OSError as exc:
        raise WorkbenchError(f"cannot write {os.fsdecode(path)}: {exc.strerror or exc}") from None
    return Path(path)
