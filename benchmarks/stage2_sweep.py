"""How stage 2 (fine-tuning after the fitted head, LP-FT) was chosen: the engine's own runs with one option
changed at a time, on Fashion-MNIST draws of K images per class, judged on test images the runs never saw.

    .venv/bin/python benchmarks/stage2_sweep.py prepare DIR            # PNG folders (needs the IDX files)
    python3 benchmarks/stage2_sweep.py sweep DIR --device cuda --workers 8 --out results.jsonl

`prepare` writes DIR/draw<seed>/{train,test}/<class>/*.png: K = 20 training images per class drawn as
benchmarks/few_shot.py draws them (default_rng(seed)), and the same --test-images test images in every draw.
`sweep` runs, for each draw, one stage-1-only run (`quick=True`) and one full run per recipe below, each a
`Trainer(TrainConfig(...))` with the recipe's options, in worker processes with their own WORKBENCH_HOME.
A full run here always keeps the fine-tuned network, so its test accuracy is fine-tuning's whatever the
validation rule would have chosen; the validation figures the rule reads are recorded beside it.

A GPU only makes the sweep fast: the recipes are the CPU's (fp32, same sizes and schedules), and the one
chosen is measured on the CPU in benchmarks/few_shot.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

# Each recipe: TrainConfig options, plus "share" (WiSE-FT's fine-tuned share) and "taps" ("held": the head's
# tap columns stay at zero, as the engine does; "trainable": fine-tuning starts from the tapped head;
# "standardized": from the tapped head, reading its features standardized).
# Stage 2's defaults for 200 images until this sweep: SGD lr 0.003125, pretrained layers × 0.1 (BEFORE), onecycle,
# 10 epochs, batch 16, 224 px; since: AdamW 2.5e-4, every layer at that rate (the "adamw-body1" row).
BEFORE = {"optimizer": "sgd", "backbone_lr_mult": 0.1}
RECIPES: dict[str, dict] = {
    "now": BEFORE,
    "no-wise": {**BEFORE, "share": 1.0},
    "lr4-body1": {**BEFORE, "lr": 0.0125, "backbone_lr_mult": 1.0},
    "e30": {**BEFORE, "epochs": 30},
    "lr4-body1-e30": {**BEFORE, "lr": 0.0125, "backbone_lr_mult": 1.0, "epochs": 30},
    "lr4-body1-e30-nowise": {**BEFORE, "lr": 0.0125, "backbone_lr_mult": 1.0, "epochs": 30, "share": 1.0},
    "body1": {**BEFORE, "backbone_lr_mult": 1.0},
    "lr4": {**BEFORE, "lr": 0.0125},
    "bn-live": {**BEFORE, "freeze_bn_stats": False},
    "lr16-body0.25": {**BEFORE, "lr": 0.05, "backbone_lr_mult": 0.25},
    "adamw-body1": {"optimizer": "adamw", "lr": 2.5e-4, "backbone_lr_mult": 1.0},
    "lr4-body1-e30-160px": {**BEFORE, "lr": 0.0125, "backbone_lr_mult": 1.0, "epochs": 30, "img_size": 160},
    "lr4-body1-ls0": {**BEFORE, "lr": 0.0125, "backbone_lr_mult": 1.0, "label_smoothing": 0.0},
    "lr4-body1-e60": {**BEFORE, "lr": 0.0125, "backbone_lr_mult": 1.0, "epochs": 60},
    "taps-lr0.25": {**BEFORE, "taps": "trainable", "lr": 0.00078},  # collapsed to chance on the CPU: a check
    # after the sweep, on the CPU (draw 0, 2,000 test images): fine-tuning from the tapped head with its inputs
    # standardized still collapsed to one class (10.7%; stage 1 82.3%): the taps carry large gradients back into
    # the early blocks whatever the head's scale, which is why stage 2 holds them at zero
    "taps-standardized": {"taps": "standardized"},
    "taps-standardized-sgd": {**BEFORE, "taps": "standardized"},
}


def prepare(folder: Path, k: int, seeds: int, test_images: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import numpy as np
    from few_shot import TEST_SUBSET_SEED, draw, write_pngs

    from workbench.engine.data.fashion_mnist import load_fashion_mnist

    fashion = load_fashion_mnist()
    (train_x, train_y), (test_x, test_y) = fashion["train"], fashion["test"]
    pick = np.sort(np.random.default_rng(TEST_SUBSET_SEED).choice(len(test_y), test_images, replace=False))
    for seed in range(seeds):
        write_pngs(folder / f"draw{seed}" / "train", train_x, train_y, draw(train_y, k, seed))
        write_pngs(folder / f"draw{seed}" / "test", test_x, test_y, pick)


def _worker_init(home_root: str, threads: int) -> None:
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="home-", dir=home_root)
    import torch

    torch.set_num_threads(threads)


ORIGINALS: dict = {}  # a worker's unpatched engine functions


def run_one(task: tuple[str, str, dict, str]) -> dict:
    """One engine run of `recipe` on `data`; its events reduced to the figures the sweep compares."""
    import workbench.engine.training.probe_stage as probe_stage
    import workbench.engine.training.trainer as trainer
    from workbench.engine.training.config import TrainConfig
    from workbench.engine.training.events import EpochEnded, Message, RunFinished

    PATCHED = [(trainer, "FINE_TUNED_SHARE"), (trainer, "fine_tuning_replaces_stage1"),
               (trainer, "keep_taps_out_of_fine_tuning"), (probe_stage, "_start_fine_tuning_from_last_layer")]
    name, data, recipe, device = task
    options = dict(recipe)
    for module, attribute in PATCHED:  # a worker runs many tasks: undo the last one's patches
        ORIGINALS.setdefault((module, attribute), getattr(module, attribute))
        setattr(module, attribute, ORIGINALS[(module, attribute)])
    trainer.FINE_TUNED_SHARE = options.pop("share", trainer.FINE_TUNED_SHARE)
    taps_mode = options.pop("taps", "held")
    trainer.fine_tuning_replaces_stage1 = lambda *_figures: (True, "")  # the sweep judges every recipe's end
    if taps_mode in ("trainable", "standardized"):
        trainer.keep_taps_out_of_fine_tuning = lambda model: None

        def start_from_tapped_head(s, _l2, embedded, taps):
            from workbench.engine.features.embedder import linear_head
            from workbench.engine.training import checkpoint as ckpt

            if taps_mode == "standardized":  # the head reads standardized features: the same function, but
                # a gradient step no longer scales with the raw features' size (maxima of early blocks)
                import torch

                _, head = linear_head(s.model)
                x, flipped = embedded["train"]
                x = x if flipped is None else torch.cat([x, flipped])
                mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
                with torch.no_grad():
                    head.bias.add_(head.weight.float().cpu() @ mean)
                    head.weight.mul_(std.to(head.weight.device))
                head.register_forward_pre_hook(
                    lambda module, inputs: ((inputs[0] - mean.to(inputs[0].device)) / std.to(inputs[0].device),)
                )
            s.save(0, best=False, schedule_state=s.schedule.state_dict(), rng=ckpt.capture_rng_state(),
                   also=(ckpt.PROBE,))  # fmt: skip
            yield from ()

        probe_stage._start_fine_tuning_from_last_layer = start_from_tapped_head
    row: dict = {"recipe": name, "data": Path(data).name, "options": recipe, "val": {}}
    started = time.perf_counter()
    try:
        config = TrainConfig(data=[data], test_split=0, device=device, amp=False, **options)
        for event in trainer.Trainer(config).run():
            if isinstance(event, EpochEnded):
                row["val"][event.epoch] = event.val_acc
            elif isinstance(event, Message) and "fine-tuned network alone scored" in event.text:
                row["alone_message"] = event.text
            elif isinstance(event, RunFinished):
                row.update(status=event.status, reason=event.reason, test=event.test_accuracy)
    except Exception as exc:  # noqa: BLE001 - a failed recipe is a row, not the end of the sweep
        row.update(status="raised", reason=f"{type(exc).__name__}: {exc}")
    row["seconds"] = round(time.perf_counter() - started, 1)
    if (log := re.search(r"details in (\S+error\.log)", row.get("reason") or "")) and Path(log[1]).is_file():
        row["error_log"] = Path(log[1]).read_text()[-3000:]  # the traceback, which stays on the machine
    return row


def sweep(
    folder: Path, device: str, workers: int, out: Path, only: list[str] | None, img_size: int | None = None
) -> None:
    """Every recipe on every draw; `img_size` sets every run's side (the CPU's choice for the draws' size,
    where the GPU's would differ: 224 px on a GPU, 96 px on a 2-core CPU for 900 training images)."""
    import multiprocessing as mp

    draws = sorted(str(p) for p in folder.glob("draw*"))
    recipes = {name: RECIPES[name] for name in (only or RECIPES)}
    side = {"img_size": img_size} if img_size else {}
    tasks = [("stage1", d, {"quick": True, **side}, device) for d in draws]
    tasks += [(name, d, {**side, **recipe}, device) for name, recipe in recipes.items() for d in draws]
    home_root = tempfile.mkdtemp(prefix="stage2-sweep-")
    rows = []
    with mp.get_context("spawn").Pool(workers, _worker_init, (home_root, max(1, (os.cpu_count() or 1) // workers))) as pool, out.open("a") as log:
        for row in pool.imap_unordered(run_one, tasks):
            rows.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"{row['recipe']:24} {row['data']}: test {row.get('test')} ({row['seconds']} s) "
                  f"{row.get('status')} {row.get('reason') or ''}"[:300], flush=True)  # fmt: skip
            if row.get("error_log") and not any(r.get("error_log") for r in rows[:-1]):
                print(row["error_log"], flush=True)
    print("\n" + summarize(rows))


def summarize(rows: list[dict]) -> str:
    """A markdown table: per recipe, its options, mean test accuracy, the gain over stage 1 draw by draw, and
    the validation figures of the runs (the last epoch's, after WiSE-FT)."""
    stage1 = {r["data"]: r.get("test") for r in rows if r["recipe"] == "stage1"}
    by_recipe: dict[str, list[dict]] = {}
    for r in rows:
        by_recipe.setdefault(r["recipe"], []).append(r)
    lines = [
        "| recipe | options | test % (mean) | vs stage 1, draw by draw | last validation % | s per run |",
        "|---|---|---|---|---|---|",
    ]
    for name, group in by_recipe.items():
        done = sorted((r for r in group if r.get("test") is not None), key=lambda r: r["data"])
        options = ", ".join(f"{k}={v}" for k, v in group[0]["options"].items()) or "(defaults)"
        if not done:
            lines.append(f"| {name} | {options} | failed: {group[0].get('reason')} | | | |")
            continue
        mean = sum(r["test"] for r in done) / len(done)
        gains = " ".join(
            f"{100 * (r['test'] - stage1[r['data']]):+.1f}" for r in done if stage1.get(r["data"]) is not None
        )
        last_val = " ".join(f"{100 * r['val'][max(r['val'], key=int)]:.0f}" for r in done if r["val"])
        seconds = sum(r["seconds"] for r in done) / len(done)
        lines.append(f"| {name} | {options} | {100 * mean:.2f} | {gains} | {last_val} | {seconds:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("folder", type=Path)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--test-images", type=int, default=10_000)
    s = sub.add_parser("sweep")
    s.add_argument("folder", type=Path)
    s.add_argument("--device", default="auto")
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--out", type=Path, default=Path("stage2_sweep.jsonl"))
    s.add_argument("--only", nargs="*", help="recipe names (default: all)")
    s.add_argument("--img-size", type=int, help="every run's input side (default: the engine's choice)")
    t = sub.add_parser("summarize", help="the markdown table of a sweep's results file")
    t.add_argument("results", type=Path)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.folder, args.k, args.seeds, args.test_images)
    elif args.command == "summarize":
        print(summarize([json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]))
    else:
        sweep(args.folder, args.device, args.workers, args.out, args.only, args.img_size)


if __name__ == "__main__":
    main()
