"""Argument types that check a value as argparse reads it, by the engine's rules, so a bad option is refused
before any work starts with a message naming the option, the value and what is allowed.

argparse prints `workbench predict: error: argument --top-k: -1: must be in [1, 1000]` and exits 2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from workbench.engine.errors import OptionError
from workbench.engine.training.config import DEVICES, IMG_SIZE_RANGE, Rule


def whole_number(low: int, high: int) -> Callable[[str], int]:
    return _checked(int, Rule((int,), low=low, high=high), "a whole number")


def number(low: float, high: float) -> Callable[[str], float]:
    return _checked(float, Rule((float,), low=low, high=high), "a number")


def image_size() -> Callable[[str], int]:
    return whole_number(*IMG_SIZE_RANGE)


def from_rule(rule: Rule) -> dict[str, Any]:
    """argparse keywords (`type`, `choices`) for an engine option's rule."""
    if rule.choices and not any(kind is int for kind in rule.kinds):
        return {"choices": rule.choices} if rule.choices != DEVICES else {"type": device}
    if int in rule.kinds:
        return {"type": _checked(int, rule, "a whole number"), **({"choices": rule.choices} if rule.choices else {})}
    if float in rule.kinds:
        return {"type": _checked(float, rule, "a number")}
    return {}


def _checked(convert: Callable[[str], Any], rule: Rule, kind: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: must be {kind}") from None
        try:
            rule.check("value", value)
        except OptionError as exc:
            raise argparse.ArgumentTypeError(f"{text}: {exc.allowed}") from None
        return value

    parse.__name__ = kind  # argparse names the type in its own messages
    return parse


def device(text: str) -> str:
    """A device this machine has: `cuda` without a GPU is refused now, not after the data is read."""
    from workbench.engine.device import pick_device

    try:
        pick_device(text)
    except OptionError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc.allowed}") from None
    return text


def output_file(text: str) -> str:
    """A file to write: not a folder, in a folder that exists and can be written to."""
    if not text:
        raise argparse.ArgumentTypeError("an empty file name")
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name inside it")
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise argparse.ArgumentTypeError(f"{text}: cannot write there (permission denied)")
    return text
