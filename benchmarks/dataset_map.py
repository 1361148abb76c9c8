"""The dataset map (issue 15, item 4): which 2-D projection of the embeddings, measured for quality and speed.

    .venv/bin/python benchmarks/dataset_map.py            # 70,000 images; a few minutes
    .venv/bin/python benchmarks/dataset_map.py --quick    # 7,000 images
    .venv/bin/python benchmarks/dataset_map.py --full     # also t-SNE on all 70,000 (no landmarks): minutes more

Two feature sets, both real:
1. 500 Fashion-MNIST training images (50 per class, the bundled sample's size) embedded by the review's own
   pretrained network (`embed_dataset`: EfficientNet-Lite0, 1,280 dimensions): the app's features.
2. all 70,000 Fashion-MNIST images (train + test) as raw pixels (784 dimensions). Embedding 70,000 images with
   the pretrained network takes far longer than the map on this CPU, so the timing uses these cheap real
   features instead; every method reduces its input to 50 PCA dimensions first, so the layout's cost depends
   on the number of images, not on the features' origin.

Methods (engine/review/projection.py): "pca" (the two leading principal axes), "tsne" (openTSNE, FFT gradients,
on 50 PCA dimensions, 125 + 250 iterations: the app's), "umap" (umap-learn, default settings; measured only when
umap-learn is installed: it is not a dependency), and at 70k "+landmarks": the layout fitted on 7,000 random
images (projection.LANDMARKS), the rest placed at the weighted mean of their 5 nearest, as the app does.
Quality, against class labels and the 50-dimensional space:
- k-NN class agreement: the fraction of each image's 10 nearest neighbours on the map that share its class,
  as a share of the same fraction in the 50-dimensional PCA space (1.0 = the map keeps the neighbourhoods'
  classes as well as the features do);
- trustworthiness (sklearn, k = 10) on 3,000 random images: whether map neighbours are real neighbours.
Time: wall seconds of `project()` (PCA included) and the process CPU seconds it used (the machine is shared:
wall time depends on what else runs; CPU seconds / cores is what an idle machine would take at best). The first
UMAP call in a process also compiles numba code (in the 500-image row); the 70k UMAP runs after it.
Drawing: the Map page (app/dataset/dataset_map.py) with the 70k t-SNE layout, offscreen at 1000×750: the first
draw, then the repaint after each of 30 pan steps (what a drag paints), and the hover look-up of the nearest point.

Results: benchmarks/results/dataset_map.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="workbench-dataset-map-"))

import numpy as np  # noqa: E402
from sklearn.manifold import trustworthiness  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

from workbench.engine.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    export_fashion_mnist,
    load_fashion_mnist,
)  # noqa: E402
from workbench.engine.review import embed_dataset  # noqa: E402
from workbench.engine.review.projection import principal_components, project  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
K = 10

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true")
parser.add_argument("--full", action="store_true", help="also t-SNE on all 70,000 images without landmarks")
args = parser.parse_args()


def class_agreement(points: np.ndarray, labels: np.ndarray) -> float:
    _, nearest = NearestNeighbors(n_neighbors=K + 1).fit(points).kneighbors(points)
    return float((labels[nearest[:, 1:]] == labels[:, None]).mean())


layouts: dict[str, np.ndarray] = {}  # the last layout of each method (the drawing test uses one)


def measure(name: str, features: np.ndarray, labels: np.ndarray, reference: float, **options) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    projection = project(features, **options)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    xy = projection.xy
    layouts[name] = xy
    pick = np.random.default_rng(0).choice(len(xy), min(3000, len(xy)), replace=False)
    reduced = principal_components(features)
    row = {
        "method": name,
        "images": len(xy),
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "knn_class_agreement": round(class_agreement(xy, labels) / reference, 3),
        "trustworthiness": round(float(trustworthiness(reduced[pick], xy[pick], n_neighbors=K)), 3),
        "notes": projection.notes,
    }
    print(row, flush=True)
    return row


results: dict = {"k": K, "runs": []}

# 1. the app's own features: 500 real images embedded by the review's network
work = Path(os.environ["WORKBENCH_HOME"]) / "fmnist-500"
export_fashion_mnist(work, per_class={"train": 50, "test": 1})
started = time.perf_counter()
embedded = embed_dataset(str(work / "train"))  # 500 images; the 10 test ones left out
results["embed_500_seconds"] = round(time.perf_counter() - started, 1)
features, labels = embedded.features.numpy(), embedded.labels.numpy()
reference = class_agreement(principal_components(features), labels)
results["embedded_reference_agreement"] = round(reference, 3)
try:
    import umap  # noqa: F401 - only to know whether it can be compared

    METHODS = ("pca", "tsne", "umap")
except ImportError:
    METHODS = ("pca", "tsne")
for method in METHODS:
    results["runs"].append(
        {
            "features": "EfficientNet-Lite0 (500)",
            **measure(method, features, labels, reference, method=method),
        }
    )

# 2. 70,000 real images as raw pixels
data = load_fashion_mnist()
pixels = np.concatenate([data["train"][0], data["test"][0]]).reshape(-1, 784).astype(np.float32) / 255
pixel_labels = np.concatenate([data["train"][1], data["test"][1]]).astype(np.int64)
if args.quick:
    pixels, pixel_labels = pixels[::10], pixel_labels[::10]
reference = class_agreement(principal_components(pixels), pixel_labels)
results["pixels_reference_agreement"] = round(reference, 3)
plan = [("pca", {"method": "pca"}), ("tsne+landmarks", {"method": "tsne"})]
if "umap" in METHODS:
    plan.append(("umap+landmarks", {"method": "umap"}))
if args.full:
    plan.append(("tsne", {"method": "tsne", "landmarks": None}))
for name, options in plan:
    results["runs"].append(
        {"features": f"pixels ({len(pixels):,})", **measure(name, pixels, pixel_labels, reference, **options)}
    )

# 3. drawing: the map page with the 70k t-SNE layout, rendered offscreen after each pan step and hover
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from PySide6.QtWidgets import QApplication  # noqa: E402

from workbench.app.dataset.dataset_map import DatasetMapView  # noqa: E402
from workbench.app.dataset.thumbnails import ThumbnailModel  # noqa: E402
from workbench.engine.review.analysis import DatasetAnalysis  # noqa: E402

app = QApplication.instance() or QApplication([])
n = len(pixels)
layout = layouts["tsne+landmarks"]  # the app's method at this size
analysis = DatasetAnalysis(
    roots=[], paths=[f"/fmnist/{i}.png" for i in range(n)], labels=pixel_labels, classes=FASHION_MNIST_CLASSES,
    splits=["train"] * n, xy=layout, suspicion=np.zeros(n, np.int8), suspects=[], method="tsne", map_seconds=0.0,
)  # fmt: skip
view = DatasetMapView(ThumbnailModel())
view.resize(1000, 750)
view.show()
started = time.perf_counter()
view.show_analysis(analysis)
app.processEvents()
view.plot.grab()
results["draw_first_ms"] = round(1000 * (time.perf_counter() - started))
frames, hovers = [], []
for step in range(30):
    view.view_box.translateBy(x=0.02 * (1 if step < 15 else -1))
    started = time.perf_counter()
    view.plot.grab()  # one full repaint of the plot, as a pan step paints
    frames.append(1000 * (time.perf_counter() - started))
    where = view.view_box.mapViewToScene(view.view_box.viewRect().center())
    started = time.perf_counter()
    view.hover_at(where)
    hovers.append(1000 * (time.perf_counter() - started))
results["pan_frame_ms_median"] = round(float(np.median(frames)), 1)
results["pan_frame_ms_max"] = round(float(np.max(frames)), 1)
results["hover_ms_median"] = round(float(np.median(hovers)), 1)
print(
    {k: results[k] for k in ("draw_first_ms", "pan_frame_ms_median", "pan_frame_ms_max", "hover_ms_median")}
)

RESULTS.mkdir(exist_ok=True)
(RESULTS / "dataset_map.json").write_text(json.dumps(results, indent=2) + "\n")
lines = [
    f"Dataset map: 2-D projections of Fashion-MNIST features (k = {K}); 500 images embedded in "
    f"{results['embed_500_seconds']} s.",
    "",
    "| features | method | images | seconds | CPU s | k-NN class agreement (map / 50-d) | trustworthiness |",
    "|---|---|---|---|---|---|---|",
]
for r in results["runs"]:
    lines.append(
        f"| {r['features']} | {r['method']} | {r['images']:,} | {r['seconds']} | {r['cpu_seconds']} | "
        f"{r['knn_class_agreement']} | {r['trustworthiness']} |"
    )
lines += [
    "",
    f"Drawing {n:,} points (1000×750 offscreen): first draw {results['draw_first_ms']} ms; a pan step's repaint "
    f"{results['pan_frame_ms_median']} ms median, {results['pan_frame_ms_max']} ms at most; hover look-up "
    f"{results['hover_ms_median']} ms.",
]
(RESULTS / "dataset_map.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
