"""Near-duplicates, leaks and outliers by content: the workbench's review against plain references, on PNG
folders with planted copies and foreign images, in one run.

    .venv/bin/python benchmarks/near_duplicates.py               # 3 seeds, plus the 70,000-image search timing
    .venv/bin/python benchmarks/near_duplicates.py --seeds 1 --scale 0   # a smoke run

For each seed, a pre-split folder of Fashion-MNIST training images is written (numpy default_rng(seed)):
train/<class>/ with 100 per class and test/<class>/ with 20 per class. Then:

- 60 copies of train images are planted, each with one change — JPEG quality 70 (saved as .jpg), resized to
  0.8× and back (bilinear), or cropped by 8% of the side (4% each edge) and resized back — and put in the same
  class folder (a copy), another class's folder (a label error) or the test split's class folder (a leak),
  every change × place combination about equally often;
- 20 foreign images in random train class folders: blank (black, white, two greys), uniform noise, white
  text on black, checkerboards and gradients (5 of each kind).

Near-duplicates: recall of the planted (original, copy) pairs, whether each found pair is classified as
planted (copy / label / leak), and the false pairs (any other pair reported; Fashion-MNIST has some real
near-identical images, so not every "false" pair is wrong). Compared, on the same images, with
1. reference: average hash (8×8 grey thumbnail, pixel > mean) with Hamming distance ≤ 5 of 64 bits (the usual
   default) and ≤ 0, every pair compared;
2. the cosine of the pretrained network's L2-normalized embeddings (the review's features), at the threshold
   that reports as many false pairs as the workbench;
3. the workbench: `review_dataset` (16×16 grey thumbnails of each image and of its centre, mean removed,
   cosine ≥ THRESHOLD, 8 neighbours per image), with a sweep of the threshold it was chosen from.
Outliers: recall of the 20 planted images among the 20 highest-ranked (`rank_outliers`), and among the listed
suspects (score ≥ SUSPECT_SCORE or blank), and a sweep of that cut, with the number of other images listed.
Scale: the two blockwise searches on 70,000 random images (thumbnail signatures; 1280-d embeddings over 10
classes): seconds and peak memory (of the whole benchmark process).

Results: benchmarks/results/near_duplicates.{json,md}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="workbench-near-duplicates-"))
os.environ["WORKBENCH_HOME"] = str(WORK / "home")  # before importing workbench

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from workbench.engine.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TRAIN_PER_CLASS, TEST_PER_CLASS = 100, 20
COPIES, FOREIGN = 60, 20
PLACES = ("copy", "label", "leak")
SWEEP = (0.975, 0.98, 0.985, 0.99, 0.993, 0.995)
CUTS = (1.4, 1.5, 1.6, 1.8, 2.0)  # outlier scores from which an image is listed


# ---- the planted folder -------------------------------------------------------------------------------------
def jpeg70(a: np.ndarray) -> tuple[np.ndarray, str]:
    buffer = io.BytesIO()
    Image.fromarray(a).save(buffer, "JPEG", quality=70)
    return np.array(Image.open(buffer)), ".jpg"


def resized(a: np.ndarray) -> tuple[np.ndarray, str]:
    side = a.shape[0]
    small = Image.fromarray(a).resize((round(0.8 * side),) * 2, Image.BILINEAR)
    return np.array(small.resize((side, side), Image.BILINEAR)), ".png"


def cropped(a: np.ndarray) -> tuple[np.ndarray, str]:
    side = a.shape[0]
    edge = 0.04 * side
    box = (edge, edge, side - edge, side - edge)
    return np.array(Image.fromarray(a).resize((side, side), Image.BILINEAR, box=box)), ".png"


CHANGES = (jpeg70, resized, cropped)


def foreign(kind: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == 0:
        return np.full((28, 28), (0, 255, 128, 40, 200)[n % 5], np.uint8)
    if kind == 1:
        return rng.integers(0, 256, (28, 28), dtype=np.uint8)
    if kind == 2:
        image = Image.new("L", (28, 28), 0)
        ImageDraw.Draw(image).text((1, 8), f"{n:03d}"[-3:], fill=255)
        return np.array(image)
    if n % 2:
        return np.uint8((np.indices((28, 28)).sum(0) // (2 + n % 3) % 2) * 255)
    ramp = np.linspace(0, 255, 28)
    return np.uint8(np.add.outer(ramp, ramp * (n % 3)) / (1 + n % 3))


def write_folder(seed: int, images: np.ndarray, labels: np.ndarray, root: Path) -> dict:
    rng = np.random.default_rng(seed)
    train = [
        rng.choice(np.nonzero(labels == c)[0], TRAIN_PER_CLASS + TEST_PER_CLASS, replace=False)
        for c in range(10)
    ]
    originals = {}
    for c, rows in enumerate(train):
        for n, i in enumerate(rows):
            split = "train" if n < TRAIN_PER_CLASS else "test"
            path = root / split / FASHION_MNIST_CLASSES[c] / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i]).save(path)
            if split == "train":
                originals[int(i)] = str(path)
    copies = []
    for n, i in enumerate(rng.choice(sorted(originals), COPIES, replace=False)):
        change, place = CHANGES[n % 3], PLACES[(n // 3) % 3]
        pixels, extension = change(images[i])
        folder = (
            int(labels[i]) if place != "label" else int(rng.choice([c for c in range(10) if c != labels[i]]))
        )
        split = "test" if place == "leak" else "train"
        path = root / split / FASHION_MNIST_CLASSES[folder] / f"copy-{change.__name__}-{i:05d}{extension}"
        Image.fromarray(pixels).save(path)
        copies.append(
            {"original": originals[int(i)], "copy": str(path), "change": change.__name__, "place": place}
        )
    outliers = []
    for n in range(FOREIGN):
        kind = n % 4
        path = root / "train" / FASHION_MNIST_CLASSES[int(rng.integers(10))] / f"foreign-{kind}-{n:02d}.png"
        Image.fromarray(foreign(kind, n, rng)).save(path)
        outliers.append({"path": str(path), "kind": ("blank", "noise", "text", "pattern")[kind]})
    return {"copies": copies, "outliers": outliers}


# ---- references ---------------------------------------------------------------------------------------------
def average_hash_pairs(paths: list[str], max_bits: int) -> set[frozenset[str]]:
    """The plain perceptual hash: 8×8 grey thumbnail, bit = pixel above the thumbnail's mean; all pairs."""
    bits = []
    for p in paths:
        a = np.asarray(Image.open(p).convert("L").resize((8, 8), Image.BOX), np.float32)
        bits.append((a > a.mean()).ravel())
    h = torch.tensor(np.stack(bits)).float()
    hamming = h @ (1 - h).T + (1 - h) @ h.T
    a, b = torch.triu_indices(len(paths), len(paths), 1)
    close = hamming[a, b] <= max_bits
    return {
        frozenset((paths[i], paths[j])) for i, j in zip(a[close].tolist(), b[close].tolist(), strict=True)
    }


def embedding_pairs(features: torch.Tensor, paths: list[str], false_budget: int, planted: set) -> dict:
    """Cosine of L2-normalized embeddings: recall at the threshold that reports `false_budget` false pairs."""
    unit = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
    a, b = torch.triu_indices(len(paths), len(paths), 1)
    similarity = (unit @ unit.T)[a, b]
    order = similarity.argsort(descending=True)
    true = torch.tensor(
        [
            frozenset((paths[i], paths[j])) in planted
            for i, j in zip(a[order].tolist(), b[order].tolist(), strict=True)
        ]
    )
    false_so_far = (~true).cumsum(0)
    reach = int((false_so_far <= false_budget).sum())
    return {
        "recall": int(true[:reach].sum()) / len(planted),
        "threshold": round(float(similarity[order][reach - 1]), 3),
    }


def score_pairs(found: set[frozenset[str]], planted: set) -> dict:
    hits = len(found & planted)
    return {"found": hits, "recall": hits / len(planted), "false_pairs": len(found - planted),
            "precision": hits / len(found) if found else 0.0}  # fmt: skip


# ---- the workbench ------------------------------------------------------------------------------------------
def run_seed(seed: int, images: np.ndarray, labels: np.ndarray) -> dict:
    from workbench.engine.review import embed_dataset, find_near_duplicates, rank_outliers, review_dataset
    from workbench.engine.review.near_duplicates import is_blank

    root = WORK / f"seed{seed}"
    plan = write_folder(seed, images, labels, root)
    shutil.rmtree(WORK / "home", ignore_errors=True)  # cold: no cached decodes or embeddings
    started = time.perf_counter()
    embedded = embed_dataset(str(root))
    embed_s = time.perf_counter() - started
    started = time.perf_counter()
    review = review_dataset(embedded, ("duplicates", "outliers"))
    review_s = time.perf_counter() - started
    paths = embedded.paths
    planted = {frozenset((c["original"], c["copy"])): c for c in plan["copies"]}
    found = {frozenset((paths[p.first], paths[p.second])): p for p in review.duplicates}
    workbench = score_pairs(set(found), set(planted))
    workbench["kind_right"] = sum(found[k].kind == c["place"] for k, c in planted.items() if k in found)
    workbench["by_change"] = {
        change.__name__: sum(k in found for k, c in planted.items() if c["change"] == change.__name__)
        for change in CHANGES
    }
    sweep = {}
    for threshold in SWEEP:
        pairs = find_near_duplicates(
            embedded.thumbnails, embedded.labels, embedded.splits, threshold=threshold
        )
        sweep[threshold] = score_pairs(
            {frozenset((paths[p.first], paths[p.second])) for p in pairs}, set(planted)
        )
    reference = {bits: score_pairs(average_hash_pairs(paths, bits), set(planted)) for bits in (5, 0)}
    by_embedding = embedding_pairs(embedded.features, paths, workbench["false_pairs"], set(planted))

    foreign = {o["path"]: o["kind"] for o in plan["outliers"]}
    ranked = rank_outliers(
        embedded.features, embedded.labels, len(embedded.classes), blank=is_blank(embedded.thumbnails)
    )
    top = [paths[o.index] for o in ranked[: len(foreign)]]
    listed = {paths[o.index] for o in review.outliers}
    outliers = {
        "recall_top": sum(p in foreign for p in top) / len(foreign),
        "top_by_kind": {
            k: sum(foreign.get(p) == k for p in top) for k in ("blank", "noise", "text", "pattern")
        },
        "recall_listed": len(listed & set(foreign)) / len(foreign),
        "others_listed": len(listed - set(foreign)),
        "cuts": {
            cut: {
                "recall": sum(paths[o.index] in foreign for o in ranked if o.blank or o.score >= cut)
                / len(foreign),
                "others": sum(paths[o.index] not in foreign for o in ranked if o.blank or o.score >= cut),
            }
            for cut in CUTS
        },
    }
    return {
        "seed": seed, "images": len(paths), "size": embedded.size, "embed_s": round(embed_s, 1),
        "review_s": round(review_s, 2), "workbench": workbench, "sweep": sweep, "ahash": reference,
        "embedding_cosine": by_embedding, "outliers": outliers,
    }  # fmt: skip


def scale(n: int) -> dict:
    """The two searches as the review runs them, on random data (few copies: the common case)."""
    from workbench.engine.review import find_near_duplicates
    from workbench.engine.review.neighbours import class_neighbour_distances, unit_rows

    generator = torch.Generator().manual_seed(0)
    thumbs = torch.rand(n, 2, 256, generator=generator) * 255
    labels = torch.randint(0, 10, (n,), generator=generator)
    started = time.perf_counter()
    find_near_duplicates(thumbs, labels, ["train"] * n)
    signature_s = time.perf_counter() - started
    del thumbs
    features = unit_rows(torch.rand(n, 1280, generator=generator))
    started = time.perf_counter()
    class_neighbour_distances(features, labels, 10, 10)
    outlier_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"images": n, "duplicate_search_s": round(signature_s, 1), "outlier_search_s": round(outlier_s, 1),
            "peak_rss_mb": round(peak)}  # fmt: skip


def sweep_table(name: str, settings, lines: dict, rows: list[dict]) -> list[str]:
    """A markdown table: one column per setting, one line per measure (its mean over the seeds' rows)."""
    out = [f"| {name} | " + " | ".join(str(v) for v in settings) + " |", "|---|" + "---|" * len(settings)]
    for label, (value, style) in lines.items():
        cells = (style.format(np.mean([value(r, v) for r in rows])) for v in settings)
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--scale", type=int, default=70_000, help="images in the timing of the searches (0: skip)"
    )
    args = parser.parse_args()
    images, labels = load_fashion_mnist()["train"]
    rows = []
    try:
        for seed in range(args.seeds):
            rows.append(run_seed(seed, images, labels))
            print(json.dumps(rows[-1]), flush=True)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    at_scale = scale(args.scale) if args.scale else None
    if at_scale:
        print(json.dumps(at_scale), flush=True)

    def mean(get) -> float:
        return float(np.mean([get(r) for r in rows]))

    summary = {
        "workbench_recall": mean(lambda r: r["workbench"]["recall"]),
        "workbench_false_pairs": mean(lambda r: r["workbench"]["false_pairs"]),
        "workbench_precision": mean(lambda r: r["workbench"]["precision"]),
        "kind_right": mean(lambda r: r["workbench"]["kind_right"] / max(1, r["workbench"]["found"])),
        "ahash5_recall": mean(lambda r: r["ahash"][5]["recall"]),
        "ahash5_false_pairs": mean(lambda r: r["ahash"][5]["false_pairs"]),
        "ahash0_recall": mean(lambda r: r["ahash"][0]["recall"]),
        "ahash0_false_pairs": mean(lambda r: r["ahash"][0]["false_pairs"]),
        "embedding_recall": mean(lambda r: r["embedding_cosine"]["recall"]),
        "outlier_recall_top": mean(lambda r: r["outliers"]["recall_top"]),
        "outlier_recall_listed": mean(lambda r: r["outliers"]["recall_listed"]),
        "outlier_others_listed": mean(lambda r: r["outliers"]["others_listed"]),
        "embed_s": mean(lambda r: r["embed_s"]),
        "review_s": mean(lambda r: r["review_s"]),
    }
    summary = {k: round(v, 3) for k, v in summary.items()}
    result = {"per_seed": rows, "mean": summary, "scale": at_scale}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "near_duplicates.json").write_text(json.dumps(result, indent=2) + "\n")
    s = summary
    md = [
        f"Planted: {COPIES} copies (JPEG 70 / 0.8× resize / 8% crop; within a class, another class, test split) "
        f"and {FOREIGN} foreign images among {rows[0]['images']} images; mean of {len(rows)} seed(s).",
        "",
        "| near-duplicates | recall | false pairs | precision |",
        "|---|---|---|---|",
        f"| reference: average hash, Hamming ≤ 5 | {s['ahash5_recall']:.1%} | {s['ahash5_false_pairs']:.0f} | |",
        f"| reference: average hash, Hamming 0 | {s['ahash0_recall']:.1%} | {s['ahash0_false_pairs']:.0f} | |",
        f"| embedding cosine (same false pairs as workbench) | {s['embedding_recall']:.1%} | "
        f"{s['workbench_false_pairs']:.0f} | |",
        f"| **workbench** | **{s['workbench_recall']:.1%}** | {s['workbench_false_pairs']:.1f} | "
        f"{s['workbench_precision']:.1%} |",
        "",
        f"Found pairs classified as planted (copy / label / leak): {s['kind_right']:.1%}.",
        "",
        *sweep_table("threshold", SWEEP, {
            "recall": (lambda r, t: r["sweep"][t]["recall"], "{:.1%}"),
            "false pairs": (lambda r, t: r["sweep"][t]["false_pairs"], "{:.1f}"),
        }, rows),
        "",
        f"Outliers: {s['outlier_recall_top']:.1%} of the planted foreign images ranked in the top {FOREIGN}; "
        f"{s['outlier_recall_listed']:.1%} listed as suspects, with {s['outlier_others_listed']:.1f} other images listed.",
        "",
        *sweep_table("outlier score cut", CUTS, {
            "planted listed": (lambda r, c: r["outliers"]["cuts"][c]["recall"], "{:.1%}"),
            "other images listed": (lambda r, c: r["outliers"]["cuts"][c]["others"], "{:.1f}"),
        }, rows),
        "",
        f"Time per seed: embedding {s['embed_s']:.1f} s (cold), duplicates + outliers {s['review_s']:.2f} s.",
    ]  # fmt: skip
    if at_scale:
        md.append(
            f"At {at_scale['images']} images: duplicate search {at_scale['duplicate_search_s']} s, outlier search "
            f"{at_scale['outlier_search_s']} s, peak memory {at_scale['peak_rss_mb']} MB."
        )
    (RESULTS / "near_duplicates.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
