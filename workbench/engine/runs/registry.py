"""The SQLite registry of one home's runs: create, reopen, rename, delete, list; rebuilt from the run folders
when damaged, opened read-only when the home cannot be written. The file itself (connecting, recovering, setting
a damaged one aside) is registry_file.py's; this module is what the rows mean."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from workbench.engine import paths
from workbench.engine.atomic import write_json_atomic
from workbench.engine.errors import RunNotFoundError, WorkbenchError, stored_text
from workbench.engine.runs.handle import RunHandle
from workbench.engine.runs.registry_file import RegistryFile, ensure_table, has_table_runs
from workbench.engine.runs.rows import (
    COLUMNS,
    DAMAGED,
    MISSING,
    PARSERS,
    PLACEHOLDERS,
    RUN_ID,
    RUN_JSON,
    RegistryDamagedError,
    RunRecord,
    check_name,
    checkpoint_in,
    decode_roots,
    default_name,
    display_roots,
    encode_roots,
    folder_count,
    folder_values,
    inferred_row,
    missing_reason,
    parse_values,
    printable,
    run_json_of,
)
from workbench.engine.training.config import dataset_roots

try:  # POSIX: an flock dies with its process, which is exactly the liveness signal we want
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

_SCHEMA_ATTEMPTS = 20  # about 10 s of back-off in all

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
        self._file = RegistryFile(
            self.root, self.db_path, self.read_only_reason, warn=self._warn, rebuild=self._rebuild
        )
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
        self._file.require_writable()

    def _create_schema(self) -> None:
        # SQLite answers "database is locked" at once, without waiting out the busy timeout, when two
        # processes (DDP ranks, the app and the CLI) create or switch a fresh registry together.
        # Retry briefly; WAL is persistent, so once one process has switched it nobody else needs to.
        fresh = False
        for attempt in range(_SCHEMA_ATTEMPTS):
            try:
                fresh = self._execute(ensure_table)
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
                    f"the run registry {self.db_path} was missing or empty; rebuilt it from {folder_count(adopted)}"
                )

    def _open_read_only(self) -> None:
        """Read what is there without writing anything; a registry that cannot be read gives way to the run
        folders (listed, not repaired: repairing needs write access)."""
        if not self.db_path.exists():
            self._from_folders = True
            return
        try:
            has_table = self._execute(has_table_runs, write=False)
        except RegistryDamagedError as exc:
            self._from_folders = True
            self._warn(
                f"{exc}; listing the runs from their folders (the home is read-only, so it stays as it is)"
            )
            return
        self._from_folders = not has_table

    # ---- the registry file (its health: registry_file.py) -------------------------------------------
    @contextlib.contextmanager
    def _connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        with self._file.connect(write) as db:
            yield db

    def _execute(self, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        return self._file.execute(work, write=write)

    def _rebuild(self) -> int:
        """A fresh registry file after a damaged one was set aside: the run folders' rows, counted."""
        with self._connect() as db:
            ensure_table(db)
        return self._adopt_folders()

    def _adopt_folders(self) -> int:
        """Give every run folder the registry does not list its row back (from run.json, config.json, history)."""
        rows = self._folder_rows()
        placeholders = ", ".join("?" for _ in COLUMNS)
        with self._connect() as db:
            for row in rows:
                db.execute(
                    f"INSERT OR IGNORE INTO runs ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                    [row[column] for column in COLUMNS],
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
            if not RUN_ID.fullmatch(run_dir.name) or run_dir.is_symlink() or not run_dir.is_dir():
                continue
            found = folder_values(run_dir)
            if not (run_dir / RUN_JSON).exists() and self._lock_held(run_dir):
                continue  # a run being created right now: its own row is on the way
            if "config" not in found and "status" not in found:
                self._warn(f"{run_dir} holds no readable run.json or config.json; it is not listed")
                continue
            rows.append(inferred_row(run_dir.name, run_dir, found))
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
        name = check_name(name or default_name(model, roots))
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
        run_dir = self.runs_dir / run_id
        try:
            run_dir.mkdir(parents=True)
        except OSError as exc:
            raise WorkbenchError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}") from None
        handle = RunHandle(functools.partial(self._update, run_id), run_id, run_dir)
        try:
            self._acquire(handle)
            handle.write_json("config.json", config)
            now = time.time()
            row = {
                "run_id": run_id, "name": name, "status": "running", "model": model,
                "dataset": encode_roots(roots), "config": json.dumps(config), "metrics": "[]", "created": now,
                "updated": now, "run_dir": f"runs/{run_id}", "checkpoint": None, "best_val_acc": None,
                "test_acc": None, "reason": "", "pid": os.getpid(),
            }  # fmt: skip
            self._insert(row)
            # After the row: a folder holding run.json is one the registry has listed (a rebuild may adopt it).
            handle.write_json(RUN_JSON, run_json_of(row))
        except BaseException:
            handle.close()
            shutil.rmtree(run_dir, ignore_errors=True)  # no orphan folder without a registry row
            with contextlib.suppress(WorkbenchError):
                self._execute(lambda db: db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)))
            raise
        return handle

    def _insert(self, row: dict[str, Any]) -> None:
        placeholders = ", ".join("?" for _ in COLUMNS)
        self._execute(
            lambda db: db.execute(
                # REPLACE: a rebuild running in another process may have adopted the folder a moment ago
                f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES ({placeholders})",
                [row[column] for column in COLUMNS],
            )
        )

    def reopen_run(self, run_id: str) -> RunHandle:
        """Take over an existing run to continue it (resume)."""
        self._require_writable()
        record = self.get(run_id)
        if record.status == "running":
            raise WorkbenchError(f"run {run_id} is still running in another process; stop it first")
        if record.folder_missing:
            raise WorkbenchError(f"run {record.run_id} cannot continue: {missing_reason(record.run_dir)}")
        handle = RunHandle(functools.partial(self._update, record.run_id), record.run_id, Path(record.run_dir))
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
        self._update(record.run_id, touch=False, name=check_name(name.strip()))
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
        if not RUN_ID.fullmatch(run_dir.name) or run_dir.parent.resolve() != self.runs_dir.resolve():
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
        if "reason" in fields:  # kept with the options it names, for each client to say (errors.stored_text)
            values["reason"] = stored_text(fields["reason"], printable)
        assignments = ", ".join(f"{key} = ?" for key in values)

        def work(db: sqlite3.Connection) -> tuple | None:
            db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*values.values(), run_id))
            return db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()

        row = self._execute(work)
        if row is not None:
            self._write_run_json(dict(zip(COLUMNS, row, strict=True)))

    def _write_run_json(self, row: dict[str, Any]) -> None:
        """Best effort: the row is already safe; a full disk here must not fail the run a second time, and a
        deleted folder must not be recreated (atomic writes create parents)."""
        run_dir = self.runs_dir / row["run_id"]
        if RUN_ID.fullmatch(row["run_id"]) and run_dir.is_dir():
            with contextlib.suppress(OSError, ValueError, TypeError):
                write_json_atomic(run_dir / RUN_JSON, run_json_of(row))

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
                return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
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
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            self._warn(
                f"the run registry {self.db_path} holds a row with an unusable run id {run_id!r}; ignored"
            )
            return None
        run_dir = self.runs_dir / run_id
        values, bad = parse_values(row, list(PARSERS))
        if bad:
            values, bad = self._repair(run_id, run_dir, values, bad)
        values = {**PLACEHOLDERS, **values}
        roots = decode_roots(values["dataset"])
        record = RunRecord(
            run_id, values["name"], values["status"], values["model"], display_roots(roots), values["config"],
            values["metrics"], values["created"], values["updated"], str(run_dir),
            checkpoint_in(run_dir, run_id, values["checkpoint"]), values["best_val_acc"], values["test_acc"],
            values["reason"], roots,
        )  # fmt: skip
        if bad:
            record.status = DAMAGED
            record.reason = (
                f"its registry entry is damaged ({', '.join(bad)}) and its run folder cannot restore it"
            )
            self._warn(f"run {run_id}: {record.reason}")
        elif record.folder_missing:
            record.status, record.reason = MISSING, missing_reason(record.run_dir)
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
        found = folder_values(run_dir)
        fixed, still_bad = parse_values(found, bad)
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


def _select_rows(db: sqlite3.Connection) -> list[tuple]:
    return db.execute(f"SELECT {', '.join(COLUMNS)} FROM runs ORDER BY created DESC").fetchall()


def _pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
