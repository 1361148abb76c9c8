"""Out-of-domain warning: is an image to predict unlike anything the model was trained on?

A classifier always answers one of its classes — a desktop icon dropped on a clothing model comes out
"Pullover 42%". Each predicted image therefore gets a score where higher means "less like the training
images", and a flag when the score passes a threshold chosen on the validation split so that a stated share
of ordinary images (FALSE_ALARM_RATE, 5%) is flagged by mistake.

Measures (benchmarks/calibration_ood.py compares them on Fashion-MNIST against foreign images):
- "feature_distance": 1 − the cosine similarity of the image's penultimate-layer feature (what the head
  reads) to the nearest class's mean direction of training features. Needs the network itself (a
  checkpoint): the feature is read by a hook on the head's input. (Centring the features on their mean, or
  the distance to the nearest single training image, detected fewer foreign images in the benchmark.)
- "energy": −logsumexp(logits) (Liu et al., 2020), from the logits alone, so exported files can use it.
- "max_probability": 1 − the top calibrated probability (the classic baseline).

The checkpoint stores the thresholds of all three and the class means (a classes × feature-size tensor);
exports store the logit-based one they can compute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from workbench.engine.errors import ModelError

KEY = "out_of_domain"  # the checkpoint's and the export metadata's field
FALSE_ALARM_RATE = 0.05
MIN_IMAGES = 20  # fewer validation images: a 5% quantile of them is meaningless
FEATURE_MEASURE, ENERGY, MAX_PROBABILITY = "feature_distance", "energy", "max_probability"
MEASURES = (FEATURE_MEASURE, ENERGY, MAX_PROBABILITY)
LOGIT_MEASURES = (ENERGY, MAX_PROBABILITY)
DEFAULT_MEASURE = FEATURE_MEASURE  # chosen by benchmarks/calibration_ood.py
EXPORT_MEASURE = ENERGY  # the best measure an export (logits only) can compute
WARNING = "unlike the training images"


# ---------------------------------------------------------------------------------------------- features


class FeatureTap:
    """Collects the input of `model`'s head (its penultimate features) during forward passes.

    A flip-averaged model calls the network twice per batch; `take()` averages what was collected since the
    last call, so features and logits describe the same images the same way."""

    def __init__(self, model: nn.Module):
        from workbench.engine.models.adapt import find_head

        try:
            _, head = find_head(model)
        except ModelError:
            head = None
        self._head = head
        self._seen: list[torch.Tensor] = []
        self._handle: Any = None

    @property
    def available(self) -> bool:
        return self._head is not None

    def __enter__(self) -> FeatureTap:
        if self._head is not None:
            self._handle = self._head.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        x = inputs[0].detach().float()
        if x.ndim > 2:  # a convolutional head (NiN): pool its feature map as the Linear heads' bodies do
            x = x.mean(dim=tuple(range(2, x.ndim)))
        self._seen.append(x.cpu())

    def take(self) -> torch.Tensor | None:
        seen, self._seen = self._seen, []
        return torch.stack(seen).mean(dim=0) if seen else None


def logits_and_features(
    model: nn.Module, network: nn.Module, batches: Iterable[tuple[torch.Tensor, Any]]
) -> tuple[torch.Tensor, torch.Tensor | None, list[Any]]:
    """(logits, features or None, the batches' second items) of `model` (perhaps flip-averaged) over
    `batches`; features are read from `network`, the bare model inside it. fp32, eval mode (restored)."""
    was_training = network.training
    network.eval()
    logits, features, seconds = [], [], []
    tap = FeatureTap(network)
    try:
        with tap, torch.inference_mode():
            for x, second in batches:
                logits.append(model(x).float().cpu())
                taken = tap.take()
                features.append(taken)
                seconds.append(second)
    finally:
        network.train(was_training)
    all_logits = torch.cat(logits) if logits else torch.zeros(0, 0)
    ok = bool(features) and all(f is not None and len(f) == len(lg) for f, lg in zip(features, logits, strict=True))
    return all_logits, (torch.cat(features) if ok else None), seconds


# ---------------------------------------------------------------------------------------------- scores


def energy_score(logits: torch.Tensor) -> torch.Tensor:
    return -torch.logsumexp(logits.float(), dim=1)


def max_probability_score(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    return 1 - (logits.float() / temperature).softmax(dim=1).max(dim=1).values


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=1)


def feature_distance_score(features: torch.Tensor, class_means: torch.Tensor) -> torch.Tensor:
    """1 − the largest cosine similarity between the feature and a class's mean direction (0..2)."""
    return 1 - (_unit(features) @ class_means.T).max(dim=1).values


def class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Each class's mean direction (unit rows); a class without images gets a zero row, never the nearest."""
    units = _unit(features)
    means = torch.zeros(num_classes, features.shape[1])
    for c in range(num_classes):
        members = labels == c
        if members.any():
            means[c] = units[members].mean(dim=0)
    return _unit(means)


def threshold_for(scores: torch.Tensor, false_alarm_rate: float = FALSE_ALARM_RATE) -> float:
    """The score above which at most `false_alarm_rate` of these (in-domain) images lie."""
    return torch.quantile(scores.double(), 1 - false_alarm_rate, interpolation="higher").item()


# ---------------------------------------------------------------------------------------------- the detector


@dataclass
class OutOfDomain:
    """A measure with its threshold (and class means for the feature measure); `note` says how it was set,
    or why there is no check (then `measure` is None and nothing is flagged)."""

    measure: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    false_alarm_rate: float = FALSE_ALARM_RATE
    validation_images: int = 0
    temperature: float = 1.0  # max_probability reads calibrated probabilities
    class_means: torch.Tensor | None = None  # (classes, features) unit rows, for feature_distance
    note: str = ""

    @property
    def active(self) -> bool:
        return self.measure is not None and self.measure in self.thresholds

    @property
    def threshold(self) -> float | None:
        return self.thresholds.get(self.measure) if self.measure else None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: object) -> OutOfDomain:
        """The stored detector; an inactive one with a note for old checkpoints and malformed records."""
        if not isinstance(data, Mapping):
            return cls(
                note="no out-of-domain check: this model was saved without a threshold (by an older version, "
                "or by a run stopped before it finished)"
            )
        try:
            detector = cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})
            detector.thresholds = {str(k): float(v) for k, v in dict(detector.thresholds).items()}
            if detector.class_means is not None:
                detector.class_means = torch.as_tensor(detector.class_means, dtype=torch.float32)
                if detector.class_means.ndim != 2:
                    raise ValueError("class means are not a table")
            if not all(math.isfinite(v) for v in detector.thresholds.values()):
                raise ValueError("a threshold is not finite")
            if detector.measure is not None and detector.measure not in MEASURES:
                raise ValueError(f"unknown measure {detector.measure!r}")
        except (TypeError, ValueError) as exc:
            return cls(note=f"no out-of-domain check: the stored record is not usable ({exc})")
        return detector

    def for_logits_only(self) -> OutOfDomain:
        """The same record for a caller that has logits but no features (an exported file)."""
        if self.measure in LOGIT_MEASURES or not self.active:
            return self
        if EXPORT_MEASURE not in self.thresholds:
            return OutOfDomain(note="no logit-based threshold was stored")
        return OutOfDomain(
            EXPORT_MEASURE, {EXPORT_MEASURE: self.thresholds[EXPORT_MEASURE]}, self.false_alarm_rate,
            self.validation_images, self.temperature,
            note=threshold_note(self.validation_images, self.false_alarm_rate, EXPORT_MEASURE),
        )  # fmt: skip

    def scores(self, logits: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor | None:
        """Scores of the active measure (higher: less like the training images); None when it cannot be
        computed (no check, or the feature measure without features)."""
        if not self.active:
            return None
        if self.measure == ENERGY:
            return energy_score(logits)
        if self.measure == MAX_PROBABILITY:
            return max_probability_score(logits, self.temperature)
        if features is None or self.class_means is None or features.shape[1] != self.class_means.shape[1]:
            return None
        return feature_distance_score(features, self.class_means)

    def flags(self, scores: torch.Tensor) -> torch.Tensor:
        return scores > self.threshold


def fit_out_of_domain(
    val_logits: torch.Tensor,
    val_features: torch.Tensor | None,
    train_features: torch.Tensor | None,
    train_labels: torch.Tensor | None,
    *,
    temperature: float = 1.0,
    false_alarm_rate: float = FALSE_ALARM_RATE,
) -> OutOfDomain:
    """Thresholds for every measure the inputs allow, on validation scores; the active measure is
    DEFAULT_MEASURE when features exist, else EXPORT_MEASURE."""
    total = len(val_logits)
    if total < MIN_IMAGES:
        return OutOfDomain(
            validation_images=total,
            note=f"no out-of-domain check: {total} validation image(s), fewer than {MIN_IMAGES} to set a "
            f"threshold for {false_alarm_rate:.0%} false alarms on",
        )
    thresholds = {
        ENERGY: threshold_for(energy_score(val_logits), false_alarm_rate),
        MAX_PROBABILITY: threshold_for(max_probability_score(val_logits, temperature), false_alarm_rate),
    }
    means = None
    has_features = val_features is not None and train_features is not None and train_labels is not None
    if has_features and len(train_features):
        means = class_means(train_features, train_labels, val_logits.shape[1])
        thresholds[FEATURE_MEASURE] = threshold_for(feature_distance_score(val_features, means), false_alarm_rate)
    measure = DEFAULT_MEASURE if DEFAULT_MEASURE in thresholds else EXPORT_MEASURE
    return OutOfDomain(
        measure, thresholds, false_alarm_rate, total, temperature, means,
        note=threshold_note(total, false_alarm_rate, measure),
    )  # fmt: skip


def threshold_note(images: int | None, false_alarm_rate: float, measure: str) -> str:
    """How the active threshold was set, naming its measure (an export's is the logits' own, not the
    feature distance its checkpoint uses)."""
    return (
        f"out-of-domain warning: threshold set on {images} validation images for {false_alarm_rate:.0%} false "
        f"alarms ({measure.replace('_', ' ')})"
    )
