"""Fine-tuning on a few folders: Fashion-MNIST with K training images per class, the workbench's new
defaults against the peers' recipe and the old default, on the same PNG folders, in one run.

    .venv/bin/python benchmarks/few_shot.py                     # K = 5 10 20 50 100, 3 seeds, 10k test images
    .venv/bin/python benchmarks/few_shot.py --quick             # K = 20, 1 seed, 1,000 test images
    .venv/bin/python benchmarks/few_shot.py --k 5 --seeds 1 --test-images 300   # a smoke run
    .venv/bin/python benchmarks/few_shot.py --throughput-only   # embedding throughput alone

For each K and seed, K images per class are drawn from the 60k training set (numpy default_rng(seed)) and
written as PNG class folders, DATA/train/<class>/, the folder the workbench trains on (it keeps 10% for
validation, val_split's default); TEST/test/<class>/ (all 10k test images, or a fixed random --test-images
subset) is written once and stays the same files for every draw, so the workbench's caches work as they
would for a user: the decoded-image cache keeps the test images across draws, the embedding cache (keyed by
file path + size + mtime) hands run (3)'s vectors of the training images to run (4).
WORKBENCH_HOME is a temporary folder kept for the whole benchmark: nothing touches the user's folders.

Each checkpoint a run keeps is judged on TEST as `workbench eval` judges it (few_shot_judge.py): the
engine's predict_folder, flip-averaged where the run trained with flips. Stage 1's instant models at one
input size share their whole network but the head, so the network's outputs on the test images are
computed once, while the first of them is judged, and each later one is judged by its own head on them
(checked weight by weight first). That makes the full protocol (K = 5–100, 3 seeds, 10k test images) a run
of about an hour on a 2-core CPU instead of many; a fine-tuned network is judged in full (~7 min at 224 px).
The bundled sample (resources/sample-data/fashion-mnist-mini: 400 training, 100 test images) gets one row:
the workbench trains on the sample folder as a user would and judges its test split itself.

Columns (mean ± std over seeds):
1. reference: the peers' recipe written out here, no workbench training code. EfficientNet-Lite0's
   ImageNet body (head replaced by an identity, eval mode) at the input size the workbench chose for that
   draw; images resized with F.interpolate (bilinear), normalized with gray ImageNet statistics; each
   training image's features computed once; multinomial logistic regression on standardized features by
   full-batch L-BFGS (strong Wolfe), L2 chosen on a held-out 20% of the training images, then refitted
   on all of them. Judged on each test image once (no mirror). Its time: training features + fit.
2. old default: compact_vgg from scratch at 28 px (`model="compact_vgg", pretrained=False`).
3. new stage 1: `TrainConfig(quick=True)`, the new default policy stopped after the instant model.
4. new final: `TrainConfig()` defaults, stage 1 then fine-tuning; run after (3), so stage 1's embeddings
   of the training images come from the cache (3) filled. Fine-tuning ends with the midpoint of stage 1's
   and the fine-tuned weights (WiSE-FT); the run keeps stage 1's head instead unless fine-tuning is clearly
   better on validation (counted in the table).
The workbench's models are judged on each image and its mirror (its default when training used flips).
Their times run from the call to RunFinished: scan, decode, model, training; the test images are judged
after (judge s in the JSON).
5. embedding throughput: the engine's Embedder against a plain onnxruntime session of the same body
   (exported here) and eager PyTorch fp32, images/s, the best of 3 rounds taken in turns
   (few_shot_throughput.py).

Results: benchmarks/results/few_shot.{json,md}, read by run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="workbench-few-shot-"))
os.environ["WORKBENCH_HOME"] = str(WORK / "home")  # before importing workbench; kept for the whole run

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from workbench.engine.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist  # noqa: E402
from workbench.engine.models import build_model  # noqa: E402
from workbench.engine.training.checkpoint import load_checkpoint  # noqa: E402
from workbench.engine.training.config import TrainConfig  # noqa: E402
from workbench.engine.training.events import (  # noqa: E402
    CheckpointSaved,
    EpochEnded,
    Message,
    RunFinished,
    RunStarted,
)
from workbench.engine.training.trainer import Trainer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from few_shot_judge import TestJudge  # noqa: E402
from few_shot_throughput import throughput, throughput_markdown  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "resources" / "sample-data" / "fashion-mnist-mini"
MODEL = "efficientnet_lite0"
GRAY_IMAGENET_MEAN, GRAY_IMAGENET_STD = 0.449, 0.226  # ImageNet's RGB statistics averaged for gray images
CLASSES = len(FASHION_MNIST_CLASSES)
K_VALUES = (5, 10, 20, 50, 100)
TEST_SUBSET_SEED = 12345  # the --test-images subset: the same for every draw and every run
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # reference: penalty on standardized features (mean loss + λ·|W|²)
HELD_OUT = 0.2  # reference: share of each class's training images that chooses L2
LBFGS_ITERATIONS = 100  # reference: scikit-learn's default for lbfgs, and the engine's
FEATURE_BATCH = 32  # reference and the plain baselines of the throughput test


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


# --- data: PNG class folders ---------------------------------------------------------------------------


def write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> None:
    """DATA/<split>/<class>/<index in the IDX file>.png for each of `indices`."""
    for name in FASHION_MNIST_CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in indices:
        Image.fromarray(images[i]).save(folder / FASHION_MNIST_CLASSES[labels[i]] / f"{i:05d}.png")


def draw(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """K random training images of each class (their indices), with default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return np.sort(
        np.concatenate([rng.choice(np.flatnonzero(labels == c), k, replace=False) for c in range(CLASSES)])
    )


# --- the workbench's runs --------------------------------------------------------------------------------


def run_workbench(data: Path, **options) -> dict:
    """One `Trainer(TrainConfig(data=DATA, test_split=0, **options))` run, timed from the call to each event.

    seconds: start → RunFinished (scan, decode, model, stage 1 / training; test evaluation only where DATA
    has a test split of its own: the bundled sample; the draws' checkpoints are judged afterwards);
    setup_s: start → RunStarted (scan, decode of every split, building the model);
    first_model_s: RunStarted → stage 1's checkpoint (embedding train + val images, fitting the head, saving),
    of which embedded_s: RunStarted → the embeddings are ready (incl. the body's ONNX export on a cold cache);
    kept_epoch: the epoch of the checkpoint RunFinished names (0 = stage 1's head, kept over fine-tuning).
    """
    result: dict = {"status": "failed", "reason": "the run yielded no RunFinished", "size": None}
    started = time.perf_counter()
    try:
        for event in Trainer(TrainConfig(data=str(data), test_split=0, **options)).run():
            now = time.perf_counter() - started
            if isinstance(event, RunStarted):
                result.update(model=event.model, train_images=event.train_images, val_images=event.val_images)
                result.update(test_images=event.test_images, epochs=event.epochs, setup_s=round(now, 2))
                sizes = [int(m.group(1)) for n in event.notes if (m := re.match(r"image size (\d+)", n))]
                result["size"] = sizes[0] if sizes else None
                run_started = now
            elif isinstance(event, CheckpointSaved) and event.epoch == 0 and "first_model_s" not in result:
                result["first_model_s"] = round(now - run_started, 2)
            elif isinstance(event, EpochEnded):
                result.setdefault("val_acc_by_epoch", {})[event.epoch] = event.val_acc
            elif isinstance(event, Message) and event.text.startswith("stage 1: "):
                result["stage1_message"] = event.text
                result["embedded_s"] = round(now - run_started, 2)
            elif isinstance(event, RunFinished):
                result.update(status=event.status, reason=event.reason, test_accuracy=event.test_accuracy)
                result.update(val_accuracy=event.val_accuracy, checkpoint=event.checkpoint)
                result["seconds"] = round(now, 2)
    except Exception as exc:  # the engine should turn every error into RunFinished("failed"); note it if not
        result["reason"] = f"raised {type(exc).__name__}: {exc}"
    if result.get("checkpoint"):  # the model the run kept: which epoch (0 = stage 1's head), at what size
        try:
            kept = load_checkpoint(result["checkpoint"])
            result["kept_epoch"] = kept["epoch"]
            result["size"] = result["size"] or int(kept["preprocessing"]["size"])
        except Exception as exc:
            result["checkpoint_error"] = f"{type(exc).__name__}: {exc}"
    if result["status"] != "finished":
        print(f"    run failed: {result['reason']}", flush=True)
    return result


def workbench_columns(data: Path, judge: TestJudge | None) -> dict:
    """The old default, stage 1 and the final model on `data`, each judged by `judge` on its test folder
    (None: the run judges the test split of `data` itself)."""
    row: dict = {}
    for name, options in (
        ("old_default", {"model": "compact_vgg", "pretrained": False, "linear_probe": False}),
        ("stage1", {"quick": True}),
        ("final", {}),
    ):
        row[name] = run_workbench(data, **options)
        if judge is not None and row[name]["status"] == "finished":
            row[name].update(judge(row[name]["checkpoint"]))
    return row


def print_row(row: dict) -> None:
    print(
        "    "
        + ", ".join(
            f"{name} {100 * row[name]['test_accuracy']:.1f}% ({row[name].get('seconds', 0):.0f} s"
            + (f", judged in {row[name]['judge_s']:.0f} s" if "judge_s" in row[name] else "")
            + ")"
            if row[name].get("test_accuracy") is not None
            else f"{name} failed"
            for name in ("reference", "old_default", "stage1", "final")
        ),
        flush=True,
    )


def read_split(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A split of class folders as (uint8 images (N, H, W), labels by sorted folder name), for the reference."""
    images, labels = [], []
    for label, class_dir in enumerate(sorted(p for p in folder.iterdir() if p.is_dir())):
        for file in sorted(class_dir.iterdir()):
            images.append(np.asarray(Image.open(file).convert("L")))
            labels.append(label)
    return np.stack(images), np.array(labels)


# --- the reference: the peers' recipe, plainly -----------------------------------------------------------


def gray_imagenet_body() -> torch.nn.Module:
    body = build_model(MODEL, CLASSES, 1, pretrained=True)
    body._fc = torch.nn.Identity()
    return body.eval()


def to_inputs(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, 28, 28) → normalized float (N, 1, size, size)."""
    x = F.interpolate(
        images.float().div(255).unsqueeze(1), size=(size, size), mode="bilinear", align_corners=False
    )
    return (x - GRAY_IMAGENET_MEAN) / GRAY_IMAGENET_STD


def features(body: torch.nn.Module, images: np.ndarray, size: int) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), FEATURE_BATCH):
            out.append(body(to_inputs(torch.from_numpy(images[start : start + FEATURE_BATCH]), size)))
    return torch.cat(out)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by full-batch L-BFGS: (W (D, C), b (C,))."""
    w = torch.zeros(x.shape[1], CLASSES, requires_grad=True)
    b = torch.zeros(CLASSES, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [w, b], lr=1, max_iter=LBFGS_ITERATIONS, tolerance_grad=1e-7, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return w.detach(), b.detach()


def reference(
    body: torch.nn.Module,
    train: tuple[np.ndarray, np.ndarray],
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    size: int,
    seed: int,
) -> dict:
    """Features of the training images, L2 on a held-out 20%, refit on all, test accuracy."""
    started = time.perf_counter()
    x, y = features(body, train[0], size), torch.from_numpy(train[1]).long()
    feature_s = time.perf_counter() - started
    classify, best, held_out_accuracy = held_out_logistic(x, y, seed)
    seconds = time.perf_counter() - started
    accuracy = (classify(test_x).argmax(1) == test_y).float().mean().item()
    return {
        "status": "finished",
        "test_accuracy": accuracy,
        "seconds": round(seconds, 2),
        "feature_s": round(feature_s, 2),
        "l2": best,
        "held_out_accuracy": held_out_accuracy,
    }


def held_out_logistic(x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple:
    """L2 chosen on a held-out 20% of each class's features, then refitted on all of them.
    Returns (logits of raw features, the L2, its held-out accuracy)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for c in range(CLASSES):
        members = np.flatnonzero(y.numpy() == c)
        held[rng.choice(members, max(1, round(HELD_OUT * len(members))), replace=False)] = True
    fit, val = torch.from_numpy(~held), torch.from_numpy(held)
    mean, std = x[fit].mean(0), x[fit].std(0, unbiased=False).clamp_min(1e-6)
    held_out_acc = {}
    for l2 in L2_GRID:
        w, b = fit_logistic((x[fit] - mean) / std, y[fit], l2)
        held_out_acc[l2] = (((x[val] - mean) / std @ w + b).argmax(1) == y[val]).float().mean().item()
    best = max(L2_GRID, key=lambda l2: (held_out_acc[l2], l2))  # ties: the stronger penalty
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    w, b = fit_logistic((x - mean) / std, y, best)
    return (lambda features: (features - mean) / std @ w + b), best, held_out_acc[best]


# --- summary -----------------------------------------------------------------------------------------------


def mean_std(values: list[float | None]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def pct(s: dict) -> str:
    if s["mean"] is None:
        return "failed"
    return f"{100 * s['mean']:.1f}" + (f" ± {100 * s['std']:.1f}" if s["std"] is not None else "")


def secs(s: dict) -> str:
    if s["mean"] is None:
        return "—"
    return f"{s['mean']:.1f}" + (f" ± {s['std']:.1f}" if s["std"] is not None else "")


def summarize(draws: list[dict]) -> dict:
    summary = {}
    for k in sorted({d["k"] for d in draws}):
        rows = [d for d in draws if d["k"] == k]

        def col(name: str, key: str, rows=rows) -> dict:
            return mean_std([d[name].get(key) if d[name]["status"] == "finished" else None for d in rows])

        summary[str(k)] = {
            "sizes": sorted({d["size"] for d in rows if d["size"]}),
            "reference": col("reference", "test_accuracy"),
            "reference_s": col("reference", "seconds"),
            "old_default": col("old_default", "test_accuracy"),
            "old_default_s": col("old_default", "seconds"),
            "stage1": col("stage1", "test_accuracy"),
            "stage1_first_model_s": col("stage1", "first_model_s"),
            "stage1_embedded_s": col("stage1", "embedded_s"),
            "stage1_s": col("stage1", "seconds"),
            "final": col("final", "test_accuracy"),
            "final_s": col("final", "seconds"),
            "final_kept_stage1": sum(
                d["final"].get("kept_epoch") == 0 for d in rows
            ),  # fine-tuning discarded
            "final_first_model_s": col("final", "first_model_s"),  # its stage 1 again, embeddings cached
            "stage1_plus_final_s": mean_std(
                [
                    d["stage1"]["seconds"] + d["final"]["seconds"]
                    if d["stage1"]["status"] == d["final"]["status"] == "finished"
                    else None
                    for d in rows
                ]
            ),
        }
    return summary


def targets(summary: dict, speed: dict, scope: str) -> list[dict]:
    """Each target as a row for run_all.py's table; `scope` says how many test images and seeds."""
    found = []
    s20 = summary.get("20")
    if s20 and s20["final"]["mean"] is not None and s20["reference"]["mean"] is not None:
        gain = 100 * (s20["final"]["mean"] - s20["reference"]["mean"])
        found.append(
            {
                "what": f"Fashion-MNIST, 20 images per class: new default (final) vs the peers' linear probe ({scope})",
                "result": f"{pct(s20['final'])}% vs {pct(s20['reference'])}% ({gain:+.1f} points)",
                "target": "≥ reference + 3 points",
                "met": gain >= 3,
            }
        )
    gaps = {
        k: 100 * (s["stage1"]["mean"] - s["reference"]["mean"])
        for k, s in summary.items()
        if s["stage1"]["mean"] is not None and s["reference"]["mean"] is not None
    }
    if gaps:
        found.append(
            {
                "what": f"Fashion-MNIST few-shot: new stage 1 (instant model) vs the peers' linear probe ({scope})",
                "result": ", ".join(f"K={k}: {g:+.1f}" for k, g in gaps.items()) + " points",
                "target": "within 1 point (≥ reference − 1)",
                "met": min(gaps.values()) >= -1,
            }
        )
    if s20 and s20["stage1_first_model_s"]["mean"] is not None:
        first = s20["stage1_first_model_s"]
        found.append(
            {
                "what": "time to first model, 200 training images (RunStarted → stage 1 checkpoint: embedding "
                "train + val images and their mirrors, fitting the head; after scan, decode, model load)",
                "result": f"{secs(first)} s",
                "target": "≤ 20 s",
                "met": first["mean"] <= 20,
            }
        )
    for size, t in speed.items():
        found.append(
            {
                "what": f"embedding throughput at {size} px, engine ({t['engine_backend']}) / plain onnxruntime",
                "result": f"{t['engine_images_per_s']} / {t['onnxruntime_images_per_s']} images/s = "
                f"{t['engine_over_onnxruntime']}",
                "target": "≥ 1 (no slower than onnxruntime)",
                "met": t["engine_over_onnxruntime"] >= 1,
            }
        )
    return found


def seconds(run: dict, key: str = "seconds") -> str:
    value = run.get(key)
    return "—" if value is None else f"{value:.1f}"


def kept(s: dict) -> str:
    n = s["final_kept_stage1"]
    return f" (stage 1's head kept in {n}/{s['final']['n']})" if n else ""


def markdown(result: dict) -> str:
    if not result["summary"] and not result.get("sample"):  # --throughput-only
        return throughput_markdown(result, [f"Embedding throughput ({result['machine']})."])
    lines = [
        f"Few-shot Fashion-MNIST ({result['machine']}), {result['test_images']:,} test images; "
        f"accuracy in %, mean ± std over {len(result['seeds'])} seed(s); times in s.",
        "",
        "| K | train images | size | reference | old default | new stage 1 | new final | reference s "
        "| stage 1: first model s | stage 1 s | final s | stage 1 + final s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k, s in result["summary"].items():
        lines.append(
            f"| {k} | {int(k) * CLASSES} | {'/'.join(map(str, s['sizes'])) or '—'} | {pct(s['reference'])} "
            f"| {pct(s['old_default'])} | {pct(s['stage1'])} | {pct(s['final'])}{kept(s)} | {secs(s['reference_s'])} "
            f"| {secs(s['stage1_first_model_s'])} | {secs(s['stage1_s'])} | {secs(s['final_s'])} "
            f"| {secs(s['stage1_plus_final_s'])} |"
        )
    sample = result.get("sample")
    if sample:

        def acc(name: str) -> str:
            value = sample[name].get("test_accuracy")
            return "failed" if value is None else f"{100 * value:.1f}"

        times = [sample[name].get("seconds") for name in ("stage1", "final")]
        both = "—" if None in times else f"{sum(times):.1f}"
        lines.append(
            f"| bundled sample | {sample['stage1'].get('train_images', '—')} + {sample['stage1'].get('val_images', '—')} "
            f"val | {sample['size'] or '—'} | {acc('reference')} | {acc('old_default')} | {acc('stage1')} "
            f"| {acc('final')}{' (stage 1 kept)' if sample['final'].get('kept_epoch') == 0 else ''} "
            f"| {seconds(sample['reference'])} | {seconds(sample['stage1'], 'first_model_s')} "
            f"| {seconds(sample['stage1'])} | {seconds(sample['final'])} | {both} |"
        )
    lines += [
        "",
        "reference s: training-image features + L2 choice + refit. stage 1 s and final s: start → RunFinished "
        "(scan, decode, model, training); final runs after stage 1, with the training images' embeddings "
        "cached; it keeps stage 1's head unless fine-tuning is clearly better on validation. first model s: "
        "RunStarted → stage 1 checkpoint (embedding, fitting, saving; after scan, decode and model load). "
        f"Test images judged as `workbench eval` does, on each image and its mirror ({result.get('judged_in_full', 0)} "
        "checkpoint(s) judged in full by predict_folder, the other stage-1 models by their own head on the "
        "first one's test features: few_shot_judge.py). The bundled sample's runs judge its 100 test images "
        "themselves (their times include that).",
    ]
    failures = [
        f"K={d['k']} seed {d['seed']} {name}: {d[name]['reason']}"
        for d in result["draws"]
        for name in ("reference", "old_default", "stage1", "final")
        if d[name].get("status") != "finished"
    ]
    if failures:
        lines += ["", "Failed runs:", *(f"- {f}" for f in failures)]
    return throughput_markdown(result, lines)


# --- the benchmark -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, nargs="+", default=list(K_VALUES), help="training images per class")
    parser.add_argument("--seeds", type=int, default=3, help="draws per K: seeds 0 … N-1")
    parser.add_argument(
        "--test-images", type=int, default=10_000, help="a fixed random subset of the test set"
    )
    parser.add_argument("--throughput-images", type=int, default=300, help="0 = skip the throughput test")
    parser.add_argument("--throughput-sizes", type=int, nargs="+", default=[128, 224])
    parser.add_argument(
        "--no-sample", dest="sample", action="store_false", help="skip the bundled sample's row"
    )
    parser.add_argument("--quick", action="store_true", help="K = 20, 1 seed, 1,000 test images")
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="only the embedding throughput test, into results/few_shot_throughput.{json,md}",
    )
    parser.add_argument("--keep", action="store_true", help=f"keep the temporary folder ({WORK})")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    try:
        args = parser.parse_args()  # inside: --help and bad options also remove the temporary folder
        if args.quick:
            args.k, args.seeds, args.test_images = [20], 1, 1000
        if args.throughput_only:
            args.k, args.sample, args.test_images = [], False, 0
        started = time.perf_counter()
        fashion = load_fashion_mnist()
        train_images, train_labels = fashion["train"]
        test_images, test_labels = fashion["test"]
        test_pick = np.arange(len(test_labels))
        if args.test_images < len(test_labels):
            test_pick = np.sort(
                np.random.default_rng(TEST_SUBSET_SEED).choice(
                    len(test_labels), args.test_images, replace=False
                )
            )
        data, test_data = WORK / "data", WORK / "test_data"
        print(f"writing {len(test_pick):,} test PNGs to {test_data / 'test'} …", flush=True)
        write_pngs(test_data / "test", test_images, test_labels, test_pick)
        judge = TestJudge(test_data)
        body = gray_imagenet_body()
        test_features: dict[int, torch.Tensor] = {}  # reference: the test set's features, once per size
        test_y = torch.from_numpy(test_labels[test_pick]).long()
        draws = []
        for k in args.k:
            for seed in range(args.seeds):
                print(f"== K={k} seed {seed}", flush=True)
                picked = draw(train_labels, k, seed)
                shutil.rmtree(data / "train", ignore_errors=True)
                write_pngs(data / "train", train_images, train_labels, picked)
                row = workbench_columns(data, judge) | {"k": k, "seed": seed, "train_images": len(picked)}
                row["size"] = row["stage1"]["size"] or row["final"]["size"]
                if row["size"] is None:
                    row["reference"] = {
                        "status": "failed",
                        "reason": "no input size from the workbench's runs",
                    }
                else:
                    if row["size"] not in test_features:
                        t0 = time.perf_counter()
                        test_features[row["size"]] = features(body, test_images[test_pick], row["size"])
                        print(
                            f"    reference test features at {row['size']} px: "
                            f"{time.perf_counter() - t0:.0f} s",
                            flush=True,
                        )
                    row["reference"] = reference(
                        body,
                        (train_images[picked], train_labels[picked]),
                        test_features[row["size"]],
                        test_y,
                        row["size"],
                        seed,
                    )
                draws.append(row)
                print_row(row)
        sample = None
        if args.sample:
            print(f"== the bundled sample ({SAMPLE})", flush=True)
            sample = workbench_columns(SAMPLE, None)
            sample["size"] = sample["stage1"]["size"] or sample["final"]["size"]
            if sample["size"] is not None:
                (train_x, train_y), (sample_test_x, sample_test_y) = (
                    read_split(SAMPLE / "train"),
                    read_split(SAMPLE / "test"),
                )
                sample["reference"] = reference(
                    body,
                    (train_x, train_y),
                    features(body, sample_test_x, sample["size"]),
                    torch.from_numpy(sample_test_y).long(),
                    sample["size"],
                    0,
                )
            else:
                sample["reference"] = {
                    "status": "failed",
                    "reason": "no input size from the workbench's runs",
                }
            print_row(sample)
        speed = {}
        if args.throughput_images:
            images = test_images[: args.throughput_images]
            for size in args.throughput_sizes:
                print(f"== embedding throughput at {size} px", flush=True)
                speed[str(size)] = throughput(
                    body,
                    images,
                    size,
                    model_name=MODEL,
                    classes=CLASSES,
                    mean=GRAY_IMAGENET_MEAN,
                    std=GRAY_IMAGENET_STD,
                    batch_size=FEATURE_BATCH,
                    work=WORK,
                )
        summary = summarize(draws)
        result = {
            "benchmark": "few-shot",
            "machine": machine(),
            "threads": torch.get_num_threads(),
            "k": args.k,
            "seeds": list(range(args.seeds)),
            "test_images": len(test_pick),
            "summary": summary,
            "sample": sample,
            "judged_in_full": judge.full_passes,
            "throughput": speed,
            "targets": targets(summary, speed, f"{len(test_pick):,} test images, {args.seeds} seed(s)"),
            "draws": draws,
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        if "--keep" not in sys.argv[1:]:
            shutil.rmtree(WORK, ignore_errors=True)
    text = markdown(result)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    name = "few_shot_throughput" if args.throughput_only else "few_shot"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
