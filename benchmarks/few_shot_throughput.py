"""benchmarks/few_shot.py's embedding throughput: the engine's Embedder against a plain onnxruntime session
of the same exported body and eager PyTorch fp32, in images/s, timed in turns; and its table.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workbench.engine.features import Embedder
from workbench.engine.models import build_model


def fastest(contenders: dict, rounds: int = 3) -> dict[str, float]:
    """Each contender's best time over `rounds`, taken in turns (A, B, C, A, B, C, …): on a shared machine
    a slow spell then falls on all of them alike (timed one after another, the same onnxruntime call came
    out 83.6 and 105.0 images/s a minute apart)."""
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, work in contenders.items():
            started = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def throughput(
    body: torch.nn.Module,
    images: np.ndarray,
    size: int,
    *,
    model_name: str,
    classes: int,
    mean: float,
    std: float,
    batch_size: int,
    work: Path,
) -> dict:
    """images/s of the engine's Embedder, a plain onnxruntime session (batches of `batch_size`) and eager
    PyTorch on the same body (`model_name` with its head an identity), on gray `images` upscaled to `size`,
    normalized with `mean` and `std`; files go to `work`."""
    import onnxruntime as ort

    batch = F.interpolate(
        torch.from_numpy(images).unsqueeze(1).float(), size=(size, size), mode="bilinear", align_corners=False
    )
    batch = batch.round().clamp(0, 255).to(torch.uint8)  # uint8 (N, 1, S, S), what the engine embeds
    n = len(batch)

    def normalize(x: torch.Tensor) -> torch.Tensor:
        return (x.float().div(255) - mean) / std

    model = build_model(model_name, classes, 1, pretrained=True)
    embedder = Embedder(
        model,
        model_name=model_name,
        size=size,
        channels=1,
        device=torch.device("cpu"),
        cache_dir=work / "embedder",
    )
    path = work / f"plain-{size}px.onnx"
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(
            body,
            torch.zeros(1, 1, size, size),
            str(path),
            input_names=["images"],
            output_names=["features"],
            dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def plain_ort(batch_size: int = batch_size) -> None:
        for start in range(0, n, batch_size):
            session.run(None, {"images": normalize(batch[start : start + batch_size]).numpy()})

    def eager() -> None:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                body(normalize(batch[start : start + batch_size]))

    seconds = fastest(
        {
            "engine": lambda: embedder.embed(batch, normalize),
            "onnxruntime": plain_ort,
            "onnxruntime_engine_batch": lambda: plain_ort(embedder.batch_size),  # the engine's batches
            "pytorch": eager,
        }
    )
    engine_s, ort_s, torch_s = seconds["engine"], seconds["onnxruntime"], seconds["pytorch"]
    ort_engine_batch_s = seconds["onnxruntime_engine_batch"]
    with torch.inference_mode():  # the engine computes the same features (a check, not a timing)
        same = (embedder.embed(batch[:8], normalize) - body(normalize(batch[:8]))).abs().max().item()
    return {
        "images": n,
        "engine_backend": embedder.backend,
        "engine_batch": embedder.batch_size,
        "plain_batch": batch_size,
        "engine_images_per_s": round(n / engine_s, 1),
        "onnxruntime_images_per_s": round(n / ort_s, 1),
        "onnxruntime_engine_batch_images_per_s": round(n / ort_engine_batch_s, 1),
        "pytorch_images_per_s": round(n / torch_s, 1),
        "engine_over_onnxruntime": round(ort_s / engine_s, 3),
        "engine_max_abs_diff_vs_pytorch": same,
    }


def throughput_markdown(result: dict, lines: list[str]) -> str:
    """`lines`, then the throughput table and the targets."""
    if result["throughput"]:
        lines += [
            "",
            "| size | engine images/s (backend, batch) | plain onnxruntime (batch) | onnxruntime at the engine's "
            "batch | eager PyTorch fp32 | engine / onnxruntime |",
            "|---|---|---|---|---|---|",
        ]
        for size, t in result["throughput"].items():
            lines.append(
                f"| {size} | {t['engine_images_per_s']} ({t['engine_backend']}, {t['engine_batch']}) "
                f"| {t['onnxruntime_images_per_s']} ({t['plain_batch']}) "
                f"| {t['onnxruntime_engine_batch_images_per_s']} | {t['pytorch_images_per_s']} "
                f"| {t['engine_over_onnxruntime']} |"
            )
    lines += ["", "| measurement | result | target | met |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['what']} | {t['result']} | {t['target']} | {'yes' if t['met'] else 'no'} |")
    return "\n".join(lines) + "\n"
