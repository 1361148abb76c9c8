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
