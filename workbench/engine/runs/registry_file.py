"""The registry's SQLite file and its health: opening it (read-write, or read-only without writing a byte),
one transaction per piece of work, and recovery when the file is damaged: it is set aside under a name no one
reads (`registry.sqlite.damaged-<time>`, with its WAL) and a fresh one is rebuilt from the run folders, by one
process at a time, and said in the registry's warnings. What the rows mean is registry.py's business; this
module only keeps the file usable."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from workbench.engine.errors import WorkbenchError
from workbench.engine.runs.rows import RegistryDamagedError, folder_count, is_damage

try:  # POSIX: the rebuild lock is an flock on the home folder
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

SCHEMA = """
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


class RegistryFile:
    """`registry.sqlite` of one home. `read_only_reason` (None: writable) says why nothing may be written;
    `warn` takes what the user should be told; `rebuild()` fills a fresh file from the run folders and
    returns how many runs it listed again."""

    def __init__(
        self,
        root: Path,
        db_path: Path,
        read_only_reason: str | None,
        *,
        warn: Callable[[str], None],
        rebuild: Callable[[], int],
    ) -> None:
        self.root = root
        self.db_path = db_path
        self.read_only_reason = read_only_reason
        self._warn = warn
        self._rebuild = rebuild

    def require_writable(self) -> None:
        if self.read_only_reason is not None:
            raise WorkbenchError(
                f"the workbench home {self.root} is read-only here ({self.read_only_reason}): runs can be listed "
                "and used, not created, resumed or deleted. Make the folder writable or set WORKBENCH_HOME to a "
                "writable copy of it"
            )

    @contextlib.contextmanager
    def connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        if write:
            self.require_writable()
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
        if is_damage(exc):
            return RegistryDamagedError(f"the run registry {self.db_path} is damaged ({exc})")
        return WorkbenchError(f"cannot {verb} the run registry {self.db_path}: {exc}")

    def execute(self, work: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """`work` in one transaction. A damaged registry file is set aside and rebuilt from the run folders, then
        `work` runs once more on the rebuilt one (read-only homes cannot rebuild: the error goes up)."""
        try:
            with self.connect(write) as db:
                return work(db)
        except RegistryDamagedError as exc:
            if self.read_only_reason is not None:
                raise
            self.recover(str(exc))
        with self.connect(write) as db:
            return work(db)

    def recover(self, damage: str) -> None:
        with self._exclusive():
            if self._healthy():  # another process rebuilt it while we waited for the lock
                return
            aside = self._set_aside()
            adopted = self._rebuild()
        self._warn(f"{damage}; kept it as {aside.name} and rebuilt the registry from {folder_count(adopted)}")

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


def ensure_table(db: sqlite3.Connection) -> bool:
    """Create the table (WAL mode); True when it did not exist (a new, emptied or deleted registry)."""
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    fresh = not has_table_runs(db)
    db.execute(SCHEMA)
    return fresh


def has_table_runs(db: sqlite3.Connection) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'").fetchone()
        is not None
    )
