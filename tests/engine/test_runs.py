import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from workbench.engine.errors import RunNotFoundError, WorkbenchError
from workbench.engine.runs import RunRegistry
from workbench.engine.runs.rows import check_name, default_name


def test_run_lifecycle_is_recorded(tmp_path):
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="course_cnn", dataset="/data/shoes", config={"epochs": 2})
    assert (handle.run_dir / "config.json").is_file()
    assert registry.get(handle.run_id).status == "running"  # our own process holds the lock

    history = [{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.75}]
    handle.record_epoch(history, best_val_acc=0.75)
    handle.record_checkpoint(handle.checkpoints_dir / "best.pt")
    handle.finish("finished", test_acc=0.7)

    record = RunRegistry(tmp_path).get(handle.run_id)  # a fresh registry reads what was written
    assert record.status == "finished"
    assert record.metrics == history
    assert record.best_val_acc == 0.75 and record.test_acc == 0.7
    assert record.checkpoint.endswith("best.pt")
    assert json.loads((handle.run_dir / "history.json").read_text()) == history
    # named a moment before it was recorded as created: the same minute, or the one before at a turn
    assert record.name.startswith("course_cnn on shoes · ")
    assert record.name in {default_name("course_cnn", ["/data/shoes"], record.created - d) for d in (0, 60)}


def test_default_run_names_say_model_dataset_and_time_and_are_valid_names():
    when = time.mktime((2026, 12, 3, 14, 5, 30, 0, 0, -1))  # local time, as the name shows it
    assert (
        default_name("efficientnet_lite0", ["/data/shoes"], when)
        == "efficientnet_lite0 on shoes · Dec 3 14:05"
    )
    assert (
        default_name("lenet5", ["/d/cats", "/d/dogs", "/d/birds"], when) == "lenet5 on cats +2 · Dec 3 14:05"
    )
    assert default_name("m", [], when) == "m · Dec 3 14:05"
    # A minute later is another name: two runs of the same model on the same data can be told apart.
    assert default_name("m", ["/d/x"], when + 60) != default_name("m", ["/d/x"], when)
    # Whatever the folder is called, the default is a name the registry accepts (it used to refuse "/" and a
    # folder name holding a backslash, so the run could not start).
    for roots in (["/"], ["/data/a\\b"], ["/data/" + "x" * 250], [os.fsdecode(b"/data/caf\xe9")]):
        name = default_name("course_cnn", roots, when)
        assert check_name(name) and name.endswith(" · Dec 3 14:05") and len(name) < 100, name


def test_killed_process_shows_as_interrupted(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys, time
        from workbench.engine.runs import RunRegistry
        handle = RunRegistry({str(tmp_path)!r}).create_run(model="m", dataset="d", config={{}})
        print(handle.run_id, flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    run_id = proc.stdout.readline().strip()
    registry = RunRegistry(tmp_path)
    assert registry.get(run_id).status == "running"  # alive: its lock is held
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    record = registry.get(run_id)
    assert record.status == "interrupted"
    assert "killed" in record.reason
    assert RunRegistry(tmp_path).get(run_id).status == "interrupted"  # persisted, not just computed


def test_interrupted_run_can_be_reopened_once(tmp_path):
    registry = RunRegistry(tmp_path)
    first = registry.create_run(model="m", dataset="d", config={})
    first.close()  # the process "died": lock released, status still running in the table
    handle = registry.reopen_run(first.run_id)
    assert registry.get(first.run_id).status == "running"
    with pytest.raises(WorkbenchError, match="still running"):
        registry.reopen_run(first.run_id)
    handle.finish("stopped")


def test_lookup_by_prefix_last_and_folder(tmp_path):
    registry = RunRegistry(tmp_path)
    a = registry.create_run(model="m", dataset="d", config={})
    a.finish("finished")
    b = registry.create_run(model="m", dataset="d", config={})
    b.finish("failed", "boom")
    assert registry.get("last").run_id == b.run_id
    assert registry.get(str(a.run_dir)).run_id == a.run_id
    assert registry.get(a.run_id[:-1]).run_id == a.run_id or a.run_id[:-1] == b.run_id[:-1]
    with pytest.raises(RunNotFoundError, match="matches 2 runs"):
        registry.get(a.run_id[:4])  # both ids start with the year
    with pytest.raises(RunNotFoundError, match="no run matches 'nope'"):
        registry.get("nope")
    assert registry.get(b.run_id).reason == "boom"


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", "x\\y"])
def test_run_names_cannot_escape_their_folder(tmp_path, bad):
    registry = RunRegistry(tmp_path)
    with pytest.raises(WorkbenchError, match="run name"):
        registry.create_run(model="m", dataset="d", config={}, name=bad)


def test_delete_removes_folder_and_row(tmp_path):
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="m", dataset="d", config={})
    with pytest.raises(WorkbenchError, match="is running"):
        registry.delete(handle.run_id)
    handle.finish("finished")
    registry.delete(handle.run_id)
    assert not handle.run_dir.exists()
    assert registry.list_runs() == []


def test_registry_waits_for_another_process_creating_it(tmp_path):
    # DDP ranks (and the app beside the CLI) open a fresh registry at the same moment; SQLite then
    # refuses the switch to WAL at once instead of waiting, which once failed a two-rank run.
    other = sqlite3.connect(tmp_path / "registry.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE elsewhere (x)")
    release = threading.Timer(0.3, other.execute, ("COMMIT",))
    release.start()
    try:
        registry = RunRegistry(tmp_path)
    finally:
        release.join()
        other.close()
    handle = registry.create_run(model="lenet5", dataset="/data", config={})
    assert [record.run_id for record in registry.list_runs()] == [handle.run_id]
    handle.close()


def test_epochs_done_is_the_last_epoch_not_the_number_of_history_rows(tmp_path):
    """Stage 1's instant model is epoch 0 of a run's history: a run stopped after 2 of 3 fine-tuning epochs
    has 3 rows but 2 epochs done (the Runs tab said "3/3" where the Train tab said "stopped after 2 epochs"),
    and a run folder found without its registry row is not taken for finished."""
    from workbench.engine.runs.rows import inferred_row
    from workbench.engine.training.probe_stage import STAGE

    history = [{"epoch": 0, "stage": STAGE, "val_acc": 0.5}, {"epoch": 1, "val_acc": 0.6}, {"epoch": 2, "val_acc": 0.7}]
    registry = RunRegistry(tmp_path)
    handle = registry.create_run(model="efficientnet_lite0", dataset="/data/shoes", config={"epochs": 3})
    handle.record_epoch(history, best_val_acc=0.7)
    handle.finish("stopped")
    assert RunRegistry(tmp_path).get(handle.run_id).epochs_done == 2

    def status(rows: list[dict]) -> str:
        found = {"config": json.dumps({"epochs": 3}), "metrics": json.dumps(rows)}
        return inferred_row("20261204-000000-abcd", tmp_path, found)["status"]

    assert status(history) == "interrupted"
    assert status([*history, {"epoch": 3, "val_acc": 0.8}]) == "finished"
