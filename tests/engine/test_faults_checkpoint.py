"""Checkpoint faults of issue #12: damaged files, a full disk while saving, empty error messages, a deleted
run folder. Every case ends in a WorkbenchError whose message names the file or folder — through
`load_checkpoint`, `load_model` and the real CLI — never in a traceback or a model that predicts nonsense.

The damage is done to checkpoints of a real tiny training run; the full disk is a real 16 MB tmpfs (or, where
no filesystem can be mounted, the kernel's file-size limit), as in test_disk_errors.py.
"""

from __future__ import annotations

import contextlib
import random
import re
import resource
import shutil
import struct
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from test_disk_errors import DISK_FULL_WORDS, config, leftovers, run, tiny_dataset

from workbench.cli import main
from workbench.engine.errors import WeightsError, WorkbenchError
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training import trainer as trainer_module
from workbench.engine.training.events import CheckpointSaved, EpochEnded
from workbench.engine.training.trainer import Trainer

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """(dataset folder, run folder) of one real 3-epoch run whose best.pt and last.pt differ. Read-only."""
    root = tmp_path_factory.mktemp("faults-trained")
    data = tiny_dataset(root / "data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(root / "home"))
        finished = run(Trainer(config(data)))[-1]
        run_dir = Path(RunRegistry().get(finished.run_id).run_dir)
    assert finished.status == "finished"
    return data, run_dir


@pytest.fixture
def run_copy(trained, tmp_path) -> tuple[Path, Path]:
    """(dataset folder, a private copy of the run folder) that a test may damage."""
    data, run_dir = trained
    return data, Path(shutil.copytree(run_dir, tmp_path / "run"))


def record_span(path: Path, name_suffix: str) -> tuple[int, int]:
    """(offset, length) of the stored bytes of the zip record whose name ends with `name_suffix`."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(name_suffix))
    with open(path, "rb") as f:
        f.seek(info.header_offset + 26)  # the local header's name and extra-field lengths
        name_length, extra_length = struct.unpack("<HH", f.read(4))
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def largest_tensor(path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    return record_span(path, info.filename)


def flip(path: Path, start: int, length: int, count: int, seed: int = 0) -> None:
    """Invert `count` random bytes of path[start:start + length] (all of them when count >= length)."""
    data = bytearray(path.read_bytes())
    for i in random.Random(seed).sample(range(start, start + length), min(count, length)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_tensor_data(path: Path) -> None:
    flip(path, *largest_tensor(path), count=200)  # the case: these used to load without a word


def damage_pickle(path: Path) -> None:
    flip(path, *record_span(path, "data.pkl"), count=20)


def damage_zip_directory(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        start = archive.start_dir
    flip(path, start, 200, count=200)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE: dict[str, Callable[[Path], None]] = {
    "tensor-data": damage_tensor_data,
    "pickle": damage_pickle,
    "zip-directory": damage_zip_directory,
    "truncated": truncate,
    "zero-bytes": empty,
}


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the real CLI; (exit code, everything it printed)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ---------------------------------------------------------------------------------------------- item 5, 10


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_best_checkpoint_is_refused_everywhere_and_names_the_intact_copy(run_copy, capsys, damage):
    data, run_dir = run_copy
    best, last = run_dir / "checkpoints" / ckpt.BEST, run_dir / "checkpoints" / ckpt.LAST
    assert best.read_bytes() != last.read_bytes()  # different epochs: falling back is a real choice
    damage(best)

    for load in (ckpt.load_checkpoint, ckpt.load_model):
        with pytest.raises(WeightsError) as caught:
            load(best)
        message = str(caught.value)
        assert str(best) in message
        assert f"{last} (after epoch 3), is intact" in message  # the copy to fall back to
    image = next((data / "dark").iterdir())
    for argv in (("eval", str(run_dir), str(data)), ("predict", str(run_dir), str(image))):
        code, printed = cli(capsys, *argv)
        assert code != 0 and "Traceback" not in printed
        assert f"error: checkpoint {best}" in printed and str(last) in printed


def test_a_damaged_last_checkpoint_blocks_resume_and_points_to_best(run_copy):
    _, run_dir = run_copy
    best, last = run_dir / "checkpoints" / ckpt.BEST, run_dir / "checkpoints" / ckpt.LAST
    damage_tensor_data(last)
    with pytest.raises(WeightsError, match=re.escape(f"{best} (after epoch ")) as caught:
        ckpt.load_checkpoint(last)
    assert "cannot be resumed" in str(caught.value) and f"--weights {best}" in str(caught.value)
    damage_pickle(best)
    with pytest.raises(WeightsError, match=re.escape(f"{best} is damaged too")):
        ckpt.load_checkpoint(last)


def test_changed_weights_in_a_rewritten_file_are_caught_by_the_digest(run_copy):
    """Damage the zip CRC-32s cannot see (the file re-saved around it): the stored sha256 digest does."""
    _, run_dir = run_copy
    best = run_dir / "checkpoints" / ckpt.BEST
    payload = torch.load(best, weights_only=True)
    assert payload[ckpt.DIGEST].startswith("sha256:")
    for change in (
        lambda p: p["model_state"][next(iter(p["model_state"]))].view(-1)[0].add_(1.0),
        lambda p: p["classes"].reverse(),
        lambda p: p["preprocessing"]["mean"].__setitem__(0, 0.0),
    ):
        changed = torch.load(best, weights_only=True)
        change(changed)
        torch.save(changed, best)
        with pytest.raises(WeightsError, match=re.escape(f"checkpoint {best} is damaged: its weights")):
            ckpt.load_checkpoint(best)
    torch.save(payload, best)
    assert ckpt.load_checkpoint(best)["epoch"] == payload["epoch"]


def test_an_older_checkpoint_without_a_digest_loads_and_its_damage_is_still_caught(run_copy):
    _, run_dir = run_copy
    old = run_dir / "old.pt"
    payload = torch.load(run_dir / "checkpoints" / ckpt.BEST, weights_only=True)
    del payload[ckpt.DIGEST]
    torch.save(payload, old)  # as versions before the digest wrote it
    model, meta = ckpt.load_model(old)
    assert meta["classes"] == payload["classes"] and ckpt.DIGEST not in meta
    damage_tensor_data(old)  # the zip's CRC-32s still catch it
    with pytest.raises(
        WeightsError,
        match=re.escape(f"checkpoint {old} is damaged: its bytes are not the ones saved (Bad CRC-32"),
    ):
        ckpt.load_model(old)


def test_a_zero_byte_checkpoint_is_a_clear_error_not_a_crash_of_the_error_handler(tmp_path, capsys):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(WeightsError, match=re.escape(f"checkpoint {path} is empty (0 bytes)")):
        ckpt.load_checkpoint(path)
    code, printed = cli(capsys, "predict", str(path), str(tmp_path))
    assert code == 2 and "Traceback" not in printed and str(path) in printed


def test_error_messages_never_assume_a_first_line():
    """The class of item 10: `str(exc).splitlines()[0]` fails on an empty message. One helper instead."""
    from workbench.engine.errors import first_line

    assert first_line(EOFError()) == "EOFError"
    assert first_line(RuntimeError("\n  \nsecond line\nthird")) == "second line"
    assert first_line(ValueError("x" * 500), 10) == "x" * 10
    idiom = re.compile(r"splitlines\(\)\s*\[\s*0\s*\]|split\(\s*['\"]\\n['\"]\s*\)\s*\[\s*0\s*\]")
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if idiom.search(line)
    ]
    assert offenders == [], "use workbench.engine.errors.first_line(exc)"


# ---------------------------------------------------------------------------------------------- item 6


@pytest.fixture
def small_disk(tmp_path, monkeypatch) -> Iterator[tuple[Path, Callable[..., None], Callable[[], None]]]:
    """(WORKBENCH_HOME on a 16 MB disk, fill(leave=0), free()). fill leaves about `leave` bytes of room.

    A real tmpfs when the test may mount one; elsewhere RLIMIT_FSIZE, under which no file grows past
    `leave` bytes (EFBIG, "File too large") — the kernel refuses the writes either way, nothing is patched.
    """
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mount = shutil.which("mount")
    command = [mount or "mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)]
    mounted = mount is not None and subprocess.run(command, capture_output=True).returncode == 0
    home = mount_point / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    fillers = [mount_point / "filler", mount_point / "filler2"]

    def fill(leave: int = 0) -> None:
        if not mounted:  # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (max(leave, 1), limit[1]))
            return
        for filler, chunk in zip(fillers, (1 << 16, 512), strict=True):  # the last KB of a half block too
            with contextlib.suppress(OSError), open(filler, "wb") as f:
                while True:
                    f.write(b"\0" * chunk)
                    f.flush()
        if leave:
            with open(fillers[0], "rb+") as f:
                f.truncate(max(f.seek(0, 2) - leave, 0))

    def free() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        for filler in fillers:
            with contextlib.suppress(OSError):
                filler.unlink()

    try:
        yield home, fill, free
    finally:
        free()
        if mounted:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_disk_filling_up_during_a_checkpoint_write_is_a_clear_error_and_keeps_the_previous_one(
    tmp_path, small_disk
):
    """The disk has some room, less than a checkpoint: torch's own writer used to fail half-way with
    "internal error: RuntimeError ... inline_container.cc"; now it is the clear disk-full message."""
    home, fill, free = small_disk
    data = tiny_dataset(tmp_path / "data")
    room = 32 * 1024
    sizes: list[int] = []

    def fill_before_second_checkpoint(event) -> None:
        if isinstance(event, CheckpointSaved):
            sizes.append(Path(event.path).stat().st_size)
        if (
            isinstance(event, EpochEnded) and event.epoch == 2
        ):  # the registry has its row: only the save is left
            fill(leave=room)

    try:
        finished = run(Trainer(config(data)), fill_before_second_checkpoint)[-1]
    finally:
        free()

    assert sizes and sizes[0] > 2 * room  # the next checkpoint cannot fit: the write must fail part-way
    assert finished.status == "failed" and "internal error" not in finished.reason, finished.reason
    assert (
        "could not write checkpoint" in finished.reason
        and "previous checkpoint is untouched" in finished.reason
    )
    assert any(words in finished.reason for words in DISK_FULL_WORDS), finished.reason
    assert "error.log" not in finished.reason  # nothing to look up: the message says it all
    checkpoints = home / "data" / "runs" / finished.run_id / "checkpoints"
    assert ckpt.load_checkpoint(checkpoints / ckpt.LAST)["epoch"] == 1
    assert leftovers(checkpoints) == []


def test_an_internal_error_keeps_its_traceback_and_never_points_to_a_log_it_could_not_write(
    tmp_path, small_disk, monkeypatch
):
    home, fill, free = small_disk
    data = tiny_dataset(tmp_path / "data")
    real_step = trainer_module.train_step
    broken: list[bool] = []

    def step_with_a_bug(*args, **kwargs):
        if broken:
            raise RuntimeError("simulated bug\nsecond line")
        return real_step(*args, **kwargs)

    def break_after_first_checkpoint(event, then: Callable[[], None]) -> None:
        if isinstance(event, CheckpointSaved) and not broken:
            broken.append(True)
            then()

    monkeypatch.setattr(trainer_module, "train_step", step_with_a_bug)
    # Disk full: the log cannot be written, and the message says so instead of pointing to an empty file.
    try:
        finished = run(Trainer(config(data)), lambda e: break_after_first_checkpoint(e, fill))[-1]
    finally:
        free()
    log = home / "data" / "runs" / finished.run_id / "error.log"
    assert not log.exists() or log.stat().st_size > 0
    assert finished.reason.startswith("internal error: RuntimeError: simulated bug (the details could not be")
    assert str(log) in finished.reason and any(words in finished.reason for words in DISK_FULL_WORDS)

    # Disk fine: the message (its first line only) points to a log that holds the whole traceback.
    broken.clear()
    finished = run(Trainer(config(data)), lambda e: break_after_first_checkpoint(e, lambda: None))[-1]
    log = home / "data" / "runs" / finished.run_id / "error.log"
    assert finished.reason == f"internal error: RuntimeError: simulated bug (details in {log})"
    assert "Traceback" in log.read_text() and "second line" in log.read_text()


# ---------------------------------------------------------------------------------------------- item 13


def test_a_deleted_run_folder_is_named_as_missing_not_as_a_run_without_checkpoints(tmp_path, capsys):
    data = tiny_dataset(tmp_path / "data", per_class=6)
    finished = run(Trainer(config(data, epochs=1)))[-1]
    run_dir = Path(RunRegistry().get(finished.run_id).run_dir)
    shutil.rmtree(run_dir)

    with pytest.raises(WorkbenchError) as caught:
        ckpt.find_checkpoint(finished.run_id)
    assert str(run_dir) in str(caught.value) and "missing (deleted or moved)" in str(caught.value)
    code, printed = cli(capsys, "predict", finished.run_id, str(data))
    assert code == 2 and "Traceback" not in printed and "missing (deleted or moved)" in printed
