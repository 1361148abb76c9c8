"""The user's answers to a review, kept per dataset so a rescan does not ask again.

A suspect is identified by its kind and the file(s) it is about (`Suspect.key`); the answer is "keep" (the
user looked and it is fine), "relabel" or "exclude" (done through the curation, which moved the file). The
record lives in the data folder (`data_dir()/reviews/<digest of the dataset's roots>.json`), not inside the
dataset: a read-only dataset (the bundled sample, a mounted share) can be reviewed too, and nothing is
written among the user's images. It is rewritten atomically on every answer, so a crash loses at most the
answer being written.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from workbench.engine import paths
from workbench.engine.atomic import write_json_atomic
from workbench.engine.names import name_bytes

DECISIONS = ("keep", "relabel", "exclude")
FORMAT = 1


def dataset_key(roots: Sequence[str | os.PathLike]) -> str:
    """One name per dataset: its roots as scanned (absolute, in order-independent form)."""
    joined = "\n".join(sorted(os.path.abspath(os.fspath(root)) for root in roots))
    return hashlib.sha1(name_bytes(joined)).hexdigest()[:16]


def record_path(roots: Sequence[str | os.PathLike]) -> Path:
    return paths.data_dir_path() / "reviews" / f"{dataset_key(roots)}.json"


class ReviewDecisions:
    """{suspect key: decision} for one dataset, read at construction, written at every change."""

    def __init__(self, roots: Sequence[str | os.PathLike]):
        self.roots = [os.path.abspath(os.fspath(root)) for root in roots]
        self.path = record_path(self.roots)
        self.notes: list[str] = []
        self._decisions: dict[str, dict] = self._read()

    def _read(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # unreadable: ask again rather than fail the review
            self.notes.append(f"earlier review answers could not be read ({exc}); they will be asked again")
            return {}
        decisions = data.get("decisions") if isinstance(data, dict) else None
        if not isinstance(decisions, dict):
            return {}
        return {key: value for key, value in decisions.items() if isinstance(value, dict)}

    def get(self, key: str) -> str | None:
        entry = self._decisions.get(key)
        return entry.get("decision") if entry else None

    def decided(self, key: str) -> bool:
        return key in self._decisions

    def __len__(self) -> int:
        return len(self._decisions)

    def set(self, key: str, decision: str, **detail: str) -> None:
        if decision not in DECISIONS:
            raise ValueError(f"unknown review decision {decision!r}")
        self._decisions[key] = {"decision": decision, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **detail}
        self._write()

    def forget(self, key: str) -> bool:
        """Drop an answer (its move was undone): the suspect is asked about again."""
        if self._decisions.pop(key, None) is None:
            return False
        self._write()
        return True

    def keys_about(self, path: str) -> list[str]:
        """The answered keys that name `path` (for forgetting what an undone move decided)."""
        return [key for key in self._decisions if path in key.split("\t")[1:]]

    def _write(self) -> None:
        write_json_atomic(self.path, {"format": FORMAT, "roots": self.roots, "decisions": self._decisions})
