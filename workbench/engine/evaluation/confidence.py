"""After training: fit the temperature and the out-of-domain threshold on the validation split and store both
in the checkpoint the run keeps, so evaluate, predict and exports read them from the file (calibration.py,
out_of_domain.py). One forward pass over the validation images and over a sample of training images (for the
class means), in fp32 and judged as evaluation judges (flip-averaged where the run calls for it).

A run that keeps stage 1's instant model needs no forward pass: its body is the frozen network whose
features (and their mirrors') the embedding cache already holds, so the head's inputs are read from there
and its logits are one matrix product (the bundled sample, quick run: 11 of its 27 s were these passes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workbench.engine.data import BatchIterator
from workbench.engine.errors import ModelError, first_line
from workbench.engine.evaluation import calibration, out_of_domain
from workbench.engine.evaluation.tta import for_evaluation, uses_flip_tta
from workbench.engine.features import EmbeddingStore, embeddings_folder
from workbench.engine.features.embedder import body_of, embedding_key, linear_head
from workbench.engine.training import checkpoint as ckpt

TRAIN_PER_CLASS = 200  # training images per class for the class means: enough for a mean, cheap on a CPU
BATCH = 256

log = logging.getLogger(__name__)


def training_sample(labels: torch.Tensor, per_class: int = TRAIN_PER_CLASS, seed: int = 0) -> torch.Tensor:
    """Indices of up to `per_class` images of each class, drawn with a fixed seed."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = [order[labels[order] == c][:per_class] for c in labels.unique().tolist()]
    return torch.sort(torch.cat(chosen)).values if chosen else torch.zeros(0, dtype=torch.long)


@dataclass
class Judged:
    """What the kept model says of some images: logits, its head's input features (None where it has no such
    layer) and the images' labels, all on the CPU."""

    logits: torch.Tensor
    features: torch.Tensor | None
    labels: torch.Tensor


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
    val, train = Judged(logits, features, targets), None
    if features is not None and len(targets) >= out_of_domain.MIN_IMAGES:
        chosen = training_sample(train_labels)
        batches = BatchIterator(
            train_images[chosen], train_labels[chosen], BATCH, shuffle=False, device=device,
            mean=preprocessing["mean"], std=preprocessing["std"],
        )  # fmt: skip
        train_logits, train_features, train_label_batches = out_of_domain.logits_and_features(judged, model, batches)
        train = Judged(train_logits, train_features, torch.cat([y.cpu() for y in train_label_batches]))
    return fit_on(val, train)


def fit_on(val: Judged, train: Judged | None) -> tuple[calibration.Calibration, out_of_domain.OutOfDomain]:
    """The temperature from the validation images, the out-of-domain detector from them and the training sample."""
    fitted = calibration.fit_temperature(val.logits, val.labels)
    detector = out_of_domain.fit_out_of_domain(
        val.logits,
        val.features,
        None if train is None else train.features,
        None if train is None else train.labels,
        temperature=fitted.temperature,
    )
    return fitted, detector


def judged_from_embeddings(model: torch.nn.Module, config: dict[str, Any], data: Any) -> tuple[Judged, Judged] | None:
    """(validation, training sample) as `fit_confidence` would judge them, read from the embedding cache when it
    holds the features of `model`'s body for every one of those images (stage 1's instant model: its body is
    the frozen network stage 1 embedded with), else None. `data` is the run's PreparedData."""
    if data.val is None or not len(data.val.labels):
        return None
    try:
        body, (_, head) = body_of(model), linear_head(model)
    except ModelError:
        return None
    key = embedding_key(
        body, model_name=config["model"], size=config["img_size"], channels=config["channels"],
        model_args=config.get("model_args"),
    )  # fmt: skip
    store = EmbeddingStore(embeddings_folder(), key)  # another body (fine-tuned) has another key: nothing there
    flip = uses_flip_tta(config)
    chosen = training_sample(data.train.labels)
    val_views = store.cached(data.val.paths, mirrored=flip)
    train_views = store.cached([data.train.paths[i] for i in chosen.tolist()], mirrored=flip)
    if val_views is None or train_views is None:
        return None
    weight = head.weight.detach().float().cpu()
    bias = torch.zeros(len(weight)) if head.bias is None else head.bias.detach().float().cpu()

    def judge(features: torch.Tensor, mirrored: torch.Tensor | None, labels: torch.Tensor) -> Judged:
        if mirrored is not None:  # the head is linear: its logits of the averaged views are the averaged logits
            features = (features + mirrored) / 2
        return Judged(features @ weight.T + bias, features, labels.cpu())

    return judge(*val_views, data.val.labels), judge(*train_views, data.train.labels[chosen])


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
        config = session.config.to_dict()
        val_batches = session.eval_batches.get("val")
        cached = None if val_batches is None else judged_from_embeddings(session.model, config, session.data)
        if cached is not None:
            fitted, detector = fit_on(*cached)
        else:
            fitted, detector = fit_confidence(
                session.model,
                config,
                val_batches,
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
