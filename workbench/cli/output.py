"""How the CLI talks: human lines, a progress bar on terminals, and one JSON object as stdout's last line."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any


class Output:
    def __init__(self, as_json: bool):
        self.as_json = as_json
        # Under torchrun every rank runs this CLI; only rank 0 speaks.
        self.quiet = int(os.environ.get("RANK", "0")) > 0
        # With --json, stdout carries only the final object; human text goes to stderr.
        self.human = sys.stderr if as_json else sys.stdout
        self.interactive = self.human.isatty() and not self.quiet

    def say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.human, flush=True)

    def warn(self, text: str) -> None:
        if not self.quiet:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    def result(self, obj: Any) -> None:
        if self.as_json and not self.quiet:
            print(json.dumps(_json_safe(obj)), flush=True)


def _json_safe(obj: Any) -> Any:
    """NaN/inf are not JSON: they become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def format_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
