"""Suspected label errors: the workbench's review against the plain frozen-features recipe, on the same PNG
folders with images planted in the wrong class, in one run.

    .venv/bin/python benchmarks/label_errors.py                  # 50 images per class, 10% moved, 3 seeds
    .venv/bin/python benchmarks/label_errors.py --seeds 1        # a smoke run

For each seed, 50 Fashion-MNIST training images per class are drawn (numpy default_rng(seed)) and written as
PNG class folders; 10% of them (50) are written into a random *other* class's folder. The ranking's quality
is the recall of the moved images among the N lowest-ranked (N = the number moved).

1. reference: the recipe a notebook would use, written out here (the workbench's model zoo only builds the
   same pretrained network). EfficientNet-Lite0's ImageNet body (head replaced by an identity, eval mode, eager PyTorch fp32) at 128 px (images resized with
   F.interpolate, gray ImageNet statistics), each image once; multinomial logistic regression on standardized
   features by full-batch L-BFGS with the L2 penalty picked by 5-fold cross-validated accuracy
   (1e-4 … 1e-1), then each image's out-of-fold probability of its folder's class; lowest first. Time:
   features + folds.
2. workbench: `workbench data review` as a user runs it (`embed_dataset` → `out_of_fold_probabilities` →
   `rank_label_issues`): scan + decode of the PNG folder, the size chosen by the pretrained-input rule,
   onnxruntime embeddings of each image and its mirror (cache empty: every run embeds afresh), L2 = 1,
   per-class normalized self-confidence. Time: the whole call, cold.

Results: benchmarks/results/label_errors.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="workbench-label-errors-"))
os.environ["WORKBENCH_HOME"] = str(WORK / "home")  # before importing workbench

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from workbench.engine.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PER_CLASS = 50
MOVED_FRACTION = 0.1
REFERENCE_SIZE = 128
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def write_folder(seed: int, images: np.ndarray, labels: np.ndarray, root: Path) -> list[str]:
    """PNG class folders with 10% of the images in a wrong class's folder; returns the moved files' paths."""
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(np.nonzero(labels == c)[0], PER_CLASS, replace=False) for c in range(10)])
    moved = set(rng.choice(len(chosen), int(MOVED_FRACTION * len(chosen)), replace=False).tolist())
    planted = []
    for row, i in enumerate(chosen):
        folder = int(labels[i])
        if row in moved:
            folder = int(rng.choice([c for c in range(10) if c != labels[i]]))
        path = root / FASHION_MNIST_CLASSES[folder] / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(path)
        if row in moved:
            planted.append(str(path))
    return planted


def recall(ranked_paths: list[str], planted: list[str]) -> float:
    return len(set(ranked_paths[: len(planted)]) & set(planted)) / len(planted)


# ---- 1. the reference, written out plainly ------------------------------------------------------------------
def reference(root: Path) -> tuple[list[str], float]:
    from workbench.engine.models import build_model  # only to get the same pretrained body as the workbench

    started = time.perf_counter()
    paths = sorted(str(p) for p in root.rglob("*.png"))
    classes = sorted({Path(p).parent.name for p in paths})
    labels = torch.tensor([classes.index(Path(p).parent.name) for p in paths])
    pixels = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("L"))) for p in paths])[:, None].float()
    model = build_model("efficientnet_lite0", 10, 1, pretrained=True)
    model._fc = torch.nn.Identity()  # its classifier: the body outputs the 1280 pooled features
    model.eval()
    x = F.interpolate(pixels / 255, size=(REFERENCE_SIZE, REFERENCE_SIZE), mode="bilinear", align_corners=False)
    x = (x - 0.449) / 0.226
    with torch.inference_mode():
        features = torch.cat([model(x[i : i + 32]) for i in range(0, len(x), 32)])
    folds = torch.arange(len(labels)) % 5
    folds = folds[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]

    def fit(xs: torch.Tensor, ys: torch.Tensor, l2: float):
        mu, sd = xs.mean(0), xs.std(0).clamp_min(1e-6)
        w = torch.zeros(xs.shape[1], 10, requires_grad=True)
        b = torch.zeros(10, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=100, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(((xs - mu) / sd) @ w + b, ys) + l2 * w.pow(2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return lambda f: (((f - mu) / sd) @ w + b).detach()

    def out_of_fold(l2: float) -> torch.Tensor:
        probabilities = torch.zeros(len(labels), 10)
        for k in range(5):
            head = fit(features[folds != k], labels[folds != k], l2)
            probabilities[folds == k] = head(features[folds == k]).softmax(1)
        return probabilities

    by_l2 = {l2: out_of_fold(l2) for l2 in L2_GRID}
    best = max(L2_GRID, key=lambda l2: (by_l2[l2].argmax(1) == labels).float().mean().item())
    own = by_l2[best].gather(1, labels[:, None]).squeeze(1)
    ranked = [paths[i] for i in torch.argsort(own).tolist()]
    return ranked, time.perf_counter() - started


# ---- 2. the workbench, as `workbench data review` runs it ---------------------------------------------------
def workbench(root: Path) -> tuple[list[str], float, int]:
    from workbench.engine.review import embed_dataset, out_of_fold_probabilities, rank_label_issues

    started = time.perf_counter()
    embedded = embed_dataset(str(root))
    probabilities = out_of_fold_probabilities(
        embedded.features, embedded.labels, len(embedded.classes), mirrored=embedded.mirrored
    )
    issues = rank_label_issues(probabilities, embedded.labels)
    return [embedded.paths[i.index] for i in issues], time.perf_counter() - started, embedded.size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    images, labels = load_fashion_mnist()["train"]
    rows = []
    try:
        for seed in range(args.seeds):
            root = WORK / f"seed{seed}"
            planted = write_folder(seed, images, labels, root)
            shutil.rmtree(WORK / "home", ignore_errors=True)  # cold: no cached decodes or embeddings
            ref_ranked, ref_s = reference(root)
            wb_ranked, wb_s, size = workbench(root)
            rows.append({
                "seed": seed, "images": 10 * PER_CLASS, "moved": len(planted),
                "reference_recall": round(recall(ref_ranked, planted), 3), "reference_s": round(ref_s, 1),
                "workbench_recall": round(recall(wb_ranked, planted), 3), "workbench_s": round(wb_s, 1),
                "workbench_size": size,
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    mean = {k: round(float(np.mean([r[k] for r in rows])), 3 if k.endswith("recall") else 1)
            for k in rows[0] if k.endswith(("recall", "_s"))}
    result = {"per_seed": rows, "mean": mean, "target_recall": 0.85, "target_seconds": 30}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "label_errors.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "| seed | moved | reference recall | reference s | workbench recall | workbench s (size) |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['seed']} | {r['moved']} of {r['images']} | {r['reference_recall']:.0%} | {r['reference_s']} | "
            f"{r['workbench_recall']:.0%} | {r['workbench_s']} ({r['workbench_size']} px) |"
            for r in rows
        ),
        f"| mean | | {mean['reference_recall']:.1%} | {mean['reference_s']} | {mean['workbench_recall']:.1%} | "
        f"{mean['workbench_s']} |",
    ]
    (RESULTS / "label_errors.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
