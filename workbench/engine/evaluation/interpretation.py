"""Where and how a model is wrong, in fastai's `ClassificationInterpretation` vocabulary.

Built from `Predictions` (paths, true labels, logits), so the evaluation view, its confusion-matrix cell
gallery and the top-losses gallery all read the same numbers as `workbench eval`:

    interp = ClassificationInterpretation.from_run("last", "data/", split="test")
    interp.confusion_matrix(normalize=True)   # rows = true class, columns = predicted, row-normalized
    interp.most_confused(min_count=2)         # [(true, predicted, count), ...]
    interp.top_losses(9)                      # the images the model is most wrong about
    interp.cell("shirt", "t-shirt")           # the images behind one confusion-matrix cell
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from workbench.engine.errors import WorkbenchError
from workbench.engine.evaluation.calibration import calibration_report
from workbench.engine.evaluation.evaluate import Predictions, predict_folder
from workbench.engine.evaluation.metrics import EvaluationReport, classification_report, confusion_matrix


@dataclass(frozen=True)
class ImageOutcome:
    """One image as the galleries show it."""

    index: int  # position in the predictions
    path: str
    true_class: str
    predicted_class: str
    probability: float  # of the predicted class
    true_probability: float  # of the true class
    loss: float  # cross-entropy

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConfusedPair:
    true_class: str
    predicted_class: str
    count: int


class ClassificationInterpretation:
    def __init__(self, predictions: Predictions):
        if len(predictions.paths) != len(predictions.targets) or len(predictions.targets) != len(
            predictions.logits
        ):
            raise WorkbenchError("predictions are inconsistent: paths, targets and logits differ in length")
        self.predictions = predictions
        self.classes = list(predictions.classes)
        self.targets = predictions.targets.long()
        # Probabilities and losses are calibrated (the checkpoint's temperature; T = 1 without one), as
        # `workbench eval` and predict report them; the predicted class is the same either way.
        calibrated = predictions.calibrated_logits.float()
        self.probabilities = calibrated.softmax(dim=1)
        self.predicted = predictions.logits.argmax(dim=1)
        self.losses = F.cross_entropy(calibrated, self.targets, reduction="none")

    @classmethod
    def from_run(
        cls,
        ref: str | Path,
        data: str | Path | Sequence[str],
        *,
        split: str = "auto",
        device: str = "cpu",
        progress: Callable[[int, int], None] | None = None,
    ) -> ClassificationInterpretation:
        """Predict a labeled folder with a run's model (see `predict_folder` for `split`)."""
        return cls(predict_folder(ref, data, split=split, device=device, progress=progress))

    def __len__(self) -> int:
        return len(self.targets)

    def report(self) -> EvaluationReport:
        """Accuracy, top-5, per-class precision/recall/F1 and the confusion matrix."""
        loss = self.losses.mean().item() if len(self) else None
        report = classification_report(self.predictions.logits, self.targets, self.classes, loss=loss)
        report.extra["flip_averaged"] = self.predictions.flip_averaged
        report.extra["split"], report.extra["split_note"] = self.predictions.split, self.predictions.split_note
        report.extra["calibration"] = calibration_report(
            self.predictions.logits, self.targets, self.predictions.calibration
        )
        return report

    def confusion_matrix(self, normalize: bool = False) -> torch.Tensor:
        """(classes, classes): rows are true classes, columns predicted ones; counts (int64), or each row
        divided by its total (float; a class without images keeps a row of zeros)."""
        counts = confusion_matrix(self.targets, self.predicted, len(self.classes))
        if not normalize:
            return counts
        totals = counts.sum(dim=1, keepdim=True).double()
        return torch.where(totals > 0, counts / totals.clamp(min=1), 0.0)

    def most_confused(self, min_count: int = 1) -> list[ConfusedPair]:
        """Off-diagonal cells with at least `min_count` images, largest first (ties by class order)."""
        counts = self.confusion_matrix()
        pairs = [
            ConfusedPair(self.classes[i], self.classes[j], int(counts[i, j]))
            for i in range(len(self.classes))
            for j in range(len(self.classes))
            if i != j and counts[i, j] >= max(min_count, 1)
        ]
        return sorted(pairs, key=lambda pair: -pair.count)

    def outcome(self, index: int) -> ImageOutcome:
        true, predicted = int(self.targets[index]), int(self.predicted[index])
        return ImageOutcome(
            index=index,
            path=self.predictions.paths[index],
            true_class=self.classes[true],
            predicted_class=self.classes[predicted],
            probability=self.probabilities[index, predicted].item(),
            true_probability=self.probabilities[index, true].item(),
            loss=self.losses[index].item(),
        )

    def top_losses(self, k: int | None = None, largest: bool = True) -> list[ImageOutcome]:
        """The `k` images with the highest loss (all of them when k is None); `largest=False` gives the
        images the model is surest about instead."""
        k = len(self) if k is None else max(0, min(k, len(self)))
        order = torch.sort(self.losses, descending=largest, stable=True).indices[:k]
        return [self.outcome(int(i)) for i in order]

    def cell(self, true_class: str | int, predicted_class: str | int) -> list[ImageOutcome]:
        """The images of one confusion-matrix cell, highest loss first."""
        true, predicted = self._class_index(true_class), self._class_index(predicted_class)
        members = torch.nonzero((self.targets == true) & (self.predicted == predicted)).flatten()
        members = members[torch.sort(self.losses[members], descending=True, stable=True).indices]
        return [self.outcome(int(i)) for i in members]

    def _class_index(self, name_or_index: str | int) -> int:
        if isinstance(name_or_index, int):
            if not 0 <= name_or_index < len(self.classes):
                raise WorkbenchError(
                    f"class index {name_or_index} is out of range (0..{len(self.classes) - 1})"
                )
            return name_or_index
        if name_or_index not in self.classes:
            raise WorkbenchError(
                f"unknown class '{name_or_index}': the classes are {', '.join(self.classes)}"
            )
        return self.classes.index(name_or_index)
