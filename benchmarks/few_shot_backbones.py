"""Which offline backbone for a few folders: EfficientNet-Lite0, -Lite1 and -Lite2 as stage 1 uses them.

    .venv/bin/python benchmarks/few_shot_backbones.py                          # 3 draws, 5,000 test images
    .venv/bin/python benchmarks/few_shot_backbones.py --draws 1 --test-images 300   # a smoke run

The default model for few images (engine/training/defaults.py, OFFLINE_BACKBONES) is the Lite variant
whose frozen features classify best; this measures that, all variants in one run, on the same images:
Fashion-MNIST, 20 random training images per class (numpy default_rng(draw), as benchmarks/few_shot.py
draws them), judged on a fixed random subset of the 10,000 test images.

Every image is upscaled from 28 px with PIL (bilinear), as the workbench decodes a small PNG for a
pretrained network, and embedded once (and its mirror) by the engine's Embedder with each variant's
stage-1 taps. Columns, per variant:
1. reference: the peers' recipe, written plainly here: the last layer's 1,280 features, logistic
   regression by L-BFGS on standardized features, L2 chosen on a held-out 20%, judged without mirrors.
2. stage 1: the engine's fit_linear_probe on the tapped features with mirrors (cross-validated L2),
   judged on each test image and its mirror, as the workbench's instant model is.
3. embedding rate (images/s) of the test images, and the mean time of stage 1's head fit.

Results: benchmarks/results/few_shot_backbones.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from workbench.engine.data.fashion_mnist import load_fashion_mnist
from workbench.engine.features import Embedder
from workbench.engine.models import build_model, get_spec
from workbench.engine.models.efficientnet_lite import VARIANTS, offline_weights_installed
from workbench.engine.training.linear_probe import fit_linear_probe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import few_shot  # noqa: E402  (its draws, reference fit and L2 grid: the same recipe in both benchmarks)
from few_shot import GRAY_IMAGENET_MEAN, GRAY_IMAGENET_STD, draw, held_out_logistic  # noqa: E402

shutil.rmtree(few_shot.WORK, ignore_errors=True)  # the folder few_shot makes on import: not used here

RESULTS = Path(__file__).resolve().parent / "results"
CLASSES, K, LAST_LAYER = 10, 20, 1280
TEST_SUBSET_SEED = 12345


def upscaled(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, 28, 28) → uint8 (N, 1, size, size), PIL bilinear."""
    big = [np.asarray(Image.fromarray(a).resize((size, size), Image.BILINEAR)) for a in images]
    return torch.from_numpy(np.stack(big))[:, None]


def normalize(u: torch.Tensor) -> torch.Tensor:
    return (u.float() / 255 - GRAY_IMAGENET_MEAN) / GRAY_IMAGENET_STD


def reference_accuracy(x: torch.Tensor, y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor, seed: int) -> float:
    """The peers' recipe on last-layer features (few_shot.py's): held-out L2, one look at each test image."""
    classify, _l2, _held_out = held_out_logistic(x, y, seed)
    return (classify(test_x).argmax(1) == test_y).float().mean().item()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--test-images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=224, help="input side for every variant")
    args = parser.parse_args()

    fm = load_fashion_mnist()
    (train_x, train_y), (test_x, test_y) = fm["train"], fm["test"]
    pick = np.sort(np.random.default_rng(TEST_SUBSET_SEED).choice(len(test_y), args.test_images, replace=False))
    truth = torch.from_numpy(test_y[pick]).long()
    draws = {seed: draw(train_y, K, seed) for seed in range(args.draws)}
    rows = np.unique(np.concatenate(list(draws.values())))
    row_of = {int(i): n for n, i in enumerate(rows)}
    test_images, train_images = upscaled(test_x[pick], args.size), upscaled(train_x[rows], args.size)

    result: dict = {"size": args.size, "test_images": args.test_images, "k": K, "variants": {}}
    with tempfile.TemporaryDirectory(prefix="workbench-backbones-") as onnx_dir:
        for variant in VARIANTS:
            name = f"efficientnet_lite{variant}"
            if not offline_weights_installed(variant):
                print(f"{name}: weights not installed, skipped", flush=True)
                continue
            probe_args = get_spec(name).probe_args
            model = build_model(name, CLASSES, 1, pretrained=True, **probe_args)
            embedder = Embedder(
                model, model_name=name, size=args.size, channels=1, device=torch.device("cpu"),
                cache_dir=Path(onnx_dir), model_args=probe_args,
            )  # fmt: skip
            started = time.perf_counter()
            test_f = embedder.embed(test_images, normalize)
            rate = len(test_images) / (time.perf_counter() - started)
            test_m = embedder.embed(test_images, normalize, mirrored=True)
            train_f = embedder.embed(train_images, normalize)
            train_m = embedder.embed(train_images, normalize, mirrored=True)
            per_draw, fit_seconds = [], []
            for seed, indices in draws.items():
                at = torch.tensor([row_of[int(i)] for i in indices])
                y = torch.from_numpy(train_y[indices]).long()
                ref = reference_accuracy(train_f[at, :LAST_LAYER], y, test_f[:, :LAST_LAYER], truth, seed)
                started = time.perf_counter()
                probe = fit_linear_probe(train_f[at], y, CLASSES, mirrored=train_m[at])
                fit_seconds.append(time.perf_counter() - started)
                stage1 = (probe.logits(test_f, test_m).argmax(1) == truth).float().mean().item()
                per_draw.append({"draw": seed, "reference": ref, "stage1": stage1})
                print(f"{name} draw {seed}: reference {100 * ref:.2f}%, stage 1 {100 * stage1:.2f}%", flush=True)
            result["variants"][name] = {
                "imagenet_top1": VARIANTS[variant].top1,
                "draws": per_draw,
                "reference": float(np.mean([d["reference"] for d in per_draw])),
                "stage1": float(np.mean([d["stage1"] for d in per_draw])),
                "embed_images_per_s": rate,
                "fit_s": float(np.mean(fit_seconds)),
            }

    lines = [
        f"Fashion-MNIST, {K} training images per class, {args.draws} draws, {args.test_images:,} test images, "
        f"{args.size} px, stage-1 features (taps, mirrors) of each offline backbone:",
        "",
        "| backbone | ImageNet top-1 | reference (last layer, held-out L2) | stage 1 (taps + mirrors) | "
        "embedding images/s | head fit |",
        "|---|---|---|---|---|---|",
    ]
    for name, v in result["variants"].items():
        lines.append(
            f"| {name} | {v['imagenet_top1']:.1f}% | {100 * v['reference']:.1f}% | {100 * v['stage1']:.1f}% | "
            f"{v['embed_images_per_s']:.0f} | {v['fit_s']:.1f} s |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "few_shot_backbones.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "few_shot_backbones.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
