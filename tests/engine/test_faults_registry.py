"""Registry faults of issue #12, each met with real files, the real registry and the real CLI.

1. a home copied or moved elsewhere: its runs are found inside it, and nothing outside it is written or deleted;
9. a damaged `registry.sqlite` (garbage, truncated, empty, gone) or one damaged row: set aside, rebuilt from the
   run folders, and said so; the other runs never disappear;
13. a run folder deleted behind the registry's back: listed as `missing`, and its row can still be removed;
15. a read-only home: `runs`, `eval` and `predict` work; writing commands fail naming the folder;
3. dataset roots are a list: a root named `ti:me` stays one root, a non-UTF-8 root survives the round trip.

A tiny real training run (two classes of 8x8 images, one epoch) is made once per module; each test works on its
own copy of that home.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_rel_privileges import as_ordinary_user

from workbench.cli import main
from workbench.engine.errors import WorkbenchError
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import RunFinished
from workbench.engine.training.trainer import Trainer

# ---------------------------------------------------------------------------------------------- helpers


def tiny_dataset(root: Path, per_class: int = 12) -> Path:
    rng = np.random.default_rng(5)
    for c, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (8, 8)) + 150 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_json(capsys, *args: str) -> tuple[int, object, str]:
    code, out, err = cli(capsys, *args, "--json")
    lines = out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines else None), err


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes: 'byte-for-byte untouched' made checkable."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory.mktemp("faults-registry-data") / "shapes")


@pytest.fixture(scope="module")
def pristine_home(dataset, tmp_path_factory) -> tuple[Path, str]:
    """A WORKBENCH_HOME holding one finished one-epoch run (read-only for the tests: they copy it)."""
    home = tmp_path_factory.mktemp("faults-registry-home") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        code = main(
            ["train", str(dataset), "--model", "course_cnn", "--epochs", "1", "--batch-size", "8",
             "--img-size", "8", "--seed", "1", "--json"]
        )  # fmt: skip
        assert code == 0
        run_id = RunRegistry().get("last").run_id
    return home, run_id


@pytest.fixture
def home(pristine_home, tmp_path, monkeypatch) -> tuple[Path, str]:
    """This test's own copy of the trained home, set as WORKBENCH_HOME."""
    source, run_id = pristine_home
    copy = tmp_path / "home"
    shutil.copytree(source, copy, symlinks=True)
    monkeypatch.setenv("WORKBENCH_HOME", str(copy))
    return copy, run_id


def data_dir(home: Path) -> Path:
    return home / "data"


def set_column(db_path: Path, run_id: str, **values: object) -> None:
    """Write raw values into a registry row, as an old version or a damaged disk would have left them."""
    db = sqlite3.connect(db_path)
    with db:
        for column, value in values.items():
            db.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (value, run_id))
    db.close()


def as_an_old_version_wrote_it(home: Path, run_id: str) -> None:
    """Versions before issue #12 stored the run folder and checkpoint as absolute paths of the home they ran in
    (and wrote no run.json): make the home's row look like that, so copies and moves start from old registries."""
    run_dir = data_dir(home) / "runs" / run_id
    set_column(
        data_dir(home) / "registry.sqlite", run_id,
        run_dir=str(run_dir), checkpoint=str(run_dir / "checkpoints" / ckpt.BEST),
    )  # fmt: skip
    (run_dir / "run.json").unlink(missing_ok=True)


def three_runs(root: Path) -> tuple[RunRegistry, list[str]]:
    """Three finished runs of the registry alone (no training), each with history and a checkpoint file."""
    registry = RunRegistry(root)
    run_ids = []
    for n, (status, reason) in enumerate(
        (("finished", ""), ("failed", "out of memory"), ("stopped", "by you"))
    ):
        handle = registry.create_run(model=f"model{n}", dataset=f"/data/set{n}", config={"epochs": n + 1})
        history = [{"epoch": e + 1, "val_acc": 0.1 * (e + n + 1)} for e in range(n + 1)]
        handle.record_epoch(history, best_val_acc=history[-1]["val_acc"])
        (handle.checkpoints_dir / ckpt.LAST).write_bytes(b"weights")
        handle.record_checkpoint(handle.checkpoints_dir / ckpt.LAST)
        handle.finish(status, reason, test_acc=0.5 if status == "finished" else None)
        run_ids.append(handle.run_id)
    return registry, run_ids


KEY_FIELDS = ("run_id", "name", "status", "model", "dataset", "datasets", "config", "metrics", "created",
              "run_dir", "checkpoint", "best_val_acc", "test_acc", "reason")  # fmt: skip


def key_fields(records) -> list[dict]:
    return [{k: getattr(r, k, None) for k in KEY_FIELDS} for r in records]


@pytest.fixture
def restore_permissions() -> Iterator[list[Path]]:
    """Folders made read-only by a test get their write bits back afterwards (so tmp cleanup works)."""
    touched: list[Path] = []
    yield touched
    for top in touched:
        for path in [top, *top.rglob("*")]:
            if path.is_dir() and not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


def make_read_only(folder: Path, touched: list[Path]) -> None:
    touched.append(folder)
    for path in sorted([folder, *folder.rglob("*")], reverse=True):  # children before their folder
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


# ---------------------------------------------------------------------------------------------- 1. a moved home


def test_resume_in_a_copied_home_writes_the_copy_and_leaves_the_original_untouched(
    pristine_home, tmp_path, monkeypatch, capsys
):
    source, run_id = pristine_home
    original, copy = tmp_path / "original", tmp_path / "backup"
    shutil.copytree(source, original, symlinks=True)
    as_an_old_version_wrote_it(original, run_id)
    shutil.copytree(original, copy, symlinks=True)
    before = snapshot(original)
    monkeypatch.setenv("WORKBENCH_HOME", str(copy))

    code, result, err = cli_json(capsys, "train", "--resume", run_id, "--epochs", "2")

    assert code == 0, err
    assert result["status"] == "finished" and result["epochs"] == 2
    assert Path(result["checkpoint"]).is_relative_to(copy)
    assert ckpt.load_checkpoint(data_dir(copy) / "runs" / run_id / "checkpoints" / ckpt.LAST)["epoch"] == 2
    assert snapshot(original) == before  # byte for byte
    record = RunRegistry().get(run_id)
    assert Path(record.run_dir) == data_dir(copy) / "runs" / run_id
    assert Path(record.checkpoint).is_relative_to(Path(record.run_dir))
    assert record.epochs_done == 2


def test_resume_and_eval_in_a_moved_home_use_the_new_place(
    pristine_home, dataset, tmp_path, monkeypatch, capsys
):
    source, run_id = pristine_home
    first, moved = tmp_path / "first-disk" / "home", tmp_path / "new-disk" / "home"
    shutil.copytree(source, first, symlinks=True)
    as_an_old_version_wrote_it(first, run_id)
    moved.parent.mkdir()
    first.rename(moved)  # the old place is gone
    monkeypatch.setenv("WORKBENCH_HOME", str(moved))

    code, report, err = cli_json(capsys, "eval", run_id, str(dataset))
    assert code == 0, err
    assert report["accuracy"] >= 0
    code, result, err = cli_json(capsys, "train", "--resume", run_id, "--epochs", "2")
    assert code == 0, err
    assert result["epochs"] == 2 and Path(result["run_dir"]).is_relative_to(moved)

    assert not first.exists()  # nothing was recreated at the old place
    assert ckpt.load_checkpoint(data_dir(moved) / "runs" / run_id / "checkpoints" / ckpt.LAST)["epoch"] == 2


def test_delete_in_a_copied_home_removes_only_the_copy(pristine_home, tmp_path, monkeypatch, capsys):
    source, run_id = pristine_home
    original, copy = tmp_path / "original", tmp_path / "copy"
    shutil.copytree(source, original, symlinks=True)
    as_an_old_version_wrote_it(original, run_id)
    shutil.copytree(original, copy, symlinks=True)
    before = snapshot(original)
    monkeypatch.setenv("WORKBENCH_HOME", str(copy))

    code, result, err = cli_json(capsys, "runs", "--delete", run_id)

    assert code == 0, err
    assert result == {"deleted": run_id}
    assert not (data_dir(copy) / "runs" / run_id).exists()
    assert snapshot(original) == before
    monkeypatch.setenv("WORKBENCH_HOME", str(original))
    code, listed, _ = cli_json(capsys, "runs")
    assert code == 0 and [r["run_id"] for r in listed] == [run_id]


def test_absolute_paths_of_an_old_registry_resolve_inside_its_home_and_delete_nothing_outside(tmp_path):
    registry = RunRegistry(tmp_path / "home")
    handle = registry.create_run(model="m", dataset="/data/x", config={})
    (handle.checkpoints_dir / ckpt.BEST).write_bytes(b"weights")
    handle.record_checkpoint(handle.checkpoints_dir / ckpt.BEST)
    handle.finish("finished")
    victim = tmp_path / "old-home" / "runs" / handle.run_id  # where the registry once lived
    (victim / "checkpoints").mkdir(parents=True)
    (victim / "checkpoints" / ckpt.BEST).write_bytes(b"someone else's")
    set_column(
        registry.db_path, handle.run_id,
        run_dir=str(victim), checkpoint=str(victim / "checkpoints" / ckpt.BEST),
    )  # fmt: skip

    record = RunRegistry(tmp_path / "home").get(handle.run_id)
    assert Path(record.run_dir) == registry.runs_dir / handle.run_id
    assert Path(record.checkpoint) == registry.runs_dir / handle.run_id / "checkpoints" / ckpt.BEST
    assert RunRegistry(tmp_path / "home").get(str(registry.runs_dir / handle.run_id)).run_id == handle.run_id

    RunRegistry(tmp_path / "home").delete(handle.run_id)
    assert not handle.run_dir.exists()
    assert (victim / "checkpoints" / ckpt.BEST).read_bytes() == b"someone else's"


def test_a_checkpoint_path_pointing_out_of_its_run_folder_is_not_followed(tmp_path):
    registry = RunRegistry(tmp_path / "home")
    handle = registry.create_run(model="m", dataset="/data/x", config={})
    handle.finish("finished")
    set_column(registry.db_path, handle.run_id, checkpoint="../../../../etc/passwd")
    record = RunRegistry(tmp_path / "home").get(handle.run_id)
    assert record.checkpoint is None or Path(record.checkpoint).resolve().is_relative_to(
        handle.run_dir.resolve()
    )


# ---------------------------------------------------------------------------------------------- 9. a damaged registry


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size or 8192))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _deleted(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    "damage", [_garbage, _truncated, _zero_bytes, _deleted], ids=lambda f: f.__name__[1:]
)
def test_a_damaged_registry_is_set_aside_and_rebuilt_from_the_run_folders(home, damage, capsys):
    root, run_id = home
    db_path = data_dir(root) / "registry.sqlite"
    original = RunRegistry().get(run_id)
    damage(db_path)
    damaged_bytes = db_path.read_bytes() if db_path.exists() else None

    code, listed, err = cli_json(capsys, "runs")

    assert code == 0, err
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["status"] == "finished" and listed[0]["best_val_acc"] == original.best_val_acc
    assert "warning:" in err and "rebuilt" in err
    kept = sorted(data_dir(root).glob("registry.sqlite.damaged-*"))
    if damaged_bytes:  # an empty or absent file has nothing worth keeping
        assert [p.read_bytes() for p in kept if not p.name.endswith(("-wal", "-shm"))] == [damaged_bytes]
    assert key_fields([RunRegistry().get(run_id)]) == key_fields([original])
    assert RunRegistry().warnings == []  # rebuilt once, for good


def test_the_rebuilt_registry_keeps_every_runs_name_status_reason_and_numbers(tmp_path):
    registry, run_ids = three_runs(tmp_path)
    before = key_fields(registry.list_runs())
    _garbage(registry.db_path)

    rebuilt = RunRegistry(tmp_path)

    assert key_fields(rebuilt.list_runs()) == before
    assert len(rebuilt.warnings) == 1 and "damaged" in rebuilt.warnings[0]
    assert str(registry.db_path) in rebuilt.warnings[0] and "3 run folders" in rebuilt.warnings[0]


def test_a_registry_damaged_while_open_is_rebuilt_and_the_write_goes_through(tmp_path):
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="m", dataset="/data/x", config={"epochs": 2})
    handle.record_epoch([{"epoch": 1, "val_acc": 0.25}], best_val_acc=0.25)
    _garbage(registry.db_path)
    handle.record_epoch([{"epoch": 1, "val_acc": 0.25}, {"epoch": 2, "val_acc": 0.5}], best_val_acc=0.5)
    handle.finish("finished", test_acc=0.4)
    record = RunRegistry(tmp_path).get(handle.run_id)
    assert (record.status, record.epochs_done, record.best_val_acc, record.test_acc) == (
        "finished",
        2,
        0.5,
        0.4,
    )
    assert any("damaged" in w for w in registry.warnings)


def test_a_legacy_run_folder_without_run_json_is_rebuilt_from_config_and_history(home, capsys):
    root, run_id = home
    original = RunRegistry().get(run_id)
    (data_dir(root) / "runs" / run_id / "run.json").unlink(missing_ok=True)  # as old versions left it
    _garbage(data_dir(root) / "registry.sqlite")

    record = RunRegistry().get(run_id)

    assert record.status == "finished"  # it ran all its epochs
    assert (record.model, record.metrics, record.config) == (
        original.model,
        original.metrics,
        original.config,
    )
    assert record.best_val_acc == original.best_val_acc and record.datasets == original.datasets
    assert record.checkpoint == original.checkpoint


@pytest.mark.parametrize(
    "column, broken", [("config", "{not json"), ("metrics", '[{"epoch": 1, "val'), ("metrics", '{"a": 1}')]
)
def test_one_broken_row_is_repaired_from_its_folder_and_the_others_are_unaffected(tmp_path, column, broken):
    registry, run_ids = three_runs(tmp_path)
    before = key_fields(registry.list_runs())
    set_column(registry.db_path, run_ids[1], **{column: broken})

    fresh = RunRegistry(tmp_path)
    assert key_fields(fresh.list_runs()) == before
    assert any(run_ids[1] in w and "repaired" in w for w in fresh.warnings)
    again = RunRegistry(tmp_path)
    assert key_fields(again.list_runs()) == before and again.warnings == []  # the repair was written back


def test_a_broken_row_whose_folder_cannot_repair_it_is_listed_as_damaged(tmp_path, capsys, monkeypatch):
    registry, run_ids = three_runs(tmp_path / "data")
    (registry.runs_dir / run_ids[0] / "history.json").unlink()
    set_column(registry.db_path, run_ids[0], metrics="[{broken")
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))

    code, listed, err = cli_json(capsys, "runs")

    assert code == 0, err
    by_id = {r["run_id"]: r for r in listed}
    assert set(by_id) == set(run_ids)
    assert by_id[run_ids[0]]["status"] == "damaged" and "metrics" in by_id[run_ids[0]]["reason"]
    assert [by_id[i]["status"] for i in run_ids[1:]] == ["failed", "stopped"]
    code, out, err = cli(capsys, "runs")
    assert code == 0 and "damaged" in out and "warning:" in err
    assert RunRegistry().get(run_ids[0]).status == "damaged"
    code, _, err = cli_json(capsys, "runs", "--delete", run_ids[0])
    assert code == 0, err
    assert [r.run_id for r in RunRegistry().list_runs()] == run_ids[:0:-1]


def test_run_json_is_kept_in_step_with_the_registry_row(tmp_path):
    registry, run_ids = three_runs(tmp_path)
    for record in registry.list_runs():
        saved = json.loads((Path(record.run_dir) / "run.json").read_text())
        assert {k: saved[k] for k in ("name", "model", "datasets", "status", "reason", "best_val_acc", "test_acc")} == {
            "name": record.name, "model": record.model, "datasets": record.datasets, "status": record.status,
            "reason": record.reason, "best_val_acc": record.best_val_acc, "test_acc": record.test_acc,
        }  # fmt: skip
        assert saved["created"] == record.created and saved["updated"] == record.updated


# ---------------------------------------------------------------------------------------------- 13. a deleted run folder


def test_a_deleted_run_folder_is_listed_as_missing_and_its_row_can_be_removed(home, capsys):
    root, run_id = home
    run_dir = data_dir(root) / "runs" / run_id
    shutil.rmtree(run_dir)

    code, listed, err = cli_json(capsys, "runs")
    assert code == 0, err
    assert listed[0]["status"] == "missing"
    assert str(run_dir) in listed[0]["reason"] and "deleted or moved" in listed[0]["reason"]
    code, out, _ = cli(capsys, "runs")
    assert code == 0 and "missing" in out and "finished" not in out

    record = RunRegistry().get(run_id)
    assert record.folder_missing and record.status == "missing"
    code, result, err = cli_json(capsys, "runs", "--delete", run_id)
    assert code == 0, err
    assert result == {"deleted": run_id}
    assert RunRegistry().list_runs() == [] and not run_dir.exists()


def test_a_run_whose_folder_is_gone_cannot_be_reopened_and_comes_back_when_the_folder_does(tmp_path):
    registry, run_ids = three_runs(tmp_path)
    run_dir = registry.runs_dir / run_ids[0]
    aside = tmp_path / "aside"
    run_dir.rename(aside)
    with pytest.raises(WorkbenchError, match="deleted or moved"):
        registry.reopen_run(run_ids[0])
    assert registry.get(run_ids[0]).status == "missing"
    aside.rename(run_dir)  # the disk was remounted: the stored status was never overwritten
    assert registry.get(run_ids[0]).status == "finished" and not registry.get(run_ids[0]).folder_missing


# ---------------------------------------------------------------------------------------------- 15. a read-only home


@pytest.mark.parametrize("cache", ["kept", "deleted"])  # the cache is safe to delete, so a backup may lack it
def test_a_read_only_home_serves_runs_eval_and_predict(home, dataset, capsys, restore_permissions, cache):
    root, run_id = home
    if cache == "deleted":
        shutil.rmtree(root / "cache")
    make_read_only(root, restore_permissions)
    before = snapshot(root)
    image = str(sorted((dataset / "bright").glob("*.png"))[0])

    def read_only_commands() -> list[tuple[int, object, str]]:
        return [
            cli_json(capsys, "runs"),
            cli_json(capsys, "eval", "last", str(dataset)),
            cli_json(capsys, "predict", run_id, image),
        ]

    (runs, listed, err), (evaluated, report, err2), (predicted, predictions, err3) = as_ordinary_user(
        read_only_commands
    )
    assert runs == 0, err
    assert [r["run_id"] for r in listed] == [run_id] and listed[0]["status"] == "finished"
    assert evaluated == 0, err2
    assert 0 <= report["accuracy"] <= 1
    assert predicted == 0, err3
    assert predictions[0]["path"] == image
    assert snapshot(root) == before


def test_writing_commands_on_a_read_only_home_fail_naming_the_folder(
    home, dataset, capsys, restore_permissions
):
    root, run_id = home
    make_read_only(root, restore_permissions)
    before = snapshot(root)
    # `workbench train` installs a SIGINT handler, which only the main thread may: the ordinary-user thread
    # runs the same Trainer the command runs, and `runs --delete` through the CLI itself.
    new_run = TrainConfig(data=str(dataset), model="course_cnn", epochs=1, batch_size=8, img_size=8)

    def writing_commands() -> tuple[tuple[int, str, str], RunFinished, RunFinished]:
        deleted = cli(capsys, "runs", "--delete", run_id)
        resumed = list(Trainer(TrainConfig(epochs=2), resume=run_id).run())[-1]
        started = list(Trainer(new_run).run())[-1]
        return deleted, resumed, started

    (code, out, err), resumed, started = as_ordinary_user(writing_commands)

    assert code != 0 and "Traceback" not in out + err
    for message in (err, resumed.reason, started.reason):
        assert "read-only" in message and str(data_dir(root)) in message
    assert resumed.status == started.status == "failed"
    assert snapshot(root) == before
    assert (data_dir(root) / "runs" / run_id).is_dir()


def test_a_read_only_home_shows_a_dead_run_as_interrupted_without_writing(tmp_path, restore_permissions):
    registry = RunRegistry(tmp_path / "home")
    dead = registry.create_run(model="m", dataset="/data/x", config={})
    dead.close()  # the process died: lock free, row still `running`
    make_read_only(tmp_path / "home", restore_permissions)
    before = snapshot(tmp_path / "home")

    record = as_ordinary_user(lambda: RunRegistry(tmp_path / "home").get(dead.run_id))

    assert record.status == "interrupted"
    assert snapshot(tmp_path / "home") == before


def test_a_write_protected_registry_file_is_read_but_not_written(tmp_path):
    registry, run_ids = three_runs(tmp_path)
    registry.db_path.chmod(0o444)  # the folder stays writable
    before = registry.db_path.read_bytes()

    def read_then_write() -> tuple[list[str], str]:
        opened = RunRegistry(tmp_path)
        listed = [record.run_id for record in opened.list_runs()]
        with pytest.raises(WorkbenchError) as refused:
            opened.create_run(model="m", dataset="/data/x", config={})
        return listed, str(refused.value)

    listed, message = as_ordinary_user(read_then_write)

    assert listed == run_ids[::-1]
    assert (
        "read-only" in message
        and "registry.sqlite is write-protected" in message
        and str(tmp_path) in message
    )
    assert registry.db_path.read_bytes() == before
    assert sorted(p.name for p in registry.runs_dir.iterdir()) == sorted(run_ids)  # no half-made run folder


def test_an_empty_read_only_home_has_no_runs_yet(tmp_path, monkeypatch, capsys, restore_permissions):
    empty = tmp_path / "empty-home"
    empty.mkdir()
    make_read_only(empty, restore_permissions)
    monkeypatch.setenv("WORKBENCH_HOME", str(empty))

    code, out, err = as_ordinary_user(cli, capsys, "runs")

    assert code == 0, err
    assert "no runs yet" in out
    assert list(empty.iterdir()) == []


def test_a_damaged_registry_in_a_read_only_home_is_listed_from_the_run_folders(
    home, capsys, restore_permissions
):
    root, run_id = home
    _garbage(data_dir(root) / "registry.sqlite")
    make_read_only(root, restore_permissions)
    before = snapshot(root)

    code, listed, err = as_ordinary_user(cli_json, capsys, "runs")

    assert code == 0, err
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "finished")]
    assert "warning:" in err and "damaged" in err and "read-only" in err
    assert snapshot(root) == before


# ---------------------------------------------------------------------------------------------- 3. dataset roots


@pytest.mark.parametrize("given", ["/data/ti:me", ["/data/ti:me"]], ids=["str", "list"])
def test_a_root_with_a_colon_is_one_root(tmp_path, given):
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="m", dataset=given, config={})
    handle.finish("finished")
    record = RunRegistry(tmp_path).get(handle.run_id)
    assert re.fullmatch(r"m on ti:me · [A-Z][a-z]{2} \d{1,2} \d\d:\d\d", record.name)
    assert record.datasets == ["/data/ti:me"] and record.dataset == "/data/ti:me"


def test_several_roots_round_trip_and_read_as_one_line(tmp_path):
    roots = ["/data/cats", "/data/dogs;and:more", "/data/birds"]
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="m", dataset=tuple(roots), config={})
    handle.finish("finished")
    record = RunRegistry(tmp_path).get(handle.run_id)
    assert record.datasets == roots
    assert record.dataset == "/data/cats (+2 more)" and record.name.startswith("m on cats +2 · ")
    _garbage(registry.db_path)
    assert RunRegistry(tmp_path).get(handle.run_id).datasets == roots  # rebuilt from run.json


def test_a_non_utf8_root_survives_the_registry_the_rebuild_and_the_cli(tmp_path, monkeypatch, capsys):
    raw = b"/data/caf\xe9-\xff"
    root = os.fsdecode(raw)  # a surrogate-escaped str, as os.listdir gives for such names
    registry = RunRegistry(tmp_path / "data")
    handle = registry.create_run(model="m", dataset=[root], config={"data": [root]})
    handle.finish("finished")

    record = RunRegistry(tmp_path / "data").get(handle.run_id)
    assert [os.fsencode(r) for r in record.datasets] == [raw]
    assert record.name.startswith("m on caf") and record.name.encode("utf-8")  # a label that prints
    _garbage(registry.db_path)
    assert [os.fsencode(r) for r in RunRegistry(tmp_path / "data").get(handle.run_id).datasets] == [raw]

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    code, listed, err = cli_json(capsys, "runs")
    assert code == 0, err
    assert [os.fsencode(r) for r in listed[0]["datasets"]] == [raw]
    assert cli(capsys, "runs")[0] == 0


def test_a_legacy_plain_text_dataset_is_one_root(tmp_path):
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="m", dataset="/data/x", config={})
    handle.finish("finished")
    set_column(registry.db_path, handle.run_id, dataset="/data/ti:me")
    record = RunRegistry(tmp_path).get(handle.run_id)
    assert record.datasets == ["/data/ti:me"] and record.dataset == "/data/ti:me"
