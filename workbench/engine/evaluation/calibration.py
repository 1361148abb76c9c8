"""Calibrated confidence: does "90% sure" mean right 9 times in 10?

A network trained with cross-entropy is usually over-confident. Temperature scaling (Guo et al., 2017) divides
its logits by one scalar T fitted on the validation split after training (T > 1 softens, T < 1 sharpens); the
predicted class never changes, only the probabilities. T is found by minimizing the validation negative
log-likelihood over log T (L-BFGS: one parameter, a smooth convex-in-practice curve, a handful of steps).

The expected calibration error (ECE) measures the gap: images are put in 15 equal-width bins by their top
probability, and ECE is the image-weighted mean |accuracy − mean confidence| over the bins. A reliability
diagram draws the same bins.

A checkpoint stores the result under "calibration" (see `fitted_temperature`); checkpoints without it, and
runs whose validation split was too small to fit on, use T = 1 and say why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

BINS = 15
MIN_IMAGES = 20  # fewer validation images than this: T is noise, keep 1
T_RANGE = (0.05, 20.0)  # beyond these the fit ran off (e.g. a split the model gets almost all right)
KEY = "calibration"  # the checkpoint's and the export metadata's field


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean top probability of the bin's images (0 when empty)
    accuracy: float  # share of them predicted right (0 when empty)


def reliability_bins(probabilities: torch.Tensor, targets: torch.Tensor, bins: int = BINS) -> list[ReliabilityBin]:
    """Equal-width bins of the top probability, with each bin's mean confidence and accuracy."""
    confidence, predicted = probabilities.float().max(dim=1)
    correct = (predicted == targets).float()
    # A confidence of exactly 1.0 belongs in the last bin, not an extra one.
    index = (confidence * bins).long().clamp(max=bins - 1)
    result = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        result.append(
            ReliabilityBin(
                b / bins,
                (b + 1) / bins,
                count,
                confidence[members].mean().item() if count else 0.0,
                correct[members].mean().item() if count else 0.0,
            )
        )
    return result


def expected_calibration_error(
    probabilities: torch.Tensor, targets: torch.Tensor, bins: int = BINS
) -> float:
    """ECE over `bins` equal-width confidence bins (0 = perfectly calibrated); NaN without images."""
    total = len(targets)
    if total == 0:
        return float("nan")
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in reliability_bins(probabilities, targets, bins))


@dataclass(frozen=True)
class Calibration:
    """What a checkpoint stores: the temperature, whether it was fitted, and the validation figures."""

    temperature: float = 1.0
    fitted: bool = False
    note: str = ""  # why T = 1 was kept, or how it was fitted
    validation_images: int = 0
    ece_before: float | None = None  # on the validation split
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Calibration:
        """The stored record, or T = 1 with a note for old checkpoints and anything malformed."""
        if not isinstance(data, Mapping):
            return cls(
                note="this model was saved without a temperature (by an older version, or by a run stopped "
                "before it finished)"
            )
        temperature = data.get("temperature")
        if not _valid_temperature(temperature):
            return cls(note=f"the stored temperature {temperature!r} is not usable")
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**{**known, "temperature": float(temperature)})


def _valid_temperature(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and T_RANGE[0] <= value <= T_RANGE[1]
    )


def fitted_temperature(meta: Mapping[str, Any]) -> Calibration:
    """The calibration of a checkpoint's (or an export's) metadata; T = 1 when there is none."""
    return Calibration.from_dict(meta.get(KEY))


def _nll(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    return F.cross_entropy(logits / temperature, targets).item()


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> Calibration:
    """Fit T on validation logits (N, C) and labels (N,); T = 1 with the reason when they cannot support it."""
    logits, targets = logits.detach().float().cpu(), targets.detach().long().cpu()
    total = len(targets)
    before_ece = expected_calibration_error(logits.softmax(1), targets) if total else None
    kept = {"validation_images": total, "ece_before": before_ece, "ece_after": before_ece}
    if total < MIN_IMAGES:
        return Calibration(
            note=f"T = 1 kept: {total} validation image(s), fewer than {MIN_IMAGES} to fit a temperature on",
            **kept,
        )
    if len(targets.unique()) < 2:
        return Calibration(note="T = 1 kept: the validation images are all of one class", **kept)
    if bool((logits.argmax(1) == targets).all()):
        # NLL then falls forever as T → 0: the fit would make the model falsely certain.
        return Calibration(
            note=f"T = 1 kept: the model gets all {total} validation images right, so they cannot show "
            "how over- or under-confident it is",
            **kept,
        )
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.exp().item())
    nll_before = _nll(logits, targets, 1.0)
    if not _valid_temperature(temperature):
        return Calibration(
            note=f"T = 1 kept: the fit ran to T = {temperature:.3g}, outside {T_RANGE[0]}–{T_RANGE[1]}",
            nll_before=nll_before,
            **kept,
        )
    nll_after = _nll(logits, targets, temperature)
    if not nll_after < nll_before:  # never worse than not calibrating
        return Calibration(note="T = 1 kept: no temperature lowered the validation loss", nll_before=nll_before, **kept)
    return Calibration(
        temperature=temperature,
        fitted=True,
        note=f"T = {temperature:.2f} fitted on {total} validation images",
        validation_images=total,
        ece_before=before_ece,
        ece_after=expected_calibration_error((logits / temperature).softmax(1), targets),
        nll_before=nll_before,
        nll_after=nll_after,
    )


def calibrated_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return (logits.float() / temperature).softmax(dim=1)


def calibration_report(logits: torch.Tensor, targets: torch.Tensor, calibration: Calibration) -> dict[str, Any]:
    """ECE and reliability bins of evaluated images before and after the stored temperature (for eval's JSON
    and the Evaluate tab's diagram)."""
    before = logits.float().softmax(1)
    after = calibrated_probabilities(logits, calibration.temperature)
    return {
        "temperature": calibration.temperature,
        "fitted": calibration.fitted,
        "note": calibration.note,
        "bins": BINS,
        "ece_before": expected_calibration_error(before, targets),
        "ece_after": expected_calibration_error(after, targets),
        "reliability_before": [asdict(b) for b in reliability_bins(before, targets)],
        "reliability_after": [asdict(b) for b in reliability_bins(after, targets)],
        "validation": {
            "images": calibration.validation_images,
            "ece_before": calibration.ece_before,
            "ece_after": calibration.ece_after,
        },
    }
