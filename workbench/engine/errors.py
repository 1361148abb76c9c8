"""Errors the engine raises for problems a user can fix; clients show their message, not a traceback."""

from __future__ import annotations

import json
import os
from typing import Any


class WorkbenchError(Exception):
    """Base class: the message is written for the user and names the file or value at fault."""


class DatasetError(WorkbenchError):
    """The dataset folder cannot be used (missing, empty, a single class, no images...)."""


class BadImageError(WorkbenchError):
    """One image file cannot be decoded; carries the path and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelError(WorkbenchError):
    """Unknown model name, bad model arguments, or an input too small for the model."""


class WeightsError(WorkbenchError):
    """A weights file or checkpoint cannot be loaded (missing, mismatched, unsafe, offline...)."""


class ConfigError(WorkbenchError):
    """A training option has a value the engine cannot use."""


class RunNotFoundError(WorkbenchError):
    """No run or checkpoint matches what the user named."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-blank line of an exception's message, at most `limit` characters, for a one-line error.

    Falls back to the exception's type name: some libraries raise with an empty message (torch reading a
    zero-byte file raises a bare EOFError), and an error handler must never fail on that itself.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__


class OptionError(ConfigError):
    """One option with a value the engine cannot use; the message names the option, the value and what is allowed."""

    def __init__(self, option: str, value: Any, allowed: str):
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(f"--{option.replace('_', '-')} {shown_value(value)}: {allowed}")

    def in_file(self, path: str | os.PathLike) -> ConfigError:
        """The same fault, worded for a TOML file, where the user wrote `option = value`."""
        return ConfigError(f"{os.fsdecode(path)}: {self.option} = {shown_value(self.value)}: {self.allowed}")


def shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
