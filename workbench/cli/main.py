"""Argument parsing and dispatch; each command lives in its own module."""

from __future__ import annotations

import argparse
import sys

from workbench.cli import data_cmd, evaluate_cmd, export_cmd, inspect_cmd, models_cmd, runs_cmd, train_cmd
from workbench.cli.output import cli_message, point_at_devnull


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="CNN Workbench: train, fine-tune and inspect CNNs on folders of labeled images. "
        "Run without arguments to open the desktop app.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (train_cmd, evaluate_cmd, export_cmd, inspect_cmd, runs_cmd, data_cmd, models_cmd):
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    _tolerate_any_file_name()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    from workbench.engine.errors import WorkbenchError

    try:
        return args.handler(args)
    except WorkbenchError as exc:
        print(f"error: {cli_message(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `workbench models | head -1`: the reader has all it wanted
        point_at_devnull(sys.stdout)
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _tolerate_any_file_name() -> None:
    """File names are bytes on POSIX and Python hands non-UTF-8 ones over as lone surrogates, which a UTF-8
    stream refuses to print. Show those bytes escaped (`caf\\xe9`) rather than fail on them."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")

