"""Classification metrics from predictions: accuracy, top-5, per-class precision/recall/F1, confusion matrix.

Everything derives from the confusion matrix (rows = true class, columns = predicted class), so the
numbers the CLI prints and the app draws always agree with each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


def confusion_matrix(targets: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    index = targets.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def topk_accuracy(logits: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    if len(targets) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return (top == targets[:, None]).any(dim=1).float().mean().item()


@dataclass
class ClassMetrics:
    name: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class EvaluationReport:
    classes: list[str]
    confusion: list[list[int]]
    accuracy: float
    top5: float | None  # only with >= 5 classes
    loss: float | None
    per_class: list[ClassMetrics]
    num_images: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "top5_accuracy": self.top5,
            "loss": self.loss,
            "num_images": self.num_images,
            "classes": self.classes,
            "per_class": {
                m.name: {"precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}
                for m in self.per_class
            },
            "macro_f1": self.macro_f1,
            "confusion_matrix": self.confusion,
            **self.extra,
        }

    @property
    def macro_f1(self) -> float:
        return sum(m.f1 for m in self.per_class) / max(len(self.per_class), 1)

    def most_confused(self, limit: int = 5) -> list[tuple[str, str, int]]:
        """(true, predicted, count) for the largest off-diagonal cells."""
        pairs = [
            (self.classes[i], self.classes[j], count)
            for i, row in enumerate(self.confusion)
            for j, count in enumerate(row)
            if i != j and count > 0
        ]
        return sorted(pairs, key=lambda p: -p[2])[:limit]

    def format_table(self) -> str:
        width = max([len(c) for c in self.classes] + [9])
        lines = [f"{'class':<{width}}  precision  recall     f1  support"]
        for m in self.per_class:
            lines.append(
                f"{m.name:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  {m.f1:5.3f}  {m.support:7d}"
            )
        lines.append(
            f"{'accuracy':<{width}}  {self.accuracy:9.4f}" + (f"  top-5 {self.top5:.4f}" if self.top5 else "")
        )
        return "\n".join(lines)


def classification_report(
    logits: torch.Tensor, targets: torch.Tensor, classes: list[str], loss: float | None = None
) -> EvaluationReport:
    num_classes = len(classes)
    predictions = logits.argmax(dim=1)
    cm = confusion_matrix(targets, predictions, num_classes)
    true_pos = cm.diag().double()
    predicted = cm.sum(dim=0).double()
    actual = cm.sum(dim=1).double()
    precision = torch.where(predicted > 0, true_pos / predicted.clamp(min=1), torch.zeros_like(true_pos))
    recall = torch.where(actual > 0, true_pos / actual.clamp(min=1), torch.zeros_like(true_pos))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(denom))
    total = int(cm.sum())
    return EvaluationReport(
        classes=list(classes),
        confusion=cm.tolist(),
        accuracy=(true_pos.sum() / max(total, 1)).item(),
        top5=topk_accuracy(logits, targets, 5) if num_classes >= 5 else None,
        loss=loss,
        per_class=[
            ClassMetrics(name, precision[i].item(), recall[i].item(), f1[i].item(), int(actual[i]))
            for i, name in enumerate(classes)
        ],
        num_images=total,
    )
