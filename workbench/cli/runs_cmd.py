"""`workbench runs`: the run registry."""

from __future__ import annotations

import argparse
import time

from workbench.cli.output import Output, cli_message
from workbench.engine.evaluation.figures import HELD_OUT_VALIDATION, validation_held_out
from workbench.engine.training.event_text import percent

# Statuses whose reason is the point of the line: the run cannot be used as listed, or did not finish.
_EXPLAINED = ("missing", "damaged", "failed", "interrupted")


def register(commands: argparse._SubParsersAction) -> None:
    runs = commands.add_parser("runs", help="list training runs")
    runs.add_argument("--json", action="store_true")
    runs.add_argument("--delete", metavar="RUN", help="delete a run and its folder")
    runs.set_defaults(handler=run_runs)


def run_runs(args: argparse.Namespace) -> int:
    from workbench.engine.runs import RunRegistry

    out = Output(args.json)
    registry = RunRegistry()
    try:
        if args.delete:
            record = registry.get(args.delete)
            registry.delete(record.run_id)
            out.say(f"deleted run {record.run_id}")
            out.result({"deleted": record.run_id})
            return 0
        records = registry.list_runs()
    finally:  # a rebuilt registry or a damaged row is news even when the command then fails
        for warning in registry.warnings:
            out.warn(warning)
    if not records:
        out.say("no runs yet: `workbench train FOLDER` starts one")
    any_held_out = False  # a run whose validation figure is the held-out head's, not the saved model's
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        held_out = validation_held_out(r.metrics)
        any_held_out |= held_out
        out.say(
            f"{r.run_id}  {r.status:<11} {r.model:<18} epochs {r.epochs_done:<3} best val "
            f"{percent(r.best_val_acc, 2):>7}{'*' if held_out else ' '} {when}  {r.name}"
            + (f"  ({cli_message(r.reason)})" if r.status in _EXPLAINED else "")
        )
    if any_held_out:
        out.say(f"* {HELD_OUT_VALIDATION}")
    out.result(
        [
            {k: v for k, v in r.to_dict().items() if k != "metrics"} | {"epochs": r.epochs_done}
            for r in records
        ]
    )
    return 0
