"""Full or read-only disks: writing a checkpoint, the run folder, the registry or the decoded-image cache fails
with a clear error, the previous checkpoint stays intact, and the run can be resumed once there is room.

Three kinds of failure, all with the real Trainer where one is involved:
- simulated ENOSPC (a monkeypatched `torch.save` that writes half a file, then fails) — exact and portable;
- a real read-only folder (chmod 555, made binding for root too with `as_ordinary_user`);
- a really full filesystem: a 16 MB tmpfs filled to the last byte when the test may mount one (root with
  CAP_SYS_ADMIN, as in this project's containers); elsewhere the kernel's file-size limit (RLIMIT_FSIZE at
  1 byte), under which every write that grows a file fails too — with EFBIG ("File too large") instead of
  ENOSPC. Either way the kernel refuses the writes; nothing in the engine is patched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_rel_privileges import as_ordinary_user

from workbench.engine.data import cache as cache_module
from workbench.engine.data import load_decoded, scan_dataset
from workbench.engine.errors import DatasetError, WorkbenchError
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import CheckpointSaved, EpochEnded, RunFinished
from workbench.engine.training.trainer import Trainer

DISK_FULL_WORDS = ("No space left on device", "File too large")


def tiny_dataset(root: Path, per_class: int = 12) -> Path:
    rng = np.random.default_rng(1)
    for c, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray((rng.integers(0, 100, (8, 8)) + 150 * c).astype(np.uint8)).save(
                root / name / f"{i}.png"
            )
    return root


def config(data: Path, epochs: int = 3) -> TrainConfig:
    return TrainConfig(data=str(data), model="course_cnn", epochs=epochs, batch_size=8, img_size=8, seed=3)


def run(trainer: Trainer, on_event: Callable[[object], None] | None = None) -> list:
    events = []
    for event in trainer.run():
        events.append(event)
        if on_event is not None:
            on_event(event)
    assert isinstance(events[-1], RunFinished)
    return events


def leftovers(folder: Path) -> list[str]:
    """Temp files an interrupted atomic write would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------- simulated


def test_a_full_disk_at_a_checkpoint_fails_the_run_clearly_and_keeps_the_previous_one(tmp_path, monkeypatch):
    data = tiny_dataset(tmp_path / "data")
    real_write_atomic = ckpt.write_atomic
    full: list[bool] = []

    def write_to_a_full_disk(target, write):  # once full, a file write fails half-way with ENOSPC
        if not full:
            return real_write_atomic(target, write)

        def half_then_fail(handle):
            handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real_write_atomic(target, half_then_fail)

    def fill_at_epoch_two(event) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 2:
            full.append(True)

    monkeypatch.setattr(ckpt, "write_atomic", write_to_a_full_disk)
    events = run(Trainer(config(data)), fill_at_epoch_two)

    finished = events[-1]
    assert finished.status == "failed"
    assert "could not write checkpoint" in finished.reason and "No space left on device" in finished.reason
    assert "previous checkpoint is untouched" in finished.reason
    record = RunRegistry().get(finished.run_id)
    assert record.status == "failed" and record.reason == finished.reason
    checkpoints = Path(record.run_dir) / "checkpoints"
    assert ckpt.load_checkpoint(checkpoints / ckpt.LAST)["epoch"] == 1
    assert leftovers(checkpoints) == []

    full.clear()  # space freed: the run continues where it stopped
    resumed = run(Trainer(resume=finished.run_id))
    assert resumed[-1].status == "finished" and resumed[-1].epochs == 3
    assert [e.epoch for e in resumed if isinstance(e, EpochEnded)] == [2, 3]


def test_a_full_registry_database_is_a_clear_error_and_keeps_its_rows(tmp_path, monkeypatch):
    """SQLite's own 'disk full' (SQLITE_FULL), produced for real by capping the database's page count."""
    registry = RunRegistry(tmp_path)
    done = registry.create_run(model="m", dataset="d", config={})
    done.finish("finished")
    connect = sqlite3.connect

    def connect_to_a_full_disk(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
        return db

    monkeypatch.setattr(sqlite3, "connect", connect_to_a_full_disk)
    with pytest.raises(
        WorkbenchError, match=r"cannot write the run registry .*registry.sqlite: database or disk is full"
    ):
        registry.create_run(model="m", dataset="d", config={"notes": "x" * 100_000})
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert [(r.run_id, r.status) for r in registry.list_runs()] == [(done.run_id, "finished")]


# ---------------------------------------------------------------------------------------------- read-only


def test_a_read_only_checkpoint_folder_fails_the_run_clearly_and_keeps_the_previous_one(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    locked: list[Path] = []

    def lock_after_first_checkpoint(event) -> None:
        if isinstance(event, CheckpointSaved) and event.epoch == 1:
            folder = Path(event.path).parent
            folder.chmod(0o555)
            locked.append(folder)

    try:
        events = as_ordinary_user(run, Trainer(config(data)), lock_after_first_checkpoint)
    finally:
        for folder in locked:
            folder.chmod(0o755)

    finished = events[-1]
    assert finished.status == "failed"
    assert "could not write checkpoint" in finished.reason and "Permission denied" in finished.reason
    checkpoints = locked[0]
    assert ckpt.load_checkpoint(checkpoints / ckpt.LAST)["epoch"] == 1
    assert leftovers(checkpoints) == []
    assert RunRegistry().get(finished.run_id).status == "failed"


def test_a_read_only_cache_folder_costs_nothing_but_the_cache(tmp_path):
    data = tiny_dataset(tmp_path / "data", per_class=4)
    samples = scan_dataset(data, val_fraction=0.0).samples
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o555)

    split = as_ordinary_user(load_decoded, samples, 8, 1, cache_root=cache)

    assert len(split.labels) == 8 and split.problems == []
    assert list(cache.iterdir()) == []  # nothing could be written, and nothing was needed


# ---------------------------------------------------------------------------------------------- really full


@pytest.fixture
def full_disk(tmp_path, monkeypatch) -> Iterator[tuple[Path, Callable[[], None]]]:
    """(WORKBENCH_HOME on a disk that works, fill() — after which no file on it can grow)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mount = shutil.which("mount")
    command = [mount or "mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)]
    mounted = mount is not None and subprocess.run(command, capture_output=True).returncode == 0
    home = mount_point / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)

    def fill() -> None:
        if mounted:
            with contextlib.suppress(OSError), open(mount_point / "filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * (1 << 16))
                    filler.flush()
            with contextlib.suppress(OSError), open(mount_point / "filler2", "wb") as filler:
                while True:  # the last few KB left by a half-written block
                    filler.write(b"\0" * 512)
                    filler.flush()
        else:  # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (1, limit[1]))

    def free() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        for name in ("filler", "filler2"):
            with contextlib.suppress(OSError):
                (mount_point / name).unlink()

    fill.free = free  # type: ignore[attr-defined]
    try:
        yield home, fill
    finally:
        free()
        if mounted:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_training_onto_a_really_full_disk_fails_keeps_the_checkpoint_and_resumes_later(tmp_path, full_disk):
    home, fill = full_disk
    data = tiny_dataset(tmp_path / "data")
    filled_at: list[int] = []

    def fill_after_first_checkpoint(event) -> None:
        if isinstance(event, CheckpointSaved) and event.epoch == 1 and not filled_at:
            fill()
            filled_at.append(event.epoch)

    try:
        events = run(Trainer(config(data)), fill_after_first_checkpoint)
    finally:
        fill.free()

    finished = events[-1]
    assert filled_at == [1] and finished.status == "failed"
    assert any(words in finished.reason for words in DISK_FULL_WORDS), finished.reason
    run_dir = home / "data" / "runs" / finished.run_id
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / ckpt.LAST)["epoch"] == 1
    assert leftovers(run_dir / "checkpoints") == [] and leftovers(run_dir) == []
    # The registry could not be written either: the run must not look alive.
    assert RunRegistry().get(finished.run_id).status in ("failed", "interrupted")

    resumed = run(Trainer(resume=finished.run_id))  # space is free again
    assert resumed[-1].status == "finished" and resumed[-1].epochs == 3
    record = RunRegistry().get(finished.run_id)
    assert record.status == "finished" and [m["epoch"] for m in record.metrics] == [1, 2, 3]


def test_spilling_decoded_images_to_a_full_disk_is_a_clear_error_not_a_crash(
    tmp_path, full_disk, monkeypatch
):
    """Writing through a memory map into a sparse file on a full disk would kill the process (SIGBUS):
    the space is reserved up front instead, so the failure is an ordinary, explained error."""
    home, fill = full_disk
    samples = scan_dataset(tiny_dataset(tmp_path / "data", per_class=6), val_fraction=0.0).samples
    monkeypatch.setattr(cache_module, "memory_budget", lambda: 0)
    cache = home / "cache-" / uuid.uuid4().hex
    load_decoded(samples, 8, 1, cache_root=cache)  # works while there is room
    fill()
    try:
        with pytest.raises(DatasetError) as caught:
            load_decoded(samples, 64, 3, cache_root=cache)
    finally:
        fill.free()
    message = str(caught.value)
    assert "fit neither in memory nor in" in message and str(cache) in message
    assert any(words in message for words in DISK_FULL_WORDS) and "--img-size" in message
    assert list((cache / "memmap").iterdir()) == []  # the reservation was removed
