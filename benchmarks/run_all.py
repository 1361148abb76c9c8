"""Run every benchmark in one go, on one machine, and write `benchmarks/results/latest.{json,md}`.

    xvfb-run -a .venv/bin/python benchmarks/run_all.py [--quick]

Each benchmark runs in its own process, one after another (never in parallel, so they do not disturb
each other's timings). `--quick` shrinks the long ones for a smoke run; the README's table comes from a
full run. Benchmarks are measurements, not tests: nothing here fails on a missed target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = [
        (
            "pipeline",
            ["pipeline.py"] + (["--images-per-class", "300", "--epochs", "2"] if args.quick else []),
        ),
        ("inspector_latency", ["inspector_latency.py"]),
        (
            "app_responsiveness",
            ["app_responsiveness.py"] + (["--train-per-class", "100", "--epochs", "2"] if args.quick else []),
        ),
        (
            "fashion_mnist_defaults",
            ["fashion_mnist_defaults.py"] + (["--extra", "--epochs 1"] if args.quick else []),
        ),
        ("few_shot", ["few_shot.py"] + (["--quick"] if args.quick else [])),
        (
            "few_shot_backbones",
            ["few_shot_backbones.py"] + (["--draws", "1", "--test-images", "1000"] if args.quick else []),
        ),
        ("label_errors", ["label_errors.py"]),
        ("near_duplicates", ["near_duplicates.py"] + (["--seeds", "1", "--scale", "0"] if args.quick else [])),
        ("dataset_map", ["dataset_map.py"] + (["--quick"] if args.quick else [])),
        ("calibration_ood", ["calibration_ood.py"] + (["--quick"] if args.quick else [])),
    ]
    results: dict = {"machine": machine()}
    for name, command in plan:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HERE / command[0]), *command[1:]], stdout=subprocess.PIPE, text=True
        )
        print(proc.stdout[-4000:], flush=True)
        json_file = RESULTS / f"{name}.json"
        if proc.returncode == 0 and json_file.is_file():
            results[name] = json.loads(json_file.read_text())
        elif proc.returncode == 0:  # benchmarks that only print: keep their last JSON object
            results[name] = json.loads(proc.stdout[proc.stdout.index("{") :])
        else:
            results[name] = {"error": f"exit code {proc.returncode}"}
        results[name]["benchmark_seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), GPU: {m['gpu'] or 'none'}, "
        f"torch {m['torch']}, Python {m['python']}.",
        "",
        "| # | measurement | result | target | met |",
        "|---|---|---|---|---|",
    ]

    def add(n, what, result, target, met):
        lines.append(f"| {n} | {what} | {result} | {target} | {'yes' if met else 'no'} |")

    p = r.get("pipeline", {})
    if "engine_warm_s" in p:
        add(
            1,
            f"warm epoch, engine vs ImageFolder+DataLoader ({p['images']:,} PNGs, {p['model']})",
            f"{p['engine_warm_s']} s vs {p['usual_warm_s']} s = {p['warm_speedup_vs_usual']}× faster",
            "≥ 3×",
            p["warm_speedup_vs_usual"] >= 3,
        )
        add(
            1,
            "cold first epoch (engine incl. scan + decode)",
            f"{p['engine_cold_s']} s vs {p['usual_cold_s']} s = {p['cold_speedup_vs_usual']}×",
            "≥ 1× (no slower)",
            p["cold_speedup_vs_usual"] >= 1,
        )
        add(
            2,
            "engine warm epoch / compute floor (tensors in memory)",
            f"{p['engine_warm_s']} s / {p['floor_warm_s']} s = {p['engine_over_floor']}",
            "≤ 1.10",
            p["engine_over_floor"] <= 1.10,
        )
    a = r.get("app_responsiveness", {})
    if "gui_over_headless" in a:
        add(
            3,
            "images/s training in the app / headless",
            f"{a['gui_images_per_s']:,} / {a['headless_images_per_s']:,} = {a['gui_over_headless']}",
            "≥ 0.95",
            a["gui_over_headless"] >= 0.95,
        )
        t, s = a["training_stall"], a["scan_70k"]
        add(
            4,
            "event-loop stall while training (max / p99)",
            f"{t['max_ms']} / {t['p99_ms']} ms",
            "≤ 50 / ≤ 20 ms",
            t["max_ms"] <= 50 and t["p99_ms"] <= 20,
        )
        add(
            4,
            "event-loop stall while scanning 70k images (max / p99)",
            f"{s['max_ms']} / {s['p99_ms']} ms",
            "≤ 50 / ≤ 20 ms",
            s["max_ms"] <= 50 and s["p99_ms"] <= 20,
        )
        add(
            5,
            f"scan {s.get('images') or 70000:,} images; first thumbnails",
            f"{s['seconds']} s; {s['first_thumbnails_s']} s",
            "—",
            True,
        )
        add(
            6,
            "start-up: process start → window painted (median of 3)",
            f"{a['startup_ms_median']:.0f} ms",
            "≤ 1000 ms",
            a["startup_ms_median"] <= 1000,
        )
    i = r.get("inspector_latency", {})
    if "feature_maps_ms_median" in i:
        add(
            7,
            f"all {i['conv_layers']} conv feature maps, ResNet-18, 224×224 ({i['threads']} threads)",
            f"{i['feature_maps_ms_median']} ms (best {i['feature_maps_ms_best']})",
            "≤ 300 ms",
            i["feature_maps_ms_median"] <= 300,
        )
    f = r.get("fashion_mnist_defaults", {})
    if "test_accuracy" in f and f["test_accuracy"] is not None:
        add(
            8,
            f"Fashion-MNIST 60k/10k, `workbench train` defaults ({f['model']}, {f['epochs']} epochs; "
            "test judged on each image + its mirror)",
            f"{100 * f['test_accuracy']:.2f}% in {f['wall_seconds']:.0f} s",
            "> 93.9% in ≤ 600 s",
            f["met"],
        )
    fs = r.get("few_shot", {})
    for t in fs.get("targets", []):  # few_shot.py states its own targets; its full table is few_shot.md
        add(9, t["what"], t["result"], t["target"], t["met"])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
