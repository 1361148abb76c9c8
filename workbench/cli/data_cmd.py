"""`workbench data`: dataset helpers (Fashion-MNIST export, folder check, review of suspect images)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from workbench.cli import arguments
from workbench.cli.output import Output

if TYPE_CHECKING:  # the review's engine modules load torch: only when the command runs
    from workbench.engine.review import DatasetEmbeddings, Review


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
        help="list suspect images: wrong labels, near-duplicates and leaks between splits, outliers (moves nothing)",
    )
    review.add_argument("folder", nargs="+", help="a dataset folder, or several folders (each one class)")
    review.add_argument(
        "--top", type=arguments.whole_number(1, 1_000_000), default=20, metavar="N",
        help="suspects listed of each kind (default 20)",
    )  # fmt: skip
    review.add_argument(
        "--kind", choices=("label", "duplicates", "outliers"), help="only this kind of suspect (default: all)"
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
    """Suspect images of each kind, most suspect first; nothing is moved or deleted."""
    from workbench.engine.review import KINDS, embed_dataset, review_dataset

    out = Output(args.json)
    embedded = embed_dataset(args.folder, device=args.device)
    for note in embedded.notes:
        out.say(note)
    for problem in embedded.problems:
        out.warn(f"skipped {problem.path}: {problem.reason}")
    for warning in embedded.warnings:  # the scan's: byte-identical files, odd names
        out.warn(warning)
    kinds = (args.kind,) if args.kind else KINDS
    review = review_dataset(embedded, kinds)
    for note in review.notes:
        out.warn(note)
    out.say(f"{len(embedded.paths)} images, {len(embedded.classes)} classes")
    result: dict = {"images": len(embedded.paths), "classes": embedded.classes, "size": embedded.size,
                    "notes": review.notes, "warnings": embedded.warnings}  # fmt: skip
    if "label" in kinds:
        result["label_issues"] = _show_label_issues(out, embedded, review, args.top)
    if "duplicates" in kinds:
        result["duplicates"] = _show_duplicates(out, embedded, review, args.top)
    if "outliers" in kinds:
        result["outliers"] = _show_outliers(out, embedded, review, args.top)
    out.result(result)
    return 0


def _show_label_issues(out: Output, embedded: DatasetEmbeddings, review: Review, top: int) -> list[dict]:
    classes = embedded.classes
    issues = review.label_issues[:top]
    if issues:
        out.say(f"label errors: the {len(issues)} images whose label looks least likely (score: its label's "
                "probability over its class's typical one; 1 = typical):")  # fmt: skip
    rows = []
    for i in issues:
        path, given, suggested = embedded.paths[i.index], classes[i.given], classes[i.suggested]
        suggestion = f"relabel to '{suggested}'" if suggested != given else "keep"
        out.say(f"  {i.score:5.2f}  {path}: in '{given}' ({i.given_probability:.0%}), looks like '{suggested}' "
                f"({i.suggested_probability:.0%}): {suggestion}?")  # fmt: skip
        rows.append({
            "path": path, "split": embedded.splits[i.index], "label": given, "suggested": suggested,
            "score": i.score, "label_probability": i.given_probability,
            "suggested_probability": i.suggested_probability, "suggestion": suggestion,
        })  # fmt: skip
    return rows


_DUPLICATE_ADVICE = {
    "leak": "the same picture in two splits inflates the later split's accuracy; remove it from {split}",
    "label": "the same picture under two labels ('{a}' and '{b}'): one is wrong; keep one",
    "copy": "a copy within '{a}' weighs twice; remove one",
}


def _show_duplicates(out: Output, embedded: DatasetEmbeddings, review: Review, top: int) -> dict:
    classes, paths = embedded.classes, embedded.paths
    counts = {kind: sum(p.kind == kind for p in review.duplicates) for kind in _DUPLICATE_ADVICE}
    out.say(f"near-duplicates: {len(review.duplicates)} pairs in {len(review.groups)} groups "
            f"({counts['leak']} across splits, {counts['label']} with two labels, {counts['copy']} within a class)"
            + (":" if review.duplicates else ""))  # fmt: skip
    # leaks and two-label pairs first: they cost accuracy or teach wrong labels; plain copies only weigh twice
    order = list(_DUPLICATE_ADVICE)
    pairs = sorted(review.duplicates, key=lambda p: (order.index(p.kind), -p.similarity))[:top]
    rows = []
    for p in pairs:
        a, b = classes[int(embedded.labels[p.first])], classes[int(embedded.labels[p.second])]
        suggestion = _DUPLICATE_ADVICE[p.kind].format(split=embedded.splits[p.second], a=a, b=b)
        out.say(f"  {p.kind:<5} {p.similarity:.3f}  {paths[p.first]} ~ {paths[p.second]}: {suggestion}")
        rows.append({
            "kind": p.kind, "similarity": p.similarity, "keep": paths[p.first], "copy": paths[p.second],
            "labels": [a, b], "splits": [embedded.splits[p.first], embedded.splits[p.second]],
            "suggestion": suggestion,
        })  # fmt: skip
    big = [g for g in review.groups if len(g) > 2][:top]
    for group in big[:3]:
        out.say(f"  a group of {len(group)} copies of one picture, e.g. {paths[group[0]]}")
    return {
        "pairs": len(review.duplicates), "groups": len(review.groups), "counts": counts, "listed": rows,
        "largest_groups": [{"size": len(g), "paths": [paths[i] for i in g[:10]]} for g in big],
    }  # fmt: skip


def _show_outliers(out: Output, embedded: DatasetEmbeddings, review: Review, top: int) -> list[dict]:
    classes, paths = embedded.classes, embedded.paths
    listed = review.outliers[:top]
    out.say(f"outliers: {len(review.outliers)} images unlike their class and every other (score: distance to "
            "the nearest class over that class's typical; 1 = typical)" + (":" if listed else ""))  # fmt: skip
    rows = []
    for o in listed:
        label = classes[int(embedded.labels[o.index])]
        if o.blank:
            suggestion = "a blank image: exclude it"
        elif o.nearest == int(embedded.labels[o.index]):
            suggestion = f"far even from the other '{label}' images: check that it is one, or exclude it"
        else:
            nearest = classes[o.nearest]
            suggestion = f"unlike every class (nearest '{nearest}'): exclude it unless it is a {label}"
        out.say(f"  {o.score:5.2f}  {paths[o.index]} in '{label}': {suggestion}")
        rows.append({
            "path": paths[o.index], "split": embedded.splits[o.index], "label": label, "score": o.score,
            "nearest": classes[o.nearest], "blank": o.blank, "suggestion": suggestion,
        })  # fmt: skip
    return rows
