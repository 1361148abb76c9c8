"""`workbench data`: dataset helpers (Fashion-MNIST export, folder check, review of suspected label errors)."""

from __future__ import annotations

import argparse

from workbench.cli import arguments
from workbench.cli.output import Output


def register(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="dataset helpers")
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    fm = sub.add_parser("fashion-mnist", help="write Fashion-MNIST as PNG class folders")
    fm.add_argument("dest", help="destination folder (gets train/<class>/*.png and test/<class>/*.png)")
    fm.add_argument("--source", help="folder with the IDX files (default: Debian's dataset-fashion-mnist)")
    fm.add_argument(
        "--per-class", type=int, metavar="N", help="the first N images of each class in each split"
    )
    fm.add_argument("--json", action="store_true")
    fm.set_defaults(handler=run_fashion_mnist)

    check = sub.add_parser("check", help="scan a folder and report classes, splits and problem files")
    check.add_argument("folder", nargs="+", help="a dataset folder, or several folders (each one class)")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=run_check)

    review = sub.add_parser(
        "review",
        help="rank the images whose folder's label looks wrong (a pretrained network's features, cross-validated)",
    )
    review.add_argument("folder", nargs="+", help="a dataset folder, or several folders (each one class)")
    review.add_argument(
        "--top", type=arguments.whole_number(1, 1_000_000), default=20, metavar="N", help="suspects listed (default 20)"
    )
    review.add_argument("--device", default="auto", type=arguments.device)
    review.add_argument("--json", action="store_true")
    review.set_defaults(handler=run_review)


def run_fashion_mnist(args: argparse.Namespace) -> int:
    from workbench.engine.data.fashion_mnist import export_fashion_mnist

    out = Output(args.json)
    counts = export_fashion_mnist(args.dest, source=args.source, per_class=args.per_class)
    out.say(", ".join(f"{n} {split} images" for split, n in counts.items()) + f" written to {args.dest}")
    out.result({"dest": args.dest, "images": counts})
    return 0


def run_check(args: argparse.Namespace) -> int:
    from workbench.engine.data import scan_dataset

    out = Output(args.json)
    index = scan_dataset(args.folder if len(args.folder) > 1 else args.folder[0])
    counts = index.counts()
    out.say(f"layout: {index.layout}; {len(index.classes)} classes; {len(index.samples)} images")
    for i, name in enumerate(index.classes):
        out.say(
            f"  {name:<24} " + "  ".join(f"{split} {per_class[i]:>6}" for split, per_class in counts.items())
        )
    for problem in index.problems:
        out.warn(f"{problem.path}: {problem.reason}")
    for warning in index.warnings:
        out.warn(warning)
    out.result(
        {
            "layout": index.layout,
            "classes": index.classes,
            "counts": counts,
            "problems": [{"path": p.path, "reason": p.reason} for p in index.problems],
            "warnings": index.warnings,
        }
    )
    return 0


def run_review(args: argparse.Namespace) -> int:
    """Suspected label errors, most suspect first; nothing is moved or deleted."""
    from workbench.engine.review import embed_dataset, out_of_fold_probabilities, rank_label_issues

    out = Output(args.json)
    embedded = embed_dataset(args.folder, device=args.device)
    for note in embedded.notes:
        out.say(note)
    for problem in embedded.problems:
        out.warn(f"skipped {problem.path}: {problem.reason}")
    probabilities = out_of_fold_probabilities(
        embedded.features, embedded.labels, len(embedded.classes), mirrored=embedded.mirrored
    )
    issues = rank_label_issues(probabilities, embedded.labels)[: args.top]
    classes = embedded.classes
    out.say(f"{len(embedded.paths)} images; the {len(issues)} whose label looks least likely (score: its label's "
            "probability over its class's typical one; 1 = typical):")
    for issue in issues:
        out.say(
            f"  {issue.score:5.2f}  {embedded.paths[issue.index]}: in '{classes[issue.given]}' "
            f"({issue.given_probability:.0%}), looks like '{classes[issue.suggested]}' ({issue.suggested_probability:.0%})"
        )
    out.result(
        {
            "images": len(embedded.paths),
            "classes": classes,
            "size": embedded.size,
            "label_issues": [
                {
                    "path": embedded.paths[i.index],
                    "split": embedded.splits[i.index],
                    "label": classes[i.given],
                    "suggested": classes[i.suggested],
                    "score": i.score,
                    "label_probability": i.given_probability,
                    "suggested_probability": i.suggested_probability,
                }
                for i in issues
            ],
        }
    )
    return 0
