"""Side by side, one process, one machine: the workbench data path vs the usual PyTorch way, and vs the
compute floor.

    .venv/bin/python benchmarks/pipeline.py [--images-per-class 2000] [--epochs 3] [--model compact_vgg]

1. Pipeline vs usual: epoch time of the engine (scan + decode-once cache + batched tensor augmentation)
   against torchvision `ImageFolder` + `DataLoader(num_workers=cores)` + PIL transforms, same model, same
   PNG folder, same batch size, same augmentation (random shift by 2 px + horizontal flip). First (cold)
   epoch and the following (warm) epochs, the fastest of them. Targets: warm >= 3x faster, cold no slower.
2. Engine vs compute floor: the same model stepping over tensors already in memory (no data path at
   all). Target: engine warm epoch <= 1.10x the floor.
Both sides train in the same precision (the engine's default autocast for the device).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
BATCH = 128


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def _model(name: str, channels: int, device):
    from workbench.engine.models import build_model

    torch.manual_seed(0)
    return build_model(name, 10, channels).to(device)


def usual_way(folder: Path, model_name: str, epochs: int, amp_dtype, device) -> list[float]:
    """torchvision's reference-script way: ImageFolder + DataLoader workers + PIL transforms, every epoch."""
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.Grayscale(1),
            transforms.RandomCrop(28, padding=2, padding_mode="reflect"),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize([0.286], [0.353]),
        ]
    )
    loader = torch.utils.data.DataLoader(
        datasets.ImageFolder(str(folder / "train"), transform=tf),
        batch_size=BATCH,
        shuffle=True,
        num_workers=os.cpu_count() or 1,
        drop_last=True,
        persistent_workers=True,
    )
    model = _model(model_name, 1, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        for x, y in loader:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = F.cross_entropy(model(x.to(device)), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def engine(folder: Path, model_name: str, epochs: int) -> tuple[list[float], float]:
    """The workbench Trainer, cold cache: epoch 1 includes scanning and decoding every PNG."""
    from workbench.engine.training.config import AugmentConfig, TrainConfig
    from workbench.engine.training.events import EpochEnded, RunStarted
    from workbench.engine.training.trainer import Trainer

    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="bench-home-")
    config = TrainConfig(
        data=str(folder),
        model=model_name,
        epochs=epochs,
        batch_size=BATCH,
        val_split=0.0,
        schedule="constant",
        lr=0.05,
        augment=AugmentConfig(crop_padding=2, flip=True),
    )
    times, started, prep = [], time.perf_counter(), 0.0
    for event in Trainer(config).run():
        if isinstance(event, RunStarted):
            prep = time.perf_counter() - started
        if isinstance(event, EpochEnded):
            times.append(event.seconds + (prep if event.epoch == 1 else 0.0))
    return times, prep


def compute_floor(
    images: torch.Tensor, labels: torch.Tensor, model_name: str, epochs: int, amp_dtype, device
):
    """The same steps over normalized float tensors already in memory: what no data path can beat."""
    from workbench.engine.device import prefers_channels_last

    layout = torch.channels_last if prefers_channels_last(device) else torch.contiguous_format
    model = _model(model_name, 1, device).to(memory_format=layout)  # the engine's layout
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    x_all = ((images.float() / 255 - 0.286) / 0.353).to(device).contiguous(memory_format=layout)
    y_all = labels.to(device)
    steps = len(x_all) // BATCH
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        for i in range(steps):
            x, y = x_all[i * BATCH : (i + 1) * BATCH], y_all[i * BATCH : (i + 1) * BATCH]
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--images-per-class", type=int, default=2000, help="train images per class (x10 classes)"
    )
    parser.add_argument("--epochs", type=int, default=4, help="the first is cold, the rest warm")
    parser.add_argument("--model", default="compact_vgg")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from workbench.engine.data import load_decoded, scan_dataset
    from workbench.engine.data.fashion_mnist import export_fashion_mnist
    from workbench.engine.device import autocast_dtype, pick_device

    folder = Path(tempfile.gettempdir()) / "workbench-bench" / f"fashion-mnist-{args.images_per_class}"
    if not (folder / "train").is_dir():
        export_fashion_mnist(folder, per_class={"train": args.images_per_class, "test": 10})
    device = pick_device("auto")
    amp_dtype = autocast_dtype(device)
    n_images = 10 * args.images_per_class
    print(
        f"{n_images} PNGs, model {args.model}, batch {BATCH}, device {device}, autocast {amp_dtype}",
        flush=True,
    )

    usual = usual_way(folder, args.model, args.epochs, amp_dtype, device)
    print("usual way epochs (s):", [round(t, 2) for t in usual], flush=True)
    ours, prep = engine(folder, args.model, args.epochs)
    print(
        "engine epochs (s):   ",
        [round(t, 2) for t in ours],
        f"(scan+decode {prep:.2f}s in epoch 1)",
        flush=True,
    )
    decoded = load_decoded(scan_dataset(folder, val_fraction=0.0).split("train"), 28, 1)
    floor = compute_floor(decoded.images, decoded.labels, args.model, args.epochs, amp_dtype, device)
    print("compute floor (s):   ", [round(t, 2) for t in floor], flush=True)

    # The fastest warm epoch of each: on a shared machine the minimum is the least disturbed measurement
    # (timeit's rule); the mean mixes in whatever else ran.
    warm = lambda ts: min(ts[1:] or ts)  # noqa: E731
    rows = {
        "machine": machine(),
        "device": str(device),
        "autocast": str(amp_dtype),
        "images": n_images,
        "model": args.model,
        "batch_size": BATCH,
        "usual_cold_s": round(usual[0], 2),
        "usual_warm_s": round(warm(usual), 2),
        "engine_cold_s": round(ours[0], 2),
        "engine_warm_s": round(warm(ours), 2),
        "floor_warm_s": round(warm(floor), 2),
        "warm_speedup_vs_usual": round(warm(usual) / warm(ours), 2),
        "cold_speedup_vs_usual": round(usual[0] / ours[0], 2),
        "engine_over_floor": round(warm(ours) / warm(floor), 3),
    }
    rows["targets"] = {
        "warm >= 3x usual": rows["warm_speedup_vs_usual"] >= 3,
        "cold no slower than usual": rows["cold_speedup_vs_usual"] >= 1,
        "engine <= 1.10x floor": rows["engine_over_floor"] <= 1.10,
    }
    print(json.dumps(rows, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pipeline.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
