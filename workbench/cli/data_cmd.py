"""`workbench data`: dataset helpers (Fashion-MNIST export, folder check)."""

from __future__ import annotations

import argparse

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
