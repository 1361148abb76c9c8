"""What the app remembers between launches: window geometry, last dataset, last model, hyperparameters.

Stored with QSettings as an INI file under `paths.config_dir()`, so WORKBENCH_HOME relocates it (tests stay
isolated) and a user can read or delete it by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from workbench.engine import paths
from workbench.resources import resource_path

SETTINGS_FILE = "settings.ini"
MAX_DATASETS_REMEMBERED = 50
DATASET_SETTINGS = ("img_size",)  # form fields that belong to one dataset, not to the user's habits (+ the model)


def _dataset_key(folders: list[str]) -> str:
    return json.dumps(sorted(str(Path(f).expanduser().resolve()) for f in folders))


def sample_dataset_path() -> Path:
    """The bundled Fashion-MNIST sample (resources/ of a source checkout or of an unpacked bundle)."""
    return resource_path("sample-data", "fashion-mnist-mini")


class AppSettings:
    """Typed accessors over one QSettings INI file; every value has a sane default."""

    def __init__(self, path: Path | None = None):
        self.path = path or paths.config_dir() / SETTINGS_FILE
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    # ---- window --------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        self._qs.setValue("window/geometry", geometry)

    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_window_state(self, state: QByteArray) -> None:
        self._qs.setValue("window/state", state)

    def current_tab(self) -> int:
        return self._int("window/tab", 0)

    def set_current_tab(self, index: int) -> None:
        self._qs.setValue("window/tab", index)

    # ---- dataset -------------------------------------------------------------------------------
    def last_dataset(self) -> list[str]:
        """The folders last opened: one dataset folder, or several that are one class each."""
        value = self._qs.value("dataset/last", "")
        text = value if isinstance(value, str) else ""
        try:  # a JSON list: a folder's name may hold any character, os.pathsep included
            folders = json.loads(text)
        except json.JSONDecodeError:
            folders = [text] if text else []  # written before the list: one folder
        if not isinstance(folders, list):
            return []
        return [f for f in folders if isinstance(f, str) and f]

    def set_last_dataset(self, folders: list[str]) -> None:
        self._qs.setValue("dataset/last", json.dumps(list(folders)))

    def sample_offered(self) -> bool:
        return self._bool("dataset/sample_offered", False)

    def set_sample_offered(self, offered: bool = True) -> None:
        self._qs.setValue("dataset/sample_offered", offered)

    # ---- model and training --------------------------------------------------------------------
    def last_model(self) -> str | None:
        value = self._qs.value("model/name", "")
        return value if isinstance(value, str) and value else None

    def set_last_model(self, name: str) -> None:
        self._qs.setValue("model/name", name)

    def hyperparameters(self) -> dict[str, Any]:
        """The training form as last left (a TrainConfig-shaped dict, possibly partial or stale)."""
        value = self._qs.value("training/hyperparameters", "")
        try:
            data = json.loads(value) if isinstance(value, str) and value else {}
        except json.JSONDecodeError:
            return {}  # a hand-edited or truncated file must not stop the app from starting
        return data if isinstance(data, dict) else {}

    def set_hyperparameters(self, values: dict[str, Any]) -> None:
        self._qs.setValue("training/hyperparameters", json.dumps(values))

    # ---- per dataset ---------------------------------------------------------------------------
    def dataset_settings(self, folders: list[str]) -> dict[str, Any] | None:
        """What belongs to one dataset (image size, model), keyed by its folders; None if never saved."""
        value = self._qs.value("datasets/settings", "")
        try:
            table = json.loads(value) if isinstance(value, str) and value else {}
        except json.JSONDecodeError:
            return None
        entry = table.get(_dataset_key(folders)) if isinstance(table, dict) else None
        return entry if isinstance(entry, dict) else None

    def set_dataset_settings(self, folders: list[str], values: dict[str, Any]) -> None:
        value = self._qs.value("datasets/settings", "")
        try:
            table = json.loads(value) if isinstance(value, str) and value else {}
        except json.JSONDecodeError:
            table = {}
        if not isinstance(table, dict):
            table = {}
        table[_dataset_key(folders)] = values
        while len(table) > MAX_DATASETS_REMEMBERED:  # the oldest first (dicts keep their order)
            table.pop(next(iter(table)))
        self._qs.setValue("datasets/settings", json.dumps(table))

    # ---- layout --------------------------------------------------------------------------------
    def splitter_sizes(self, name: str) -> list[int]:
        value = self._qs.value(f"layout/{name}", "")
        try:
            sizes = json.loads(value) if isinstance(value, str) and value else []
        except json.JSONDecodeError:
            return []
        return [int(v) for v in sizes] if isinstance(sizes, list) and all(isinstance(v, int) for v in sizes) else []

    def set_splitter_sizes(self, name: str, sizes: list[int]) -> None:
        self._qs.setValue(f"layout/{name}", json.dumps([int(v) for v in sizes]))

    def advanced_shown(self) -> bool:
        return self._bool("training/advanced_shown", False)

    def set_advanced_shown(self, shown: bool) -> None:
        self._qs.setValue("training/advanced_shown", bool(shown))

    def sync(self) -> None:
        self._qs.sync()

    # ---- helpers -------------------------------------------------------------------------------
    def _int(self, key: str, default: int) -> int:
        try:
            return int(self._qs.value(key, default))
        except (TypeError, ValueError):
            return default

    def _bool(self, key: str, default: bool) -> bool:
        value = self._qs.value(key, default)
        if isinstance(value, str):  # INI files store booleans as text
            return value.lower() in ("true", "1", "yes")
        return bool(value)
