"""Issue 13: the engine names an option, or a thing to do about a run, as data (`Mention`, `Action`), never as
a flag spelled into its text. The same message reads `--img-size 32` on the command line and "Image size 32"
in the app, which says it from the parts: there is no regex rewriting of the CLI's words any more, so no
message the app shows carries a `--`.

Each error here is raised by the engine itself, on real data where it comes from a run (a real folder of
Fashion-MNIST PNGs, a real tiny run and its checkpoints).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.app.qt.wording import app_message
from workbench.cli import main
from workbench.cli.output import cli_message
from workbench.engine.errors import ConfigError, ModelError, OptionError, Text, WeightsError, WorkbenchError
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import STRATEGIES, TrainConfig
from workbench.engine.training.events import RunFinished
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def tiny_folder(fmnist_folder_factory):
    return fmnist_folder_factory(6, 2)


@pytest.fixture(scope="module")
def finished_run(tiny_folder, tmp_path_factory):
    """A real one-epoch run, kept in its own workbench home (the autouse fixture gives each test a fresh one)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(home))
        config = TrainConfig(data=[str(tiny_folder)], model="course_cnn", epochs=1, batch_size=16)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished.reason
    return home, finished.run_id


def _run_copy(finished_run, monkeypatch):
    """The finished run in this test's own home, to damage or delete freely."""
    home, run_id = finished_run
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    return RunRegistry(), run_id


def _both(message: object) -> tuple[str, str]:
    cli, app = cli_message(message), app_message(message)
    assert cli == str(message)  # plain str() is the command line's wording: it reads well anywhere
    assert "--" not in app and "`workbench" not in app, app  # the app never shows the CLI's words
    return cli, app


# ---- options named with a value ----------------------------------------------------------------------------


def test_too_small_images_for_the_model_name_the_size_to_use_in_each_clients_words(tiny_folder, capsys):
    config = TrainConfig(data=[str(tiny_folder)], model="mobilenet_v3_small", img_size=28, epochs=1, batch_size=16)
    finished = list(Trainer(config).run())[-1]
    assert isinstance(finished, RunFinished) and finished.status == "failed"
    assert isinstance(finished.reason, Text)  # the run's failure keeps the mention, not only its words
    cli, app = _both(finished.reason)
    assert "mobilenet_v3_small needs images of at least 32×32 pixels" in cli
    assert "use --img-size 32 or more (images are resized)" in cli
    assert "use Image size 32 or more (images are resized)" in app

    # the command line itself prints the flag
    code = main(["train", str(tiny_folder), "--model", "mobilenet_v3_small", "--img-size", "28", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code != 0 and "--img-size 32 or more" in err and "Traceback" not in err


def test_the_model_summary_at_a_too_small_size_is_the_same_model_error():
    from workbench.engine.models.registry import check_input_size

    with pytest.raises(ModelError) as raised:
        check_input_size("alexnet", 28)
    cli, app = _both(raised.value)
    assert "--img-size 63 or more" in cli and "Image size 63 or more" in app


def test_an_unknown_strategy_or_negative_unfreeze_is_an_option_error_for_each_client():
    from workbench.engine.models import build_model
    from workbench.engine.training.transfer import TransferPlan

    model = build_model("course_cnn", 10, 1)
    with pytest.raises(ConfigError) as raised:  # still a ConfigError, as callers catch
        TransferPlan(model, "everything")
    error = raised.value
    assert isinstance(error, OptionError) and (error.option, error.value) == ("strategy", "everything")
    cli, app = _both(error)
    assert cli == f'--strategy "everything": choose one of {", ".join(STRATEGIES)}'
    assert app == f'Strategy (Model tab) "everything": choose one of {", ".join(STRATEGIES)}'

    with pytest.raises(OptionError) as raised:
        TransferPlan(model, "fine-tune-top", unfreeze=-1)
    cli, app = _both(raised.value)
    assert cli == "--unfreeze -1: must be 0 or more blocks"
    assert app == "Unfrozen blocks (Model tab) -1: must be 0 or more blocks"


def test_a_global_batch_that_does_not_split_among_processes_names_the_batch_size():
    from workbench.engine.training.distributed import per_rank_batch

    assert per_rank_batch(12, 3) == 4
    with pytest.raises(OptionError) as raised:
        per_rank_batch(10, 3)
    cli, app = _both(raised.value)
    assert cli.startswith("--batch-size 10: the global batch must divide evenly among 3 processes")
    assert app.startswith("Batch size 10: the global batch must divide evenly among 3 processes")


def test_out_of_memory_at_the_floor_names_image_size_and_device():
    from workbench.engine.training.oom import OomBackoff, OutOfMemory

    def never_fits(micro_batch: int) -> None:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(OutOfMemory) as raised:
        OomBackoff(16, floor=8, release=lambda: None).run(never_fits)
    cli, app = _both(raised.value)
    assert "a smaller --img-size" in cli and "train on the CPU (--device cpu)" in cli
    assert "a smaller Image size" in app and "train on the CPU (Device cpu)" in app


def test_the_chosen_model_note_names_the_model_control():
    from workbench.engine.training.defaults import resolve_defaults

    _, notes = resolve_defaults(TrainConfig(data=["x"]), typical_size=28, channels=1, num_train_images=600)
    note = next(n for n in notes if n.startswith("model "))
    cli, app = _both(note)
    assert cli.endswith("; choose another with --model)")
    assert app.endswith("; choose another with Model (Model tab))")


# ---- a run's state: epochs to give, runs to delete, checkpoints to start from ------------------------------


def test_continuing_a_run_with_too_few_epochs_names_the_epochs_option(finished_run, monkeypatch):
    from workbench.engine.training.resume import load_resume_state

    registry, run_id = _run_copy(finished_run, monkeypatch)
    with pytest.raises(WorkbenchError) as raised:
        load_resume_state(registry, run_id, epochs=1)
    cli, app = _both(raised.value)
    assert "already trained 1 epoch(s); --epochs is the run's total" in cli and "(--epochs 1 would" in cli
    assert "already trained 1 epoch(s); Epochs is the run's total" in app and "(Epochs 1 would" in app

    with pytest.raises(WorkbenchError) as raised:
        load_resume_state(registry, run_id, epochs=None)
    cli, app = _both(raised.value)
    assert cli.endswith("already finished its 1 epoch; set --epochs to more than 1 to continue training")
    assert app.endswith("already finished its 1 epoch; set Epochs to more than 1 to continue training")


def test_a_damaged_last_checkpoint_points_to_the_intact_best_one_in_each_clients_words(
    finished_run, monkeypatch, tmp_path
):
    registry, run_id = _run_copy(finished_run, monkeypatch)
    folder = tmp_path / "checkpoints"
    shutil.copytree(Path(registry.get(run_id).run_dir) / "checkpoints", folder)
    last, best = folder / ckpt.LAST, folder / ckpt.BEST
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])  # cut short, as by a crash mid-copy
    with pytest.raises(WeightsError) as raised:
        ckpt.load_checkpoint(last)
    cli, app = _both(raised.value)
    assert f"the run cannot be resumed, but a new run can start from it (--weights {best})" in cli
    assert f"the run cannot be resumed, but a new run can start from it (Starting weights (Model tab) {best})" in app


def test_a_run_whose_folder_is_gone_says_how_to_remove_it(finished_run, monkeypatch, tmp_path):
    from workbench.engine.training.resume import load_resume_state

    registry, run_id = _run_copy(finished_run, monkeypatch)
    run_dir = Path(registry.get(run_id).run_dir)
    moved = tmp_path / "moved"
    shutil.move(run_dir, moved)
    try:
        for fail in (lambda: load_resume_state(registry, run_id, epochs=3), lambda: ckpt.find_checkpoint(run_id)):
            with pytest.raises(WorkbenchError) as raised:
                fail()
            cli, app = _both(raised.value)
            assert cli.endswith(f"remove the run from the list with `workbench runs --delete {run_id}`")
            assert app.endswith("remove the run from the list with Delete in the Runs tab")
    finally:
        shutil.move(moved, run_dir)


def test_a_checkpoint_that_cannot_be_written_says_to_resume_that_run(tmp_path):
    folder = tmp_path / "RUN42" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / ckpt.LAST).mkdir()  # a folder in the file's place: the write fails as a full disk would
    with pytest.raises(WorkbenchError) as raised:
        ckpt.save_checkpoint(folder / ckpt.LAST, {"epoch": 1, "model_state": {}})
    cli, app = _both(raised.value)
    assert "could not write checkpoint" in cli and cli.endswith("then resume the run: `workbench train --resume RUN42`")
    assert app.endswith("then resume the run: Continue training (Train tab)")


# ---- no rewriting of plain text ----------------------------------------------------------------------------


def test_the_app_shows_plain_text_as_it_is():
    """The app no longer reads flags back out of text: a message that names no option is shown unchanged."""
    import workbench.app.qt.wording as wording

    assert not hasattr(wording, "LEGACY_FLAG")
    text = "export to another folder (--out)"  # a command-line-only message
    assert app_message(text) == text == cli_message(text)
