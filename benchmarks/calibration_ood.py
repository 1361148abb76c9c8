"""Calibrated confidence and the out-of-domain warning, measured on real Fashion-MNIST and real foreign images.

    .venv/bin/python benchmarks/calibration_ood.py                 # 600 train / 300 test images per class
    .venv/bin/python benchmarks/calibration_ood.py --quick         # a smoke run (fewer images and epochs)

1. Fashion-MNIST PNG class folders (the first N train and test images of each class, Debian's
   dataset-fashion-mnist) are trained on as a user would: `Trainer` with course_cnn, seed 0, the default
   10% validation split. At the end the run fits the temperature and the out-of-domain thresholds on that
   validation split and stores them in best.pt (evaluation/confidence.py).
2. Calibration: `evaluate` on the test split gives the expected calibration error (15 equal-width bins)
   before (T = 1) and after the stored temperature.
3. Out-of-domain: every measure's score for the test images (in-domain: the share flagged is the false-alarm
   rate; the thresholds were set on validation for 5%) and for foreign real images (the share flagged is the
   detection rate): the desktop icons of Debian's Adwaita theme (/usr/share/icons/Adwaita, up to 400 PNGs,
   drawn with a fixed seed; the issue's "desktop icon dropped on a clothing model") and the workbench's own
   icons and screenshots (resources/). AUROC (in-domain test vs foreign) says how well each measure separates
   them at any threshold. The product figure is `Predictor.predict` on the same files, as `workbench predict`
   and the app's Predict tab run it.

Results: benchmarks/results/calibration_ood.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="workbench-calibration-ood-"))
os.environ["WORKBENCH_HOME"] = str(WORK / "home")  # before importing workbench

import torch  # noqa: E402

from workbench.engine.data import decode_image  # noqa: E402
from workbench.engine.data.fashion_mnist import export_fashion_mnist  # noqa: E402
from workbench.engine.evaluation import out_of_domain as ood  # noqa: E402
from workbench.engine.evaluation.evaluate import evaluate  # noqa: E402
from workbench.engine.evaluation.predict import Predictor  # noqa: E402
from workbench.engine.evaluation.tta import for_evaluation  # noqa: E402
from workbench.engine.training.checkpoint import load_model  # noqa: E402
from workbench.engine.training.config import TrainConfig  # noqa: E402
from workbench.engine.training.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ADWAITA = Path("/usr/share/icons/Adwaita")
ICONS_MAX = 400


def foreign_images() -> dict[str, list[Path]]:
    """Real images that are not clothing: desktop icons and the workbench's own icons and screenshots."""
    icons = sorted(p for p in ADWAITA.rglob("*.png") if p.stat().st_size > 1024) if ADWAITA.is_dir() else []
    random.Random(0).shuffle(icons)
    own = sorted((ROOT / "resources" / "icons").rglob("*.png")) + sorted((ROOT / "resources" / "screenshots").glob("*.png"))
    found = {"Adwaita desktop icons": icons[:ICONS_MAX], "workbench icons and screenshots": own}
    return {name: paths for name, paths in found.items() if paths}


def auroc(inside: torch.Tensor, outside: torch.Tensor) -> float:
    """P(score of a foreign image > score of an in-domain one), ties counting half."""
    greater = (outside[:, None] > inside[None, :]).double().mean().item()
    ties = (outside[:, None] == inside[None, :]).double().mean().item()
    return greater + ties / 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    train_per_class, test_per_class, epochs = (150, 100, 2) if args.quick else (600, 300, 5)
    torch.manual_seed(0)
    try:
        # ---- 1. train ------------------------------------------------------------------------------------
        data = WORK / "fashion-mnist"
        export_fashion_mnist(data, per_class={"train": train_per_class, "test": test_per_class})
        started = time.perf_counter()
        config = TrainConfig(data=str(data), model="course_cnn", epochs=epochs, seed=0)
        events = list(Trainer(config).run())
        finished = events[-1]
        assert finished.status == "finished", finished
        train_s = time.perf_counter() - started
        for event in events:
            if type(event).__name__ == "Message" and ("calibrat" in event.text or "validation images for" in event.text):
                print(event.text, flush=True)
        checkpoint = Path(finished.checkpoint)

        # ---- 2. calibration on the test split ----------------------------------------------------------
        report, _ = evaluate(checkpoint, data, split="test")
        calibration = report.extra["calibration"]

        # ---- 3. out-of-domain: every measure, by hand from the stored record ---------------------------
        model, meta = load_model(checkpoint)
        detector = ood.OutOfDomain.from_dict(meta[ood.KEY])
        pre = meta["preprocessing"]
        mean, std = torch.tensor(pre["mean"]).view(-1, 1, 1), torch.tensor(pre["std"]).view(-1, 1, 1)
        judged = for_evaluation(model, meta["config"])

        def scores_of(paths: list[Path]) -> dict[str, torch.Tensor]:
            pixels = torch.stack([decode_image(p, pre["size"], pre["channels"]) for p in paths]).float() / 255
            batches = [((pixels[i : i + 256] - mean) / std, None) for i in range(0, len(pixels), 256)]
            logits, features, _ = ood.logits_and_features(judged, model, batches)
            return {
                ood.FEATURE_MEASURE: ood.feature_distance_score(features, detector.class_means),
                ood.ENERGY: ood.energy_score(logits),
                ood.MAX_PROBABILITY: ood.max_probability_score(logits, detector.temperature),
            }

        test_paths = sorted((data / "test").rglob("*.png"))
        foreign = foreign_images()
        inside = scores_of(test_paths)
        outside = {name: scores_of(paths) for name, paths in foreign.items()}
        measures = {}
        for measure in ood.MEASURES:
            threshold = detector.thresholds[measure]
            measures[measure] = {
                "threshold": threshold,
                "test_false_alarm_rate": (inside[measure] > threshold).double().mean().item(),
                **{
                    f"detection_rate[{name}]": (scores[measure] > threshold).double().mean().item()
                    for name, scores in outside.items()
                },
                **{f"auroc[{name}]": auroc(inside[measure], scores[measure]) for name, scores in outside.items()},
            }

        # ---- the product: Predictor, as `workbench predict` and the app run it -------------------------
        predictor = Predictor(checkpoint)
        started = time.perf_counter()
        on_test = predictor.predict(test_paths)
        product = {
            "measure": predictor.detector.measure,
            "test_false_alarm_rate": sum(bool(r.out_of_domain) for r in on_test) / len(on_test),
        }
        for name, paths in foreign.items():
            results = predictor.predict(paths)
            product[f"detection_rate[{name}]"] = sum(bool(r.out_of_domain) for r in results) / len(results)
        predict_s = time.perf_counter() - started
    finally:
        shutil.rmtree(WORK, ignore_errors=True)

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "setup": {
            "model": "course_cnn", "epochs": epochs, "train_images_per_class": train_per_class,
            "test_images": len(test_paths), "validation_images": detector.validation_images,
            "foreign_images": {name: len(paths) for name, paths in foreign.items()},
            "false_alarm_rate_target": detector.false_alarm_rate,
        },  # fmt: skip
        "test_accuracy": report.accuracy,
        "temperature": calibration["temperature"],
        "calibration_note": calibration["note"],
        "test_ece_before": calibration["ece_before"],
        "test_ece_after": calibration["ece_after"],
        "validation_ece_before": calibration["validation"]["ece_before"],
        "validation_ece_after": calibration["validation"]["ece_after"],
        "measures": measures,
        "product": product,
        "train_s": round(train_s, 1),
        "predict_s": round(predict_s, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "calibration_ood.json").write_text(json.dumps(result, indent=2) + "\n")
    names = list(foreign)
    md = [
        f"course_cnn, {epochs} epochs on {train_per_class} Fashion-MNIST images per class (train {train_s:.0f} s, "
        f"{result['machine']}); test accuracy {report.accuracy:.1%} on {len(test_paths)} test images.",
        "",
        f"Calibration: {calibration['note']}. Expected calibration error (15 bins) on the test split "
        f"{calibration['ece_before']:.1%} → {calibration['ece_after']:.1%} "
        f"(validation {calibration['validation']['ece_before']:.1%} → {calibration['validation']['ece_after']:.1%}).",
        "",
        f"Out-of-domain, thresholds set on {detector.validation_images} validation images for "
        f"{detector.false_alarm_rate:.0%} false alarms:",
        "",
        "| measure | false alarms (test) | " + " | ".join(f"detected: {n} ({len(foreign[n])}) | AUROC {n}" for n in names) + " |",
        "|---|---|" + "---|---|" * len(names),
        *(
            f"| {m}{' (used)' if m == product['measure'] else ''} | {r['test_false_alarm_rate']:.1%} | "
            + " | ".join(f"{r[f'detection_rate[{n}]']:.1%} | {r[f'auroc[{n}]']:.3f}" for n in names)
            + " |"
            for m, r in measures.items()
        ),
        "",
        f"`workbench predict` (Predictor, {product['measure']}): false alarms on test {product['test_false_alarm_rate']:.1%}; "
        + "; ".join(f"detected {product[f'detection_rate[{n}]']:.1%} of {n}" for n in names)
        + f" ({predict_s:.1f} s for all of them).",
    ]
    (RESULTS / "calibration_ood.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
