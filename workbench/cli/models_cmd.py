"""`workbench models` and `workbench summary`."""

from __future__ import annotations

import argparse

from workbench.cli import arguments
from workbench.cli.output import Output


def register(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list the model zoo")
    models.add_argument("--json", action="store_true")
    models.set_defaults(handler=run_models)

    summary = commands.add_parser(
        "summary", help="layer table: output shapes, parameters, MACs, receptive field"
    )
    summary.add_argument("model")
    summary.add_argument("--img-size", type=arguments.image_size(), help="input side (default: the model's usual size)")
    summary.add_argument("--in-channels", type=int, default=3, choices=(1, 3))
    summary.add_argument("--classes", type=arguments.whole_number(1, 100_000), default=10)
    summary.add_argument("--json", action="store_true")
    summary.set_defaults(handler=run_summary)


def run_models(args: argparse.Namespace) -> int:
    from workbench.engine.models import list_models

    out = Output(args.json)
    specs = list_models()
    for s in specs:
        out.say(
            f"{s.name:<22} {s.family:<14} {s.year}  {'pretrained' if s.pretrained else '          '}  "
            f"{s.default_size:>3}px  {s.description}"
        )
    out.result([s.to_dict() for s in specs])
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from workbench.engine.models import get_spec, summarize

    out = Output(args.json)
    size = args.img_size or get_spec(args.model).default_size
    summary = summarize(args.model, img_size=size, in_channels=args.in_channels, num_classes=args.classes)
    out.say(summary.format_table())
    out.result(summary.to_dict())
    return 0
