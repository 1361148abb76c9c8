"""Stage 1 of a run that starts from pretrained weights: the instant model.

Every training and validation image (and its mirror, when the run uses flips) goes once through the frozen
network; the vectors are cached on disk (features/store.py), so a second run on the same folder embeds
nothing. A logistic-regression head is fitted on them in seconds (linear_probe.py) and written into the
network's own head, so the result is an ordinary checkpoint (epoch 0) that evaluate, predict, inspect and
export use unchanged — and the starting point of stage 2, fine-tuning (LP-FT).

When the network's head also reads taps (pooled features of earlier blocks, EfficientNet-Lite's
`probe_taps`), the instant model uses them all, and stage 2 starts from a second head fitted on the last
layer's features alone, the tap columns at zero and kept there (fine-tuning through them did worse).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator

import torch
import torch.nn.functional as F

from workbench.engine.errors import ModelError
from workbench.engine.evaluation.figures import HEAD_REFIT_ON_VAL
from workbench.engine.evaluation.uncertainty import TINY_PER_CLASS, format_interval
from workbench.engine.features import Embedder, EmbeddingStore, embeddings_folder
from workbench.engine.features.embedder import linear_head
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.data_setup import PreparedData, with_progress
from workbench.engine.training.events import CheckpointSaved, DataProgress, EpochEnded, Event, Message
from workbench.engine.training.linear_probe import ProbeFit, fit_linear_probe
from workbench.engine.training.session import Session

STAGE = "linear probe"
# Stage 1's history record keeps which validation images its held-out head got right ("1"/"0" per image,
# in the split's order), so that the end of fine-tuning is compared with it image by image, after a
# resume too (fine_tuning_replaces_stage1).
VAL_HITS = "val_hits"
L2 = "l2"  # the penalty stage 1's cross-validation chose: stage 2's starting head reuses it


def fit_head_on_embeddings(
    s: Session, should_stop: Callable[[], bool] | None = None
) -> Generator[Event, None, bool]:
    """Fit `s.model`'s head on cached embeddings and save it as epoch 0. Returns False when the model's
    head cannot be fitted this way (the run then simply fine-tunes)."""
    config, data = s.config, s.data
    try:
        head_name, head = linear_head(s.model)
    except ModelError as exc:
        yield Message(f"no linear-probe stage: {exc}")
        return False
    started = time.perf_counter()
    embedded = yield from _embed_splits(s, should_stop)
    train_x, train_flipped = embedded["train"]
    fit = fit_linear_probe(
        train_x, data.train.labels, len(data.classes), mirrored=train_flipped, seed=config.seed
    )
    for note in fit.notes:
        yield Message(note)
    _write_head(head, fit.weight, fit.bias)

    val_loss = val_acc = None
    val_count = 0
    val_hits = ""
    if "val" in embedded:
        logits = fit.logits(*embedded["val"])
        val_loss = F.cross_entropy(logits, data.val.labels).item()
        val_acc = _accuracy(logits, data.val.labels)
        val_count = len(data.val.labels)
        val_hits = "".join("1" if hit else "0" for hit in (logits.argmax(1) == data.val.labels).tolist())
    per_class = val_count / max(len(data.classes), 1)
    # With so few validation images, the head is refitted on them too (below), after its figures are taken.
    tiny_validation = val_acc is not None and per_class < TINY_PER_CLASS and fit.cv_accuracy is not None
    record = EpochEnded(
        epoch=0,
        train_loss=fit.train_loss,
        train_acc=fit.train_accuracy,
        val_loss=val_loss,
        val_acc=val_acc,
        seconds=time.perf_counter() - started,
        stage=STAGE,
        val_images=val_count,
        cv_accuracy=fit.cv_accuracy,
        cv_se=fit.cv_se,
    )
    s.history.append(
        {**record.to_dict(), "best": val_acc is not None, HEAD_REFIT_ON_VAL: tiny_validation, VAL_HITS: val_hits,
         L2: fit.l2}
    )  # fmt: skip
    s.handle.record_epoch(s.history, s.best_acc)
    yield record
    summary = f"stage 1 (linear head, L2 {fit.l2:g}): "
    if val_acc is not None:
        summary += f"validation {format_interval(val_acc, val_count)}"
    if fit.cv_accuracy is not None:
        summary += (
            f"{'; ' if val_acc is not None else ''}{fit.folds}-fold cross-validation on the training images "
            f"{fit.cv_accuracy:.1%} ± {fit.cv_se or 0:.1%}"
        )
    if tiny_validation:
        average = f"{per_class:.1f}".removesuffix(".0")  # "1 image", "2.5 images", not "1.0 images"
        summary += (
            f" (the validation split has only {average} image{'' if average == '1' else 's'} per class: trust the "
            "cross-validated figure more)"
        )
    yield Message(summary)
    # Stage 2 starts from a second head (below); a quick run has no stage 2, and its model is this one even
    # where no best.pt is written (no validation split).
    taps = None if s.config.quick else getattr(s.model, "tapped_columns", None)
    anchor = () if taps else (ckpt.PROBE,)  # stage 2's starting point and WiSE-FT's anchor
    extra = None
    if tiny_validation:
        if anchor:  # the anchor stays the head that never saw the validation images stage 2 is judged on
            s.save(0, best=False, schedule_state=s.schedule.state_dict(), rng=ckpt.capture_rng_state(), also=anchor)
            anchor = ()
        extra = {ckpt.HELD_OUT_HEAD: {"weight": fit.weight.clone(), "bias": fit.bias.clone()}}
        yield Message(_refit_on_all_labelled(head, fit, embedded, data))
    path = s.save(
        0, best=val_acc is not None, schedule_state=s.schedule.state_dict(), rng=ckpt.capture_rng_state(),
        also=anchor, extra=extra,
    )  # fmt: skip
    if taps:
        yield from _start_fine_tuning_from_last_layer(s, fit.l2, embedded, taps)
    yield CheckpointSaved(str(path), 0, best=val_acc is not None)
    return True


def _refit_on_all_labelled(
    head: torch.nn.Linear,
    fit: ProbeFit,
    embedded: dict[str, tuple[torch.Tensor, torch.Tensor | None]],
    data: PreparedData,
) -> str:
    """With a validation split of a few images per class, the instant model's head is fitted once more on the
    training and validation images together, with the penalty cross-validation chose: those images teach it
    more than their figure tells (Fashion-MNIST, 20 images per class, the 2 per class held out included:
    +0.7 points on 2,000 test images, 3 draws). Its figures stay the held-out head's and the cross-validated
    one; that head is kept in the checkpoint (HELD_OUT_HEAD) for calibration and the out-of-domain check."""
    (train_x, train_flipped), (val_x, val_flipped) = embedded["train"], embedded["val"]
    mirrored = None if train_flipped is None or val_flipped is None else torch.cat([train_flipped, val_flipped])
    everything = fit_linear_probe(
        torch.cat([train_x, val_x]), torch.cat([data.train.labels, data.val.labels]), len(data.classes),
        mirrored=mirrored, l2_grid=(fit.l2,),
    )  # fmt: skip
    _write_head(head, everything.weight, everything.bias)
    images = len(data.train.labels) + len(data.val.labels)
    return (
        f"stage 1's head then refitted on the training and validation images together ({images:,} images): "
        "with so few validation images, holding them out costs the model more than their figure tells; the "
        "figures above are the held-out head's, and this model's own figures on the validation images are "
        "optimistic"
    )


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """An exact fraction of the images, as evaluate_batches counts them (so equal scores tie exactly)."""
    return (logits.argmax(1) == labels).sum().item() / len(labels)


def _write_head(head: torch.nn.Linear, weight: torch.Tensor, bias: torch.Tensor) -> None:
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(bias.to(head.bias.dtype))


def start_fine_tuning_after_quick(
    s: Session, should_stop: Callable[[], bool] | None = None
) -> Generator[Event, None, None]:
    """A quick run continued (the app's Continue training, `train --resume RUN --epochs N`): fine-tuning starts
    where it would have in a run without "quick" — for a tapped head, from a head on the last layer's
    features, fitted on the cached embeddings (seconds) — and stage 1's model stays the one to beat."""
    taps = getattr(s.model, "tapped_columns", None)
    if not taps:  # stage 2 starts from stage 1's own head, saved as probe.pt when the quick run ended
        return
    yield Message("continuing a quick run: stage 2 fine-tunes from stage 1's features")
    embedded = yield from _embed_splits(s, should_stop)
    stage_1 = next((h for h in s.history if h.get("stage") == STAGE), {})
    yield from _start_fine_tuning_from_last_layer(s, stage_1.get(L2), embedded, taps)


def _start_fine_tuning_from_last_layer(
    s: Session, l2: float | None, embedded: dict[str, tuple[torch.Tensor, torch.Tensor | None]], taps: slice
) -> Generator[Event, None, None]:
    """Stage 2's starting point when the head reads taps: a head on the last layer's features alone, the
    taps' columns zero. Fine-tuning through the taps did worse than this (efficientnet_lite.py), and
    with those columns at zero no gradient reaches the early blocks through them. Saved as last.pt (what
    a resumed run continues from) and probe.pt (the WiSE-FT anchor); best.pt keeps the tapped head."""
    _, head = linear_head(s.model)
    train_x, train_flipped = embedded["train"]
    last_layer = slice(0, taps.start)
    plain = fit_linear_probe(
        train_x[:, last_layer], s.data.train.labels, len(s.data.classes),
        mirrored=None if train_flipped is None else train_flipped[:, last_layer], seed=s.config.seed,
        # the penalty stage 1's cross-validation chose (a second search costs seconds; runs from before it
        # was recorded search again)
        **({"l2_grid": (l2,)} if l2 else {}),
    )  # fmt: skip
    weight = torch.zeros(head.weight.shape)
    weight[:, last_layer] = plain.weight
    _write_head(head, weight, plain.bias)
    if "val" in embedded:
        val_x, val_flipped = embedded["val"]
        logits = plain.logits(val_x[:, last_layer], None if val_flipped is None else val_flipped[:, last_layer])
        figure = f"{_accuracy(logits, s.data.val.labels):.1%} on validation"
    else:
        figure = f"{plain.train_accuracy:.1%} on the training images"
    yield Message(
        f"stage 2 starts from a head on the last layer's features alone ({figure}): fine-tuning through "
        "the earlier blocks' features distorts them; the run keeps stage 1's head if it stays ahead"
    )
    s.save(0, best=False, schedule_state=s.schedule.state_dict(), rng=ckpt.capture_rng_state(), also=(ckpt.PROBE,))


SIGN_TEST_LEVEL = 0.05  # fine-tuning replaces stage 1 only when its gain would arise by chance less often


def fine_tuning_replaces_stage1(
    stage1_acc: float | None,
    tuned_acc: float,
    images: int,
    stage1_hits: str | None = None,
    tuned_hits: torch.Tensor | None = None,
) -> tuple[bool, str]:
    """Which model a two-stage run keeps, and why in a sentence: the simpler one, stage 1's frozen network,
    unless fine-tuning is clearly better on the validation images.

    With both models' per-image results on the same images (`stage1_hits`, "1"/"0" per image; `tuned_hits`)
    "clearly" is a paired test: among the images exactly one of them gets right, fine-tuning must win so
    many that a coin would do it less than 5% of the time (one-sided sign test, as McNemar's test is for
    comparing two classifiers on one test set; Dietterich 1998). Measured (benchmarks/few_shot.py, Fashion-
    MNIST, K = 5 to 100 images per class): the three runs that kept fine-tuning under the earlier unpaired
    rule (a tie on 10 images; 84% against 82% and 90% against 82% of 50) lost 6.3, 0.9 and 2.0 points on test.
    Without them (a run resumed from an older checkpoint), one standard error of stage 1's figure (Breiman
    et al. 1984; glmnet's lambda.1se) is the margin."""
    if stage1_acc is None:
        return True, ""
    figures = f"fine-tuning scored {tuned_acc:.1%} on validation against stage 1's {stage1_acc:.1%} ({images} images"
    if stage1_hits is not None and tuned_hits is not None and len(stage1_hits) == len(tuned_hits) > 0:
        before = torch.tensor([c == "1" for c in stage1_hits])
        gained, lost = int((tuned_hits & ~before).sum()), int((before & ~tuned_hits).sum())
        chance = _one_sided_sign_test(gained, lost)
        figures += (
            f"; of those, fine-tuning is right on {gained} that stage 1 gets wrong and wrong on {lost} that it gets "
            f"right: a coin would do as well {chance:.0%} of the time)"
        )
        better = chance < SIGN_TEST_LEVEL
        rule = f"the simpler model is kept unless that chance is below {SIGN_TEST_LEVEL:.0%}"
    else:
        margin = math.sqrt(stage1_acc * (1 - stage1_acc) / max(images, 1))
        figures += f", one standard error {margin:.1%})"
        better = tuned_acc > stage1_acc + margin
        rule = "the simpler model is kept unless the other beats it by more than one standard error"
    if better:
        return True, f"the run keeps the fine-tuned network: {figures}"
    return (
        False,
        f"the run keeps stage 1's instant model: {figures}, so fine-tuning is not clearly better ({rule})",
    )


def _one_sided_sign_test(gained: int, lost: int) -> float:
    """The chance of `gained` or more wins out of `gained + lost` fair coin tosses (1 when there are none)."""
    tosses = gained + lost
    return sum(math.comb(tosses, k) for k in range(gained, tosses + 1)) / 2**tosses


def keep_taps_out_of_fine_tuning(model: torch.nn.Module) -> None:
    """During stage 2, the head's tap columns get no gradient, so they stay at the zero stage 1 left them
    at (weight decay keeps a zero at zero) and the taps pass no gradient to the blocks they read."""
    taps = getattr(model, "tapped_columns", None)
    if taps is None:
        return
    _, head = linear_head(model)
    mask = torch.ones_like(head.weight)
    mask[:, taps] = 0
    head.weight.register_hook(lambda grad: grad * mask.to(grad.device, grad.dtype))


def _embed_splits(
    s: Session, should_stop: Callable[[], bool] | None
) -> Generator[Event, None, dict[str, tuple[torch.Tensor, torch.Tensor | None]]]:
    """The frozen network's features of the training and validation images (and their mirrors', when the run
    uses flips), from the embedding cache where it has them; says how many had to be computed."""
    config, data = s.config, s.data
    started = time.perf_counter()
    folder = embeddings_folder()
    embedder = Embedder(
        s.model, model_name=config.model, size=config.img_size, channels=config.channels,
        device=s.device, cache_dir=folder, model_args=config.model_args,
    )  # fmt: skip
    store = EmbeddingStore(folder, embedder.key)
    if store.rebuilt_reason:
        yield Message(store.rebuilt_reason, "warning")
    mean = torch.tensor(data.preprocessing.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.preprocessing.std).view(1, -1, 1, 1)

    def normalize(images: torch.Tensor) -> torch.Tensor:
        return (images.float().div(255) - mean) / std

    mirrored = bool(config.augment and config.augment.flip)
    splits = [("train", data.train)] + (
        [("val", data.val)] if data.val is not None and len(data.val.labels) else []
    )
    views = 2 if mirrored else 1  # progress counts images; each goes through as itself and its mirror
    total = sum(len(split.labels) for _, split in splits)
    done = [0]
    embedded: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    computed = 0
    for name, split in splits:

        def work(report, split=split):
            def progress(n: int) -> None:
                done[0] += n
                report(done[0] // views, total)

            return store.lookup(
                split.paths, split.images, embedder, normalize, mirrored=mirrored,
                progress=progress, should_stop=should_stop,
            )  # fmt: skip

        features, flipped, fresh = yield from with_progress(work, lambda d, t: DataProgress("embed", d, t))
        embedded[name] = (features, flipped)
        computed += fresh
    yield Message(
        f"stage 1: {computed:,} image(s) embedded with {config.model} at {config.img_size}px "
        f"({embedder.backend}, {time.perf_counter() - started:.1f} s), {total - computed:,} reused from the "
        "embedding cache"
    )
    return embedded
