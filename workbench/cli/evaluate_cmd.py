"""`workbench eval` and `workbench predict`."""

from __future__ import annotations

import argparse

from workbench.cli import arguments
from workbench.cli.output import Output
from workbench.engine.training.event_text import percent


def register(commands: argparse._SubParsersAction) -> None:
    ev = commands.add_parser("eval", help="evaluate a trained model on a folder of labeled images")
    ev.add_argument(
        "model", metavar="RUN_OR_CHECKPOINT", help="run id (or 'last'), run folder or checkpoint file"
    )
    ev.add_argument("data", help="labeled folder; its test split when it has one, else every image")
    ev.add_argument("--split", default="auto", choices=("auto", "all", "train", "val", "test"))
    ev.add_argument("--device", default="cpu", type=arguments.device)
    ev.add_argument("--json", action="store_true")
    ev.add_argument(
        "--no-tta",
        action="store_true",
        help="judge each image once, without averaging it with its mirror (a run trained with flips "
        "is otherwise flip-averaged)",
    )
    ev.set_defaults(handler=run_eval)

    pr = commands.add_parser("predict", help="classify images with a trained model")
    pr.add_argument("model", metavar="RUN_OR_CHECKPOINT")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    pr.add_argument("--top-k", type=arguments.whole_number(1, 1000), default=3, help="classes listed per image")
    pr.add_argument("--csv", metavar="FILE", type=arguments.output_file, help="also write the predictions as CSV")
    pr.add_argument(
        "--trust-torchscript",
        action="store_true",
        help="allow a TorchScript file from outside your runs (loading it runs its code)",
    )
    pr.add_argument("--device", default="cpu", type=arguments.device)
    pr.add_argument("--json", action="store_true")
    pr.add_argument(
        "--no-tta",
        action="store_true",
        help="judge each image once, without averaging it with its mirror (a run trained with flips "
        "is otherwise flip-averaged)",
    )
    pr.set_defaults(handler=run_predict)


def run_eval(args: argparse.Namespace) -> int:
    from workbench.engine.evaluation.evaluate import evaluate

    out = Output(args.json)
    report, predictions = evaluate(
        args.model, args.data, split=args.split, device=args.device, tta=not args.no_tta
    )
    for problem in predictions.problems:
        out.warn(f"skipped {problem.path}: {problem.reason}")
    out.say(report.format_table())
    low, high = report.extra["accuracy_interval_95"]
    out.say(
        f"{report.num_images} images ({report.extra['split']} split); accuracy {percent(report.accuracy, 2)} "
        f"(95% interval {percent(low, 2)}–{percent(high, 2)})"
        + (f"; top-5 {percent(report.top5, 2)}" if report.top5 is not None else "")
        + ("; each image averaged with its mirror (--no-tta: single view)" if report.extra.get("flip_averaged") else "")
    )
    for true, predicted, count in report.most_confused(3):
        out.say(f"  most confused: {true} → {predicted} ({count}×)")
    out.say(calibration_line(report.extra["calibration"]))
    if report.extra["split_note"]:
        out.warn(report.extra["split_note"])
    if report.extra.get("warning"):
        out.warn(report.extra["warning"])
    out.result(report.to_dict())
    return 0


def calibration_line(calibration: dict) -> str:
    """E.g. "calibration: temperature 1.43 fitted on validation; expected calibration error 6.1% → 1.9%"."""
    ece = f"expected calibration error {percent(calibration['ece_before'], 1)}"
    if not calibration["fitted"]:
        return f"calibration: {calibration['note']}; {ece}"
    return (
        f"calibration: temperature {calibration['temperature']:.2f} fitted on validation; {ece} → "
        f"{percent(calibration['ece_after'], 1)} on these images (15 bins)"
    )


def run_predict(args: argparse.Namespace) -> int:
    from workbench.engine.evaluation.out_of_domain import WARNING
    from workbench.engine.evaluation.predict import Predictor

    out = Output(args.json)
    predictor = Predictor(args.model, device=args.device, trust_code=args.trust_torchscript, tta=not args.no_tta)
    results = predictor.predict(args.images, top_k=args.top_k)
    out.say(predictor.probability_note)
    out.say(predictor.domain_note)
    for result in results:
        if result.error:
            out.warn(f"{result.path}: {result.error}")
            continue
        ranked = ", ".join(f"{name} {100 * p:.1f}%" for name, p in result.top)
        out.say(f"{result.path}: {ranked}" + (f"  ⚠ {WARNING}" if result.out_of_domain else ""))
    flagged = sum(1 for r in results if r.out_of_domain)
    if flagged:
        out.warn(f"{flagged} of {len(results)} image(s) are {WARNING}: their classes are guesses")
    if args.csv:
        from workbench.engine.evaluation.predict import write_predictions_csv

        out.say(f"predictions written to {write_predictions_csv(results, args.csv)}")
    out.result([r.to_dict() for r in results])
    return 0 if any(not r.error for r in results) else 1
