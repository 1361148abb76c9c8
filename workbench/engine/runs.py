"""Run folders and the SQLite registry that lists them.

Each run owns `runs/<run-id>/` (config.json, dataset.json, history.json, checkpoints/) and one row in
`registry.sqlite` beside it. A training process holds an exclusive lock on `runs/<run-id>/.lock` for as
long as it runs; a row still marked `running` whose lock is free belongs to a dead process and is shown
as `interrupted` — so a killed run never stays `running`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.engine import paths
from workbench.engine.atomic import write_json_atomic
from workbench.engine.errors import RunNotFoundError, WorkbenchError

try:  # POSIX: an flock dies with its process, which is exactly the liveness signal we want
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_SCHEMA_ATTEMPTS = 20  # about 10 s of back-off in all

STATUSES = ("running", "finished", "stopped", "failed", "interrupted")

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
    dataset: str
    config: dict[str, Any]
    metrics: list[dict[str, Any]]
    created: float
    updated: float
    run_dir: str
    checkpoint: str | None
    best_val_acc: float | None
    test_acc: float | None = None
    reason: str = ""

    @property
    def epochs_done(self) -> int:
        return len(self.metrics)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _check_name(name: str) -> str:
    """Run names are labels, never paths: refuse separators and dot-names so nothing escapes its folder."""
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\0")):
        raise WorkbenchError(f"run name {name!r}: must be non-empty and contain no '/', '\\' or '..'")
    if len(name) > 200:
        raise WorkbenchError(f"run name {name[:40]!r}…: longer than 200 characters")
    return name


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
        self.registry._update(self.run_id, checkpoint=str(path))

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


class RunRegistry:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else paths.data_dir()
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "registry.sqlite"
        self._create_schema()

    def _create_schema(self) -> None:
        # SQLite answers "database is locked" at once, without waiting out the busy timeout, when two
        # processes (DDP ranks, the app and the CLI) create or switch a fresh registry together.
        # Retry briefly; WAL is persistent, so once one process has switched it nobody else needs to.
        for attempt in range(_SCHEMA_ATTEMPTS):
            try:
                with self._connect() as db:
                    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        db.execute("PRAGMA journal_mode=WAL")
                    db.execute(_SCHEMA)
                return
            except WorkbenchError:
                if attempt == _SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.db_path, timeout=30)
        except sqlite3.Error as exc:
            raise WorkbenchError(f"cannot open the run registry {self.db_path}: {exc}") from None
        try:
            with db:  # commits on success, rolls back on error
                yield db
        except sqlite3.OperationalError as exc:
            raise WorkbenchError(f"cannot write the run registry {self.db_path}: {exc}") from None
        finally:
            db.close()

    # ---- writing -------------------------------------------------------------------------------
    def create_run(
        self, *, model: str, dataset: str, config: dict[str, Any], name: str | None = None
    ) -> RunHandle:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        name = _check_name(name or f"{model} on {Path(dataset.split(os.pathsep)[0]).name or dataset}")
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
            with self._connect() as db:
                db.execute(
                    "INSERT INTO runs (run_id, name, status, model, dataset, config, created, updated, run_dir, pid)"
                    " VALUES (?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                    (run_id, name, model, dataset, json.dumps(config), now, now, str(run_dir), os.getpid()),
                )
        except BaseException:
            handle.close()
            shutil.rmtree(run_dir, ignore_errors=True)  # no orphan folder without a registry row
            raise
        return handle

    def reopen_run(self, run_id: str) -> RunHandle:
        """Take over an existing run to continue it (resume)."""
        record = self.get(run_id)
        if record.status == "running":
            raise WorkbenchError(f"run {run_id} is still running in another process; stop it first")
        handle = RunHandle(self, record.run_id, Path(record.run_dir))
        self._acquire(handle)
        # Temp files of atomic writes cut short by a kill: safe to delete now that we hold the run's lock.
        for leftover in handle.run_dir.rglob(".*.tmp"):
            leftover.unlink(missing_ok=True)
        self._update(record.run_id, status="running", reason="", pid=os.getpid())
        return handle

    def delete(self, run_id: str) -> None:
        record = self.get(run_id)
        if record.status == "running":
            raise WorkbenchError(f"run {run_id} is running; stop it before deleting it")
        shutil.rmtree(record.run_dir, ignore_errors=True)
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE run_id = ?", (record.run_id,))

    def _acquire(self, handle: RunHandle) -> None:
        lock = open(handle.run_dir / ".lock", "a+")  # noqa: SIM115 - held open for the run's lifetime
        if fcntl is not None:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                raise WorkbenchError(f"run {handle.run_id} is in use by another process") from None
        handle._lock_file = lock

    def _update(self, run_id: str, **fields: Any) -> None:
        fields["updated"] = time.time()
        assignments = ", ".join(f"{key} = ?" for key in fields)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*fields.values(), run_id))

    # ---- reading -------------------------------------------------------------------------------
    def list_runs(self) -> list[RunRecord]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT run_id, name, status, model, dataset, config, metrics, created, updated, run_dir,"
                " checkpoint, best_val_acc, test_acc, reason, pid FROM runs ORDER BY created DESC"
            ).fetchall()
        records = []
        for row in rows:
            record = RunRecord(*row[:2], *row[2:5], json.loads(row[5]), json.loads(row[6]), *row[7:14])
            if record.status == "running" and not self._is_alive(record, pid=row[14]):
                record.status = "interrupted"
                record.reason = "the training process ended without finishing (killed or crashed)"
                self._update(record.run_id, status=record.status, reason=record.reason, pid=None)
            records.append(record)
        return records

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

    def _is_alive(self, record: RunRecord, pid: int | None) -> bool:
        lock_path = Path(record.run_dir) / ".lock"
        if fcntl is None:  # pragma: no cover - Windows: fall back to the pid
            return pid is not None and _pid_alive(pid)
        if not lock_path.exists():
            return False
        with open(lock_path, "a+") as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(probe.fileno(), fcntl.LOCK_UN)
            return False


def _pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
