"""Run folders and the SQLite registry that lists them.

Each run owns `runs/<run-id>/` (run.json, config.json, dataset.json, history.json, checkpoints/) and one row in
`registry.sqlite` beside it. A training process holds an exclusive lock on `runs/<run-id>/.lock` for as
long as it runs; a row still marked `running` whose lock is free belongs to a dead process and is shown
as `interrupted` — so a killed run never stays `running`.

The registry is an index, the run folders are the truth it can be rebuilt from:
- a run's folder is always `<registry root>/runs/<run-id>` and its checkpoint a path inside that folder, whatever
  an older registry stored, so a copied or moved home works on its own files and never writes or deletes outside;
- `run.json` in each folder mirrors the row (name, model, dataset roots, status, numbers), so a damaged
  `registry.sqlite` is set aside as `registry.sqlite.damaged-<time>` and rebuilt, a damaged row is repaired, and
  either is reported in `RunRegistry.warnings`;
- a row whose folder is gone is listed as `missing`, one that cannot be repaired as `damaged`;
- a home that cannot be written is opened read-only: listing and loading work, writing fails naming the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, TypeVar
from urllib.parse import quote

from workbench.engine import paths
from workbench.engine.atomic import write_json_atomic
from workbench.engine.errors import RunNotFoundError, WorkbenchError
from workbench.engine.names import display_name
from workbench.engine.training.config import dataset_roots

try:  # POSIX: an flock dies with its process, which is exactly the liveness signal we want
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

_SCHEMA_ATTEMPTS = 20  # about 10 s of back-off in all

STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
MISSING = "missing"  # shown, never stored: the run folder is gone (it may come back, e.g. a remounted disk)
DAMAGED = "damaged"  # shown, never stored: the row is unreadable and the run folder cannot restore it

RUN_JSON = "run.json"
RUN_JSON_FORMAT = "cnn-workbench-run"
# What create_run makes; a row naming anything else never becomes a path.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_DAMAGE_CODES = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})  # the file, not the moment (locks, full disks)

_COLUMNS = (
    "run_id", "name", "status", "model", "dataset", "config", "metrics", "created", "updated", "run_dir",
    "checkpoint", "best_val_acc", "test_acc", "reason", "pid",
)  # fmt: skip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    updated REAL NOT NULL,
    run_dir TEXT NOT NULL,
    checkpoint TEXT,
    best_val_acc REAL,
    test_acc REAL,
    reason TEXT NOT NULL DEFAULT '',
    pid INTEGER
)
"""


@dataclass
class RunRecord:
    run_id: str
    name: str
    status: str
    model: str
    dataset: str  # for people: the root, or "first (+N more)"; `datasets` holds the roots themselves
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    created: float
    updated: float
    run_dir: str  # always `<registry root>/runs/<run_id>`
    checkpoint: str | None  # always inside run_dir
    best_val_acc: float | None
    test_acc: float | None = None
    reason: str = ""
    datasets: list[str] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        return len(self.metrics)

    @property
    def folder_missing(self) -> bool:
        """The run folder is not there (deleted or moved): no checkpoint can be found, whatever the status says."""
        return not Path(self.run_dir).is_dir()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RegistryDamagedError(WorkbenchError):
    """`registry.sqlite` is not a readable SQLite database (garbage, truncated, overwritten)."""


# ---- dataset roots and labels ------------------------------------------------------------------------------


def _encode_roots(roots: list[str]) -> str:
    # ensure_ascii escapes lone surrogates (non-UTF-8 bytes of os.fsdecode) as \udcXX, which SQLite's UTF-8 text
    # can store and json.loads turns back into the same str, so os.fsencode gives the original bytes.
    return json.dumps(roots)


def _decode_roots(text: str) -> list[str]:
    """The dataset column: a JSON list of roots; older rows hold one root as plain text."""
    try:
        roots = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(roots, list) and all(isinstance(root, str) for root in roots):
        return roots
    return [text]


def printable(text: str) -> str:
    """Text safe to store and print: non-UTF-8 bytes (lone surrogates) shown as `\\xe9`, as everywhere."""
    return display_name(text)


def _display_roots(roots: list[str]) -> str:
    if not roots:
        return ""
    more = f" (+{len(roots) - 1} more)" if len(roots) > 1 else ""
    return printable(roots[0]) + more


def _default_name(model: str, roots: list[str]) -> str:
    if not roots:
        return model
    return f"{model} on {PurePath(roots[0]).name or roots[0]}"


def _check_name(name: str) -> str:
    """Run names are labels, never paths: refuse separators and dot-names so nothing escapes its folder."""
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        raise WorkbenchError(f"run name {name!r}: must be non-empty and contain no '/', '\\' or '..'")
    if len(name) > 200:
        raise WorkbenchError(f"run name {name[:40]!r}…: longer than 200 characters")
    return printable(name)


# ---- checkpoint paths --------------------------------------------------------------------------------------


def _relative_checkpoint(run_dir: Path, path: str | os.PathLike) -> str:
    """How a checkpoint is stored: relative to its run folder, so the row survives a moved home."""
    try:
        return Path(path).relative_to(run_dir).as_posix()
    except ValueError:
        return f"checkpoints/{Path(path).name}"


def _checkpoint_in(run_dir: Path, run_id: str, stored: str | None) -> str | None:
    """The stored checkpoint as a path inside `run_dir`. Older registries stored absolute paths of the home they
    were written in: keep only the part below the run's folder, so a copy never points into the original."""
    if not stored:
        return None
    path = PurePath(stored)
    if path.name in ("", ".", ".."):
        return None
    parts = path.parts
    if path.is_absolute():
        below = [i for i, part in enumerate(parts) if part == run_id]
        parts = parts[below[-1] + 1 :] if below else ("checkpoints", path.name)
    if not parts or any(part in ("", ".", "..") for part in parts) or PurePath(*parts).is_absolute():
        parts = ("checkpoints", path.name)  # never follow a path out of the folder
    return str(run_dir.joinpath(*parts))


# ---- reading rows ------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def _status(value: Any) -> str:
    if value not in STATUSES:
        raise ValueError(f"unknown status {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a number")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _json_object(value: Any) -> dict[str, Any]:
    parsed = json.loads(_text(value))
    if not isinstance(parsed, dict):
        raise ValueError("not a JSON object")
    return parsed


def _json_history(value: Any) -> list[dict[str, Any]]:
    parsed = json.loads(_text(value))
    if not isinstance(parsed, list) or not all(isinstance(row, dict) for row in parsed):
        raise ValueError("not a list of epochs")
    return parsed


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


# Each column of a row (or of a run folder's files), with its check; a failing one is what "damaged" means.
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": _text,
    "status": _status,
    "model": _text,
    "dataset": _text,
    "config": _json_object,
    "metrics": _json_history,
    "created": _number,
    "updated": _number,
    "checkpoint": _optional_text,
    "best_val_acc": _optional_number,
    "test_acc": _optional_number,
    "reason": _text,
}
_PLACEHOLDERS: dict[str, Any] = {
    "name": "?", "status": DAMAGED, "model": "?", "dataset": "[]", "config": {}, "metrics": [], "created": 0.0,
    "updated": 0.0, "checkpoint": None, "best_val_acc": None, "test_acc": None, "reason": "",
}  # fmt: skip


def _parse(raw: dict[str, Any], keys: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The parsed values of `keys` that pass their check, and the names of those that do not."""
    values: dict[str, Any] = {}
    bad: list[str] = []
    for key in keys:
        try:
            values[key] = _PARSERS[key](raw[key])
        except (KeyError, ValueError, TypeError):
            bad.append(key)
    return values, bad


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _folder_values(run_dir: Path) -> dict[str, Any]:
    """What a run folder's own files say about its row, in the registry's column encoding (only what is there)."""
    saved = _read_json(run_dir / RUN_JSON)
    saved = saved if isinstance(saved, dict) else {}
    found = {
        key: saved[key] for key in _PARSERS if key in saved and key not in ("config", "metrics", "dataset")
    }
    roots = saved.get("datasets")
    if isinstance(roots, list) and all(isinstance(root, str) for root in roots):
        found["dataset"] = _encode_roots(roots)
    config = _read_json(run_dir / "config.json")
    if isinstance(config, dict):
        found["config"] = json.dumps(config)
    history = _read_json(run_dir / "history.json")
    if isinstance(history, list):
        found["metrics"] = json.dumps(history)
    return found


def _created_from_id(run_id: str) -> float | None:
    try:
        return time.mktime(time.strptime(run_id[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        return None


def _inferred_row(run_id: str, run_dir: Path, found: dict[str, Any]) -> dict[str, Any]:
    """A full row for a run folder the registry does not list, from its files; what they do not say (a run
    written before run.json existed) is inferred: its end from its epochs, its date from its id."""
    config = json.loads(found.get("config", "{}"))
    metrics = json.loads(found.get("metrics", "[]"))
    roots = _decode_roots(found["dataset"]) if "dataset" in found else _config_roots(config)
    model = found.get("model") or str(config.get("model") or "unknown")
    epochs = config.get("epochs")
    completed = isinstance(epochs, int) and 0 < epochs <= len(metrics)
    accuracies = [
        row["val_acc"] for row in metrics if isinstance(row, dict) and _is_number(row.get("val_acc"))
    ]
    checkpoints = [run_dir / "checkpoints" / name for name in ("best.pt", "last.pt")]
    created = found.get("created") or _created_from_id(run_id) or run_dir.stat().st_mtime
    row = {
        "run_id": run_id,
        "name": printable(_default_name(model, roots)),
        "status": "finished" if completed else "interrupted",
        "model": model,
        "dataset": _encode_roots(roots),
        "config": json.dumps(config),
        "metrics": json.dumps(metrics),
        "created": created,
        "updated": found.get("updated") or created,
        "run_dir": f"runs/{run_id}",
        "checkpoint": next((f"checkpoints/{p.name}" for p in checkpoints if p.is_file()), None),
        "best_val_acc": max(accuracies) if accuracies else None,
        "test_acc": None,
        "reason": "" if completed else "rebuilt from its run folder: how the run ended was not recorded",
        "pid": None,
    }
    merged = row | {key: value for key, value in found.items() if key in row}
    return {key: printable(value) if isinstance(value, str) else value for key, value in merged.items()}


def _config_roots(config: dict[str, Any]) -> list[str]:
    data = config.get("data")
    if isinstance(data, str):
        return [data] if data else []
    if isinstance(data, list) and all(isinstance(root, str) for root in data):
        return data
    return []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    if name:
        return name in _DAMAGE_CODES
    return type(exc) is sqlite3.DatabaseError  # older SQLite bindings: corrupt/not-a-db are the plain kind


# ---- handles -----------------------------------------------------------------------------------------------


@dataclass
class RunHandle:
    """A run being written by this process; holds the run's lock until `close()`."""

    registry: RunRegistry
    run_id: str
    run_dir: Path
    _lock_file: Any = field(default=None, repr=False)

    @property
    def checkpoints_dir(self) -> Path:
        path = self.run_dir / "checkpoints"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_json(self, filename: str, obj: Any) -> None:
        path = self.run_dir / filename
        try:
            write_json_atomic(path, obj)
        except OSError as exc:
            raise WorkbenchError(
                f"could not write {path}: {exc.strerror or exc}. Checkpoints saved so far are intact; free some "
                f"space and continue with `workbench train --resume {self.run_id}`"
            ) from None

    def record_epoch(self, metrics: list[dict[str, Any]], best_val_acc: float | None) -> None:
        """Store the full metric history (the run folder and the registry stay in step)."""
        self.write_json("history.json", metrics)
        self.registry._update(self.run_id, metrics=json.dumps(metrics), best_val_acc=best_val_acc)

    def record_checkpoint(self, path: str | os.PathLike) -> None:
        self.registry._update(self.run_id, checkpoint=_relative_checkpoint(self.run_dir, path))

    def update(self, **fields: Any) -> None:
        if "config" in fields:  # the run folder and the registry stay in step
            self.write_json("config.json", fields["config"])
            fields["config"] = json.dumps(fields["config"])
        self.registry._update(self.run_id, **fields)

    def finish(self, status: str, reason: str = "", test_acc: float | None = None) -> None:
        assert status in STATUSES, status
        self.registry._update(self.run_id, status=status, reason=reason, test_acc=test_acc, pid=None)
        self.close()

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None


class FollowerRunHandle(RunHandle):
    """A distributed rank other than 0: knows the run's id and folder, writes nothing (rank 0 does)."""

    def __init__(self, run_id: str, run_dir: Path):
        super().__init__(registry=None, run_id=run_id, run_dir=run_dir)  # type: ignore[arg-type]

    @property
    def checkpoints_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def write_json(self, filename: str, obj: Any) -> None:
        pass

    def record_epoch(self, metrics: list[dict[str, Any]], best_val_acc: float | None) -> None:
        pass

    def record_checkpoint(self, path: str | os.PathLike) -> None:
        pass

    def update(self, **fields: Any) -> None:
        pass

    def finish(self, status: str, reason: str = "", test_acc: float | None = None) -> None:
        pass


# ---- the registry ------------------------------------------------------------------------------------------


class RunRegistry:
    """The runs of one home. `warnings` collects what clients should tell the user (a rebuilt registry, a
    repaired or damaged row, a read-only home listing from its folders)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else paths.data_dir_path()
        self.runs_dir = self.root / "runs"
        self.db_path = self.root / "registry.sqlite"
        self.warnings: list[str] = []
        self._from_folders = False  # no usable registry file and no way to rebuild it: list the run folders
        self.read_only_reason: str | None = self._why_not_writable()  # why this home cannot be written
        if self.read_only_reason is None:
            self._create_schema()
        else:
            self._open_read_only()

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    # ---- opening ---------------------------------------------------------------------------------------
    def _why_not_writable(self) -> str | None:
        """None when runs can be written here; else the reason (reading still works: nothing is created)."""
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in paths.READ_ONLY_ERRNOS:
                raise WorkbenchError(
                    f"cannot create the runs folder {self.runs_dir}: {exc.strerror or exc}; set WORKBENCH_HOME to "
                    "a writable folder"
                ) from None
            return f"cannot create {self.runs_dir}: {exc.strerror or exc}"
        if not paths.is_writable(self.root):
            return "no files can be created in it"
        if self.db_path.exists() and not _may_write_file(self.db_path):
            return f"{self.db_path.name} is write-protected"
        return None

    def _require_writable(self) -> None:
        if self.read_only_reason is not None:
            raise WorkbenchError(
                f"the workbench home {self.root} is read-only here ({self.read_only_reason}): runs can be listed "
                "and used, not created, resumed or deleted. Make the folder writable or set WORKBENCH_HOME to a "
                "writable copy of it"
            )

    def _create_schema(self) -> None:
        # SQLite answers "database is locked" at once, without waiting out the busy timeout, when two
        # processes (DDP ranks, the app and the CLI) create or switch a fresh registry together.
        # Retry briefly; WAL is persistent, so once one process has switched it nobody else needs to.
        fresh = False
        for attempt in range(_SCHEMA_ATTEMPTS):
            try:
                fresh = self._execute(_ensure_table)
                break
            except RegistryDamagedError:
                raise  # set aside and rebuilt once already: this is not a passing lock
            except WorkbenchError:
                if attempt == _SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        if fresh:  # a registry that was deleted or emptied while run folders remained
            adopted = self._adopt_folders()
            if adopted:
                self._warn(
                    f"the run registry {self.db_path} was missing or empty; rebuilt it from {_folders(adopted)}"
                )

    def _open_read_only(self) -> None:
        """Read what is there without writing anything; a registry that cannot be read gives way to the run
        folders (listed, not repaired: repairing needs write access)."""
        if not self.db_path.exists():
            self._from_folders = True
            return
        try:
            has_table = self._execute(_has_table, write=False)
        except RegistryDamagedError as exc:
            self._from_folders = True
            self._warn(
                f"{exc}; listing the runs from their folders (the home is read-only, so it stays as it is)"
            )
            return
        self._from_folders = not has_table

    @contextlib.contextmanager
    def _connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        if write:
            self._require_writable()
        try:
            db = self._open_connection()
        except sqlite3.DatabaseError as exc:
            raise self._sqlite_error(exc, "open") from None
        try:
            with db:  # commits on success, rolls back on error
                yield db
        except sqlite3.DatabaseError as exc:
            raise self._sqlite_error(exc, "write" if write else "read") from None
        finally:
            db.close()

    def _open_connection(self) -> sqlite3.Connection:
        if self.read_only_reason is None:
            return sqlite3.connect(self.db_path, timeout=30)
        # mode=ro writes nothing; a WAL registry in a folder we cannot write has no -shm file to share, which
        # SQLite then refuses to open unless told nobody writes it (immutable), true enough for this process.
        uri = "file:" + quote(str(self.db_path.absolute())) + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=30)
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError:
            db.close()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30)

    def _sqlite_error(self, exc: sqlite3.DatabaseError, verb: str) -> WorkbenchError:
        if _is_damage(exc):
            return RegistryDamagedError(f"the run registry {self.db_path} is damaged ({exc})")
        return WorkbenchError(f"cannot {verb} the run registry {self.db_path}: {exc}")

    def _execute(self, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """`work` in one transaction. A damaged registry file is set aside and rebuilt from the run folders, then
        `work` runs once more on the rebuilt one (read-only homes cannot rebuild: the error goes up)."""
        try:
            with self._connect(write) as db:
                return work(db)
        except RegistryDamagedError as exc:
            if self.read_only_reason is not None:
                raise
            self._recover(str(exc))
        with self._connect(write) as db:
            return work(db)

    # ---- rebuilding ------------------------------------------------------------------------------------
    def _recover(self, damage: str) -> None:
        with self._exclusive():
            if self._healthy():  # another process rebuilt it while we waited for the lock
                return
            aside = self._set_aside()
            with self._connect() as db:
                _ensure_table(db)
            adopted = self._adopt_folders()
        self._warn(f"{damage}; kept it as {aside.name} and rebuilt the registry from {_folders(adopted)}")

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One process at a time sets the registry aside and rebuilds it (an flock on the home folder)."""
        if fcntl is None:  # pragma: no cover - Windows: folders cannot be opened to lock them
            yield
            return
        fd = os.open(self.root, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _healthy(self) -> bool:
        if not self.db_path.exists():
            return False
        try:
            with contextlib.closing(sqlite3.connect(self.db_path, timeout=30)) as db:
                return db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        except sqlite3.DatabaseError:
            return False

    def _set_aside(self) -> Path:
        """Keep the damaged file (and its WAL) for whoever wants to look at it, under a name no one reads."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.root / f"{self.db_path.name}.damaged-{stamp}"
        for n in range(2, 1000):
            if not aside.exists():
                break
            aside = self.root / f"{self.db_path.name}.damaged-{stamp}-{n}"
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.db_path}{suffix}")
            if source.exists():
                os.replace(source, f"{aside}{suffix}")
        return aside

    def _adopt_folders(self) -> int:
        """Give every run folder the registry does not list its row back (from run.json, config.json, history)."""
        rows = self._folder_rows()
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._connect() as db:
            for row in rows:
                db.execute(
                    f"INSERT OR IGNORE INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                    [row[column] for column in _COLUMNS],
                )
        for row in rows:
            if not (self.runs_dir / row["run_id"] / RUN_JSON).is_file():
                self._write_run_json(row)  # a run from before run.json: it has one from now on
        return len(rows)

    def _folder_rows(self) -> list[dict[str, Any]]:
        """A row for each run folder, from its files alone."""
        if not self.runs_dir.is_dir():
            return []
        rows = []
        for run_dir in sorted(self.runs_dir.iterdir()):
            if not _RUN_ID.fullmatch(run_dir.name) or run_dir.is_symlink() or not run_dir.is_dir():
                continue
            found = _folder_values(run_dir)
            if not (run_dir / RUN_JSON).exists() and self._lock_held(run_dir):
                continue  # a run being created right now: its own row is on the way
            if "config" not in found and "status" not in found:
                self._warn(f"{run_dir} holds no readable run.json or config.json; it is not listed")
                continue
            rows.append(_inferred_row(run_dir.name, run_dir, found))
        return rows

    # ---- writing -------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        model: str,
        dataset: str | os.PathLike | Sequence[str | os.PathLike],
        config: dict[str, Any],
        name: str | None = None,
    ) -> RunHandle:
        """A new run of `model` on `dataset` (one root, or a sequence of roots)."""
        self._require_writable()
        roots = dataset_roots(dataset)
        name = _check_name(name or _default_name(model, roots))
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        run_dir = self.runs_dir / run_id
        try:
            run_dir.mkdir(parents=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}") from None
        handle = RunHandle(self, run_id, run_dir)
        try:
            self._acquire(handle)
            handle.write_json("config.json", config)
            now = time.time()
            row = {
                "run_id": run_id, "name": name, "status": "running", "model": model,
                "dataset": _encode_roots(roots), "config": json.dumps(config), "metrics": "[]", "created": now,
                "updated": now, "run_dir": f"runs/{run_id}", "checkpoint": None, "best_val_acc": None,
                "test_acc": None, "reason": "", "pid": os.getpid(),
            }  # fmt: skip
            self._insert(row)
            # After the row: a folder holding run.json is one the registry has listed (a rebuild may adopt it).
            handle.write_json(RUN_JSON, _run_json(row))
        except BaseException:
            handle.close()
            shutil.rmtree(run_dir, ignore_errors=True)  # no orphan folder without a registry row
            with contextlib.suppress(WorkbenchError):
                self._execute(lambda db: db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)))
            raise
        return handle

    def _insert(self, row: dict[str, Any]) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self._execute(
            lambda db: db.execute(
                # REPLACE: a rebuild running in another process may have adopted the folder a moment ago
                f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                [row[column] for column in _COLUMNS],
            )
        )

    def reopen_run(self, run_id: str) -> RunHandle:
        """Take over an existing run to continue it (resume)."""
        self._require_writable()
        record = self.get(run_id)
        if record.status == "running":
            raise WorkbenchError(f"run {run_id} is still running in another process; stop it first")
        if record.folder_missing:
            raise WorkbenchError(f"run {record.run_id} cannot continue: {_missing_reason(record.run_dir)}")
        handle = RunHandle(self, record.run_id, Path(record.run_dir))
        self._acquire(handle)
        # Temp files of atomic writes cut short by a kill: safe to delete now that we hold the run's lock.
        for leftover in handle.run_dir.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        self._update(record.run_id, status="running", reason="", pid=os.getpid())
        return handle

    def rename(self, run_id: str, name: str) -> RunRecord:
        """Give a run another name (a label only: its id and folder stay); the row and its run.json change
        together. Returns the renamed run."""
        self._require_writable()
        record = self.get(run_id)
        self._update(record.run_id, touch=False, name=_check_name(name.strip()))
        return self.get(record.run_id)

    def delete(self, run_id: str) -> None:
        """Delete a run's folder (only ever `runs/<run-id>` of this registry) and its row."""
        self._require_writable()
        record = self.get(run_id)
        if record.status == "running":
            raise WorkbenchError(f"run {run_id} is running; stop it before deleting it")
        self._remove_folder(self.runs_dir / record.run_id)
        self._execute(lambda db: db.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,)))

    def _remove_folder(self, run_dir: Path) -> None:
        if not _RUN_ID.fullmatch(run_dir.name) or run_dir.parent.resolve() != self.runs_dir.resolve():
            raise WorkbenchError(
                f"refusing to delete {run_dir}: it is not a run folder inside {self.runs_dir}"
            )
        if run_dir.is_symlink():
            run_dir.unlink()  # the link only: what it points to is not this registry's to delete
            return
        try:
            shutil.rmtree(run_dir)
        except FileNotFoundError:
            pass  # already gone (a `missing` run): only its row is left to remove
        except OSError as exc:
            raise WorkbenchError(
                f"could not delete the run folder {run_dir} completely ({exc.strerror or exc}); the run stays listed"
            ) from None

    def _acquire(self, handle: RunHandle) -> None:
        lock = open(handle.run_dir / ".lock", "a+")  # noqa: SIM115 - held open for the run's lifetime
        if fcntl is not None:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                raise WorkbenchError(f"run {handle.run_id} is in use by another process") from None
        handle._lock_file = lock

    def _update(self, run_id: str, *, touch: bool = True, **fields: Any) -> None:
        """Change a row, then its run.json (the copy a rebuild reads), so the two stay in step. `touch=False`
        keeps `updated` (a rename is no training activity: the run's duration must not change)."""
        if touch:
            fields["updated"] = time.time()
        values = {key: printable(value) if isinstance(value, str) else value for key, value in fields.items()}
        assignments = ", ".join(f"{key} = ?" for key in values)

        def work(db: sqlite3.Connection) -> tuple | None:
            db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*values.values(), run_id))
            return db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()

        row = self._execute(work)
        if row is not None:
            self._write_run_json(dict(zip(_COLUMNS, row, strict=True)))

    def _write_run_json(self, row: dict[str, Any]) -> None:
        """Best effort: the row is already safe; a full disk here must not fail the run a second time, and a
        deleted folder must not be recreated (atomic writes create parents)."""
        run_dir = self.runs_dir / row["run_id"]
        if _RUN_ID.fullmatch(row["run_id"]) and run_dir.is_dir():
            with contextlib.suppress(OSError, ValueError, TypeError):
                write_json_atomic(run_dir / RUN_JSON, _run_json(row))

    # ---- reading -------------------------------------------------------------------------------
    def list_runs(self) -> list[RunRecord]:
        """Every run, newest first. A bad row never hides the others: it is repaired from its folder or listed
        as `damaged`; a row whose folder is gone is listed as `missing`."""
        records = [record for row in self._rows() if (record := self._record(row)) is not None]
        records.sort(key=lambda record: record.created, reverse=True)
        return records

    def _rows(self) -> list[dict[str, Any]]:
        if not self._from_folders:
            try:
                rows = self._execute(_select_rows, write=False)
                return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
            except RegistryDamagedError as exc:  # a read-only home cannot rebuild it (nor could this one)
                self._from_folders = True
                why = (
                    "the home is read-only, so it stays as it is"
                    if self.read_only
                    else "it could not be rebuilt"
                )
                self._warn(f"{exc}; listing the runs from their folders ({why})")
        return self._folder_rows()

    def _record(self, row: dict[str, Any]) -> RunRecord | None:
        run_id = row["run_id"]
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            self._warn(
                f"the run registry {self.db_path} holds a row with an unusable run id {run_id!r}; ignored"
            )
            return None
        run_dir = self.runs_dir / run_id
        values, bad = _parse(row, list(_PARSERS))
        if bad:
            values, bad = self._repair(run_id, run_dir, values, bad)
        values = {**_PLACEHOLDERS, **values}
        roots = _decode_roots(values["dataset"])
        record = RunRecord(
            run_id, values["name"], values["status"], values["model"], _display_roots(roots), values["config"],
            values["metrics"], values["created"], values["updated"], str(run_dir),
            _checkpoint_in(run_dir, run_id, values["checkpoint"]), values["best_val_acc"], values["test_acc"],
            values["reason"], roots,
        )  # fmt: skip
        if bad:
            record.status = DAMAGED
            record.reason = (
                f"its registry entry is damaged ({', '.join(bad)}) and its run folder cannot restore it"
            )
            self._warn(f"run {run_id}: {record.reason}")
        elif record.folder_missing:
            record.status, record.reason = MISSING, _missing_reason(record.run_dir)
        elif record.status == "running" and not self._lock_held(run_dir, row.get("pid")):
            record.status = "interrupted"
            record.reason = "the training process ended without finishing (killed or crashed)"
            if not self.read_only and not self._from_folders:
                with contextlib.suppress(WorkbenchError):  # showing it matters more than storing it
                    self._update(run_id, status=record.status, reason=record.reason, pid=None)
        return record

    def _repair(
        self, run_id: str, run_dir: Path, values: dict[str, Any], bad: list[str]
    ) -> tuple[dict[str, Any], list[str]]:
        """Replace a row's unreadable columns with what its run folder says; write the repair back when whole."""
        found = _folder_values(run_dir)
        fixed, still_bad = _parse(found, bad)
        if fixed and not still_bad and not self.read_only and not self._from_folders:
            with contextlib.suppress(WorkbenchError):
                self._update(run_id, **{key: found[key] for key in fixed})
        if fixed and not still_bad:
            self._warn(
                f"run {run_id}: its registry entry was damaged ({', '.join(bad)}); repaired from its run folder"
            )
        return {**values, **fixed}, still_bad

    def get(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, run folder path, or `last`."""
        runs = self.list_runs()
        if not runs:
            raise RunNotFoundError(f"no run matches {ref!r}: there are no runs yet")
        if ref in ("last", "latest"):
            return runs[0]
        ref_path = Path(ref).expanduser()
        for record in runs:
            if record.run_id == ref or (
                ref_path.exists() and ref_path.resolve() == Path(record.run_dir).resolve()
            ):
                return record
        matches = [r for r in runs if r.run_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFoundError(f"{ref!r} matches {len(matches)} runs; give more of the run id")
        raise RunNotFoundError(f"no run matches {ref!r}; `workbench runs` lists them")

    def _lock_held(self, run_dir: Path, pid: int | None = None) -> bool:
        """Whether a live process holds the run's lock (opened read-only: a read-only home can be probed)."""
        lock_path = run_dir / ".lock"
        if fcntl is None:  # pragma: no cover - Windows: fall back to the pid
            return pid is not None and _pid_alive(pid)
        try:
            probe = open(lock_path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            return False
        with probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
            return False


# ---- small helpers -----------------------------------------------------------------------------------------


def _may_write_file(path: Path) -> bool:
    # Never open the database file to find out: closing any descriptor of it drops the POSIX locks that other
    # SQLite connections of this process hold (the app lists runs while a run trains). The effective ids (and,
    # on Linux, this thread's capabilities) are what a real write would meet.
    effective = os.access in os.supports_effective_ids
    return os.access(path, os.W_OK, effective_ids=effective)


def _ensure_table(db: sqlite3.Connection) -> bool:
    """Create the table (WAL mode); True when it did not exist (a new, emptied or deleted registry)."""
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    fresh = not _has_table(db)
    db.execute(_SCHEMA)
    return fresh


def _has_table(db: sqlite3.Connection) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
        is not None
    )


def _select_rows(db: sqlite3.Connection) -> list[tuple]:
    return db.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs ORDER BY created DESC").fetchall()


def _run_json(row: dict[str, Any]) -> dict[str, Any]:
    """run.json: what a rebuilt registry needs of the row besides config.json and history.json."""
    return {
        "format": RUN_JSON_FORMAT,
        "run_id": row["run_id"],
        "name": row["name"],
        "model": row["model"],
        "datasets": _decode_roots(row["dataset"]) if isinstance(row["dataset"], str) else [],
        "status": row["status"],
        "reason": row["reason"],
        "created": row["created"],
        "updated": row["updated"],
        "best_val_acc": row["best_val_acc"],
        "test_acc": row["test_acc"],
        "checkpoint": row["checkpoint"],
    }


def _folders(count: int) -> str:
    return f"{count} run folder" + ("" if count == 1 else "s")


def _missing_reason(run_dir: str | Path) -> str:
    return f"run folder {run_dir} was deleted or moved"


def _pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
