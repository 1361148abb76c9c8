"""After training: fit the temperature and the out-of-domain threshold on the validation split and store both
in the checkpoint the run keeps, so evaluate, predict and exports read them from the file (calibration.py,
out_of_domain.py). One forward pass over the validation images and over a sample of training images (for the
class means), in fp32 and judged as evaluation judges (flip-averaged where the run calls for it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from workbench.engine.data import BatchIterator
from workbench.engine.errors import first_line
from workbench.engine.evaluation import calibration, out_of_domain
from workbench.engine.evaluation.tta import for_evaluation
from workbench.engine.features.embedder import linear_head
from workbench.engine.training import checkpoint as ckpt

TRAIN_PER_CLASS = 200  # training images per class for the class means: enough for a mean, cheap on a CPU
BATCH = 256

log = logging.getLogger(__name__)


def training_sample(labels: torch.Tensor, per_class: int = TRAIN_PER_CLASS, seed: int = 0) -> torch.Tensor:
    """Indices of up to `per_class` images of each class, drawn with a fixed seed."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = [order[labels[order] == c][:per_class] for c in labels.unique().tolist()]
    return torch.sort(torch.cat(chosen)).values if chosen else torch.zeros(0, dtype=torch.long)


def fit_confidence(
    model: torch.nn.Module,
    config: dict[str, Any],
    val_batches: BatchIterator | None,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    preprocessing: dict[str, Any],
    device: torch.device,
) -> tuple[calibration.Calibration, out_of_domain.OutOfDomain]:
    """The temperature and the out-of-domain detector of `model` (loaded with the kept weights)."""
    if val_batches is None:
        reason = "there is no validation split"
        return (
            calibration.Calibration(note=f"T = 1 kept: {reason}"),
            out_of_domain.OutOfDomain(note=f"no out-of-domain check: {reason}"),
        )
    judged = for_evaluation(model, config)
    logits, features, labels = out_of_domain.logits_and_features(judged, model, val_batches)
    targets = torch.cat([y.cpu() for y in labels]) if labels else torch.zeros(0, dtype=torch.long)
    fitted = calibration.fit_temperature(logits, targets)
    train_features = train_targets = None
    if features is not None and len(targets) >= out_of_domain.MIN_IMAGES:
        chosen = training_sample(train_labels)
        batches = BatchIterator(
            train_images[chosen], train_labels[chosen], BATCH, shuffle=False, device=device,
            mean=preprocessing["mean"], std=preprocessing["std"],
        )  # fmt: skip
        _, train_features, train_label_batches = out_of_domain.logits_and_features(judged, model, batches)
        train_targets = torch.cat([y.cpu() for y in train_label_batches])
    detector = out_of_domain.fit_out_of_domain(
        logits, features, train_features, train_targets, temperature=fitted.temperature
    )
    return fitted, detector


def store(path: Path, fitted: calibration.Calibration, detector: out_of_domain.OutOfDomain) -> None:
    """Write both records into the checkpoint at `path` (rewritten atomically, its digest recomputed)."""
    payload = ckpt.load_checkpoint(path)
    payload[calibration.KEY] = fitted.to_dict()
    payload[out_of_domain.KEY] = detector.to_dict()
    ckpt.save_checkpoint(path, payload)


def calibrate_run(session: Any, kept: Path) -> list[str]:
    """Fit on the kept checkpoint's weights and store the result in it; returns what to tell the user.
    (`session` is the trainer's Session; called from trainer._finish on the process that writes.)"""
    if not session.is_main or not kept.is_file():
        return []
    try:
        payload = ckpt.load_checkpoint(kept, map_location=session.device)
        session.model.load_state_dict(payload["model_state"])
        held_out = payload.get(ckpt.HELD_OUT_HEAD)
        if held_out is not None:  # judged on validation images, the head that never saw them (probe_stage.py)
            _, head = linear_head(session.model)
            with torch.no_grad():
                head.weight.copy_(held_out["weight"])
                head.bias.copy_(held_out["bias"])
        fitted, detector = fit_confidence(
            session.model,
            session.config.to_dict(),
            session.eval_batches.get("val"),
            session.data.train.images,
            session.data.train.labels,
            session.data.preprocessing.to_dict(),
            session.device,
        )
        store(kept, fitted, detector)
    except Exception as exc:  # the model is trained and saved: a failure here must not fail the run
        log.warning("calibration failed", exc_info=True)
        return [
            f"confidence not calibrated and no out-of-domain check ({type(exc).__name__}: {first_line(exc)}); "
            "the trained model is saved and predicts with T = 1"
        ]
    return [describe(fitted), detector.note]


def describe(fitted: calibration.Calibration) -> str:
    if not fitted.fitted:
        return f"confidence not calibrated: {fitted.note.removeprefix('T = 1 kept: ')} (T = 1 kept)"
    text = (
        f"confidence calibrated: temperature {fitted.temperature:.2f} on {fitted.validation_images} validation "
        f"images (log-loss {fitted.nll_before:.3f} → {fitted.nll_after:.3f}, which the fit lowers; expected "
        f"calibration error {fitted.ece_before:.1%} → {fitted.ece_after:.1%})"
    )
    if fitted.ece_after > fitted.ece_before:  # seen on 40 images: a lower loss, a higher ECE
        text += (
            f"; the ECE rose because {fitted.validation_images} images spread over {calibration.BINS} confidence "
            "bins leave a few per bin, too few for a steady figure"
        )
    return text
