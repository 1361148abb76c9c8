"""Errors the engine raises for problems a user can fix; clients show their message, not a traceback."""


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
