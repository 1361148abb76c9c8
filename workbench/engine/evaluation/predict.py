"""Classify individual images with a trained model: top-k classes with probabilities, optionally as CSV.

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
from workbench.engine.errors import BadImageError, DatasetError, WorkbenchError
from workbench.engine.evaluation.tta import FlipAveraged, for_evaluation
from workbench.engine.names import display_name
from workbench.engine.training.checkpoint import load_model


@dataclass
class ImagePrediction:
    path: str
    top: list[tuple[str, float]] = field(default_factory=list)  # (class, probability), best first
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "path": self.path,
            "top": [{"class": c, "probability": p} for c, p in self.top],
        }
        if self.error:
            result["error"] = self.error
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
        if self.source_format == "checkpoint":
            model, self.meta = load_model(ref, device=device)
            self.model = for_evaluation(model, self.meta.get("config", {}), tta=tta)
        else:
            exported = load_exported(ref, device=device, trust_code=trust_code)
            self.meta = exported.meta
            flip = tta and self.meta.get("test_time_augmentation") == "flip"
            self.model = FlipAveraged(exported) if flip else exported  # callable: batch → logits
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
            with torch.inference_mode():
                probs = self.model(x).float().softmax(dim=1).cpu()
            values, indices = probs.topk(k, dim=1)
            for (result, _), vals, idxs in zip(chunk, values.tolist(), indices.tolist(), strict=True):
                result.top = [(self.classes[i], v) for v, i in zip(vals, idxs, strict=True)]
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
    """One row per image: path, then class and probability for each rank, then the error (if any)."""
    ranks = max((len(r.top) for r in results), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["path"]
    for rank in range(1, ranks + 1):
        header += [f"class_{rank}", f"probability_{rank}"]
    writer.writerow([*header, "error"])
    for result in results:
        row = [result.path]
        for rank in range(ranks):
            row += [result.top[rank][0], repr(result.top[rank][1])] if rank < len(result.top) else ["", ""]
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
