"""How the CLI talks: human lines, a progress bar on terminals, and one JSON object as stdout's last line."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from workbench.engine.names import display_name


def cli_message(message: object) -> str:
    """An engine message (error, event text) with the options it names spelled as flags (`--img-size 32`)."""
    from workbench.engine.errors import worded
    from workbench.engine.training.config import command_line_flag

    return worded(message, command_line_flag)


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json
        # Under torchrun every rank runs this CLI; only rank 0 speaks.
        self.quiet = int(os.environ.get("RANK", "0")) > 0
        # With --json, stdout carries only the final object; human text goes to stderr.
        self.human = sys.stderr if as_json else sys.stdout
        self.interactive = self.human.isatty() and not self.quiet
        self._closed: set[Any] = set()

    def say(self, text: str) -> None:
        if not self.quiet:
            self._print(text, self.human)

    def warn(self, text: str) -> None:
        if not self.quiet:
            self._print(f"warning: {text}", sys.stderr)

    def error(self, text: str) -> None:
        """What failed: always on stderr, so a pipe or a --json reader on stdout never takes it for output."""
        if not self.quiet:
            self._print(f"error: {text}", sys.stderr)

    def result(self, obj: Any) -> None:
        if self.as_json and not self.quiet:
            self._print(json.dumps(_json_safe(obj)), sys.stdout)

    def _print(self, text: str, stream: Any) -> None:
        """A reader that went away (`workbench train … | head -3`) stops the output, never the work: the run
        goes on to its checkpoint, like a training script whose terminal was closed."""
        if stream in self._closed:
            return
        try:
            print(display_name(text), file=stream, flush=True)
        except BrokenPipeError:
            self._closed.add(stream)
            point_at_devnull(stream)


def point_at_devnull(stream: Any) -> None:
    """Later writes (and the interpreter's last flush) to a closed pipe go nowhere instead of raising."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _json_safe(obj: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj
