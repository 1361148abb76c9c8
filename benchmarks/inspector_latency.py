"""Inspector latency: all conv-layer feature maps of ResNet-18 for one 224×224 image (target ≤ 300 ms on
the 2-core dev CPU), beside a plain forward pass and a Grad-CAM, in one process.

    .venv/bin/python benchmarks/inspector_latency.py [THREADS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from workbench.engine.inspection import conv_feature_maps, grad_cam
from workbench.engine.models import build_model


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    if len(sys.argv) > 1:
        torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    model = build_model("resnet18", 10, 3).eval()
    image = torch.randn(3, 224, 224)
    for _ in range(3):  # warm-up: allocator, oneDNN kernels
        conv_feature_maps(model, image)

    def forward():
        with torch.inference_mode():
            model(image[None])

    maps = timed(lambda: conv_feature_maps(model, image), 20)
    plain = timed(forward, 20)
    cam = timed(lambda: grad_cam(model, image), 5)
    row = {
        "threads": torch.get_num_threads(),
        "conv_layers": len(conv_feature_maps(model, image)),
        "feature_maps_ms_median": round(statistics.median(maps)),
        "feature_maps_ms_best": round(min(maps)),
        "plain_forward_ms_median": round(statistics.median(plain)),
        "grad_cam_ms_median": round(statistics.median(cam)),
        "target": "feature maps <= 300 ms",
    }
    print(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
