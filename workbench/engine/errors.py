"""Errors the engine raises for problems a user can fix; clients show their message, not a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_NO_VALUE: Any = object()


@dataclass(frozen=True)
class Mention:
    """An option named inside a message. Each client names it its own way: the CLI as a flag
    (`--img-size 32`, `--no-tta`), the app as the control that sets it ("Image size 32"); no client rewrites
    another's wording."""

    option: str  # the field name (TrainConfig's, or a command's own option)
    value: Any = _NO_VALUE  # the value it names, if any
    as_given: bool = False  # the user's own (faulty) value: shown exactly, strings quoted

    @property
    def has_value(self) -> bool:
        return self.value is not _NO_VALUE

    def shown(self) -> str:
        """The value as text ("" when the mention names the option alone)."""
        if not self.has_value:
            return ""
        return shown_value(self.value) if self.as_given or isinstance(self.value, bool) else str(self.value)

    def flag(self) -> str:
        """The plain command-line spelling (`--img-size 32`); the CLI refines it from the declarations."""
        name = self.option.replace("_", "-")
        if self.value is False and not self.as_given:  # a switch turned off
            return f"--no-{name}"
        if self.value is True and not self.as_given:
            return f"--{name}"
        return f"--{name} {self.shown()}" if self.has_value else f"--{name}"


@dataclass(frozen=True)
class Action:
    """Something the user can do about a run, named inside a message: the CLI says the command
    (`workbench train --resume RUN`), the app the button that does it ("Continue training (Train tab)")."""

    kind: str  # one of ACTIONS
    run_id: str

    def flag(self) -> str:
        return ACTIONS[self.kind].format(run=self.run_id)


ACTIONS = {  # the command line's way of doing each
    "continue": "`workbench train --resume {run}`",
    "start_from": "`workbench train DATA --weights {run}`",
    "delete": "`workbench runs --delete {run}`",
}

Part = Mention | Action
Namer = Callable[[Part], str]


class Text(str):
    """A message that names options (`Mention`s) among its words. As a `str` it reads as the command line
    says it, so it travels unchanged wherever text does (an exception's message, an event's text or reason,
    a log line); `worded(namer)` says it in another client's words. `str()` of it keeps the parts, so
    `str(exc)` of an error raised with one still carries them."""

    parts: tuple[str | Part, ...]

    def __new__(cls, *parts: str | Part) -> Text:
        text = super().__new__(cls, "".join(p if isinstance(p, str) else p.flag() for p in parts))
        text.parts = parts
        return text

    def __str__(self) -> str:
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickled (a worker process's error) with its parts
        return (Text, self.parts)

    def worded(self, name: Namer) -> str:
        return "".join(p if isinstance(p, str) else name(p) for p in self.parts)


_STORED_KEY = "cnn-workbench-text"  # marks a stored Text: {"cnn-workbench-text": [part, ...]}


def stored_text(message: str, clean: Callable[[str], str] = str) -> str:
    """`message` as one string to store (a registry row, run.json) that keeps the options it names: a Text
    becomes JSON of its parts, so each client can still say them its own way once read back (`text_from_stored`);
    plain text stays as it is. `clean` is applied to every piece of text (e.g. the registry's `printable`)."""
    if not isinstance(message, Text) or all(isinstance(part, str) for part in message.parts):
        return clean(message)

    def part(p: str | Part) -> Any:
        if isinstance(p, str):
            return clean(p)
        if isinstance(p, Action):
            return {"action": p.kind, "run": clean(p.run_id)}
        return {"option": p.option, "as_given": p.as_given} | ({"value": p.value} if p.has_value else {})

    return json.dumps({_STORED_KEY: [part(p) for p in message.parts]}, default=lambda value: clean(str(value)))


def text_from_stored(stored: str) -> str:
    """What `stored_text` stored: a Text with its Mentions again, or the plain text as it is (also anything
    that is not a well-formed stored Text)."""
    if not stored.startswith('{"' + _STORED_KEY):
        return stored
    try:
        parts = json.loads(stored)[_STORED_KEY]
        return Text(*(_part_from_stored(p) for p in parts))
    except (ValueError, KeyError, TypeError, AttributeError):
        return stored


def _part_from_stored(p: Any) -> str | Part:
    if isinstance(p, str):
        return p
    if "action" in p:
        if p["action"] not in ACTIONS or not isinstance(p["run"], str):
            raise ValueError("unknown action")
        return Action(p["action"], p["run"])
    if not isinstance(p["option"], str):
        raise ValueError("not an option")
    return Mention(p["option"], p.get("value", _NO_VALUE), bool(p.get("as_given", False)))


def counted(count: int, noun: str) -> str:
    """E.g. "1 epoch", "3 epochs", "1,200 images": a count with its noun in the right number."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def concat(*pieces: str) -> str:
    """`pieces` joined, keeping the Mentions of any `Text` among them (a plain join would drop them)."""
    if not any(isinstance(piece, Text) for piece in pieces):
        return "".join(pieces)
    return Text(*(part for piece in pieces for part in (piece.parts if isinstance(piece, Text) else (piece,))))


def worded(message: object, name: Namer) -> str:
    """`message` (an exception, a `Text` or plain text) with every option it names said by `name`."""
    text = str(message)
    return text.worded(name) if isinstance(text, Text) else text


class WorkbenchError(Exception):
    """Base class: the message is written for the user and names the file or value at fault. Options it
    names are `Mention`s (`WorkbenchError("use ", Mention("img_size", 32), " or more")`), so each client
    names them its own way; so are commands it suggests (`Action`)."""

    def __init__(self, *parts: Any) -> None:
        if any(isinstance(part, Mention | Action) for part in parts):
            parts = (Text(*(p if isinstance(p, Mention | Action) else str(p) for p in parts)),)
        super().__init__(*parts)


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
    """One option with a value the engine cannot use: `option` (its field name), `value` and what is
    `allowed`. The message names the option as a `Mention`: the CLI says `--img-size 4: must be in [8, 1024]`,
    the app "Image size 4: must be in [8, 1024]"."""

    def __init__(self, option: str, value: Any, allowed: str):
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(Mention(option, value, as_given=True), f": {allowed}")

    def __reduce__(self) -> tuple[Any, ...]:  # rebuilt from its fields, not from its message
        return (type(self), (self.option, self.value, self.allowed))

    def in_file(self, path: str | os.PathLike) -> ConfigError:
        """The same fault, worded for a TOML file, where the user wrote `option = value`."""
        return ConfigError(f"{os.fsdecode(path)}: {self.option} = {shown_value(self.value)}: {self.allowed}")


def shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if not isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
