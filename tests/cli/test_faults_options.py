"""Fault catalogue (issue 12), options and the command line: every option is checked, before any work
starts, by one table of rules; a closed pipe ends the output, not the run; a dataset is a list of folders,
whatever characters their names hold; file names that are not UTF-8 print.

Each test runs the real CLI (in-process through `main`, or as a subprocess where the process itself is
what is under test) on real folders of Fashion-MNIST PNGs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.engine.errors import ConfigError
from workbench.engine.runs import RunRegistry
from workbench.engine.training.config import _AUGMENT_RULES, AugmentConfig, TrainConfig, options

TINY = ["--model", "course_cnn", "--batch-size", "16"]


@pytest.fixture(scope="module")
def tiny_folder(fmnist_folder_factory):
    return fmnist_folder_factory(6, 2)


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _argparse_refusal(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


# ---- 11: every option is validated in one place, before any work starts ---------------------------------


def test_every_training_option_is_declared_with_a_rule_and_help():
    """A new option cannot slip past validation: each field carries what it accepts and what it does."""
    declared = options()
    assert list(declared) == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(spec.rule and spec.help for spec in declared.values())
    assert {f.name for f in dataclasses.fields(AugmentConfig)} == set(_AUGMENT_RULES)


@pytest.mark.parametrize(
    "line, option",
    [
        ("checkpoint_every = 0", "checkpoint_every = 0"),
        ("momentum = -1", "momentum = -1"),
        ("lr = 1e300", "lr = 1e+300"),
        ("lr = nan", "lr = nan"),
        ("img_size = 64.5", "img_size = 64.5"),
        ("augment = 5", "augment = 5"),
        ("model_args = 5", "model_args = 5"),
        ("data = 5", "data = 5"),
        ("data = [1, 2]", "data = [1, 2]"),
        ("batch_size = 2.5", "batch_size = 2.5"),
        ("device = 5", "device = 5"),
        ('device = "tpu"', 'device = "tpu"'),
        ("epochs = true", "epochs = true"),
        ("amp = 1", "amp = 1"),
        ('optimizer = "rmsprop"', 'optimizer = "rmsprop"'),
        ("seed = -3", "seed = -3"),
        ("[augment]\ncrop_padding = -1", "augment.crop_padding = -1"),
        ("[augment]\nbrightness = 3.0", "augment.brightness = 3.0"),
    ],
)
def test_a_bad_value_in_a_config_file_names_file_option_and_value_before_any_work(
    tmp_path, tiny_folder, capsys, line, option
):
    config = tmp_path / "run.toml"
    data = "" if line.startswith("data") else f"data = {json.dumps(str(tiny_folder))}\n"
    config.write_text(f'{data}model = "course_cnn"\n{line}\n')
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 2
    assert str(config) in err and option in err and ("must" in err or "choose" in err), err
    assert RunRegistry().list_runs() == []  # refused before a run folder was made


def test_a_config_file_that_is_not_utf8_is_named(tmp_path, capsys):
    config = tmp_path / "latin1.toml"
    config.write_bytes('run_name = "caf\xe9"\n'.encode("latin-1"))
    code, _, err = _cli(capsys, "train", "--config", str(config))
    assert code == 2 and "not UTF-8" in err and str(config) in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, shown",
    [
        (["predict", "last", "x.png", "--top-k", "-1"], "--top-k: -1"),
        (["predict", "last", "x.png", "--top-k", "0"], "--top-k: 0"),
        (["predict", "last", "x.png", "--top-k", "two"], "--top-k: 'two'"),
        (["predict", "last", "x.png", "--device", "quantum"], "--device: quantum"),
        (["eval", "last", "data", "--device", "cuda:4096"], "--device: cuda:4096"),
        (["summary", "resnet18", "--img-size", "100000"], "--img-size: 100000"),
        (["summary", "resnet18", "--classes", "0"], "--classes: 0"),
        (["lr-find", "data", "--steps", "0"], "--steps: 0"),
        (["gradcam", "last", "x.png", "--opacity", "7", "--out", "cam.png"], "--opacity: 7"),
        (["train", "data", "--device", "mps:0"], "--device: mps:0"),
    ],
)
def test_a_bad_command_line_value_is_refused_by_argparse_naming_it(capsys, args, shown):
    err = _argparse_refusal(capsys, *args)
    assert shown in err and "Traceback" not in err


def test_output_files_are_checked_before_work(tmp_path, capsys):
    err = _argparse_refusal(capsys, "predict", "last", "x.png", "--csv", str(tmp_path))
    assert "is a folder" in err
    err = _argparse_refusal(capsys, "filters", "last", "--out", str(tmp_path / "missing" / "f.png"))
    assert "does not exist" in err and str(tmp_path / "missing") in err


def test_cuda_without_a_gpu_is_refused_before_the_data_is_read(tiny_folder, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    err = _argparse_refusal(capsys, "train", str(tiny_folder), "--device", "cuda")
    assert "no CUDA GPU" in err
    assert RunRegistry().list_runs() == []


def test_weights_that_are_a_text_file_are_refused_by_name(tmp_path, tiny_folder, capsys):
    text = tmp_path / "weights.pt"
    text.write_text("these are not weights\n")
    code, _, err = _cli(capsys, "train", str(tiny_folder), *TINY, "--epochs", "1", "--weights", str(text))
    assert code != 0 and str(text) in err and "not a PyTorch weights file" in err and "Traceback" not in err


# ---- 12: a closed pipe ------------------------------------------------------------------------------------


def _workbench(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def test_a_listing_into_a_closed_pipe_exits_quietly():
    process = _workbench("models")
    process.stdout.readline()
    process.stdout.close()  # `workbench models | head -1`
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_a_training_run_outlives_the_reader_of_its_output(tiny_folder):
    process = _workbench("train", str(tiny_folder), *TINY, "--epochs", "2")
    for _ in range(3):  # `workbench train … | head -3`
        process.stdout.readline()
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert process.returncode == 0
    (run,) = RunRegistry().list_runs()
    assert run.status == "finished" and run.epochs_done == 2
    assert Path(run.run_dir, "checkpoints", "last.pt").is_file()


# ---- 3: a dataset is a list of folders ---------------------------------------------------------------------


def _class_folders(root: Path, classes: list[str], source: Path) -> Path:
    """A dataset at `root` with the given class names, each holding a few real PNGs."""
    donors = sorted(p for p in (source / "train").iterdir() if p.is_dir())
    for name, donor in zip(classes, donors, strict=False):
        shutil.copytree(donor, root / name)
    return root


def test_a_folder_named_with_the_path_separator_is_one_dataset(tmp_path, tiny_folder, capsys):
    """`ti:me` beside `ti` and `me`: the run trains on `ti:me`, never on its neighbours."""
    parent = tmp_path / "sets"
    _class_folders(parent / f"ti{os.pathsep}me", ["left", "right"], tiny_folder)
    _class_folders(parent / "ti", ["wrong-a", "wrong-b"], tiny_folder)
    _class_folders(parent / "me", ["wrong-c", "wrong-d"], tiny_folder)
    code, out, err = _cli(capsys, "train", str(parent / f"ti{os.pathsep}me"), *TINY, "--epochs", "1", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["classes"] == ["left", "right"]
    (run,) = RunRegistry().list_runs()
    assert TrainConfig.from_dict(run.config).data == [str(parent / f"ti{os.pathsep}me")]


def test_several_folders_on_the_command_line_are_one_class_each(tmp_path, tiny_folder, capsys):
    shirts, boots = tiny_folder / "train" / "Shirt", tiny_folder / "train" / "Ankle boot"
    code, out, err = _cli(capsys, "train", str(shirts), str(boots), *TINY, "--epochs", "1", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["classes"] == ["Ankle boot", "Shirt"]


def test_a_config_written_before_roots_were_a_list_reads_as_one_folder():
    assert TrainConfig.from_dict({"data": f"a{os.pathsep}b"}).data == [f"a{os.pathsep}b"]
    assert TrainConfig.from_dict({"data": ["a", "b"]}).data == ["a", "b"]
    with pytest.raises(ConfigError, match="data"):
        TrainConfig.from_dict({"data": {"x": 1}})


# ---- 16: misleading answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("target, said", [("{tmp}/nowhere", "no such folder"), ("{file}", "is a file")])
def test_a_missing_folder_is_said_to_be_missing(tmp_path, target, said):
    afile = tmp_path / "notes.txt"
    afile.write_text("x")
    target = target.replace("{tmp}", str(tmp_path)).replace("{file}", str(afile))
    process = _workbench(target)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert said.encode() in err and target.encode() in err and b"invalid choice" not in err


def test_resuming_with_fewer_total_epochs_than_done_is_refused(tiny_folder, capsys):
    code, out, err = _cli(capsys, "train", str(tiny_folder), *TINY, "--epochs", "2", "--json")
    assert code == 0, err
    run_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    before = RunRegistry().get(run_id).metrics
    code, out, err = _cli(capsys, "train", "--resume", run_id, "--epochs", "1")
    assert code != 0 and "already trained 2 epoch(s)" in err and "finished after 1 epoch" not in out
    assert RunRegistry().get(run_id).metrics == before


# ---- 7: names that are not UTF-8 print -------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX bytes file names")
def test_a_file_name_that_is_not_utf8_prints_escaped(tmp_path, tiny_folder, capsys):
    code, out, err = _cli(capsys, "train", str(tiny_folder), *TINY, "--epochs", "1", "--json")
    assert code == 0, err
    image = next((tiny_folder / "test" / "Shirt").glob("*.png"))
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    shutil.copyfile(image, odd)
    process = _workbench("predict", "last", os.fsdecode(odd), env={"PYTHONIOENCODING": "utf-8", "LC_ALL": "C.UTF-8"})
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert b"caf\\xe9.png" in out and b"Traceback" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="POSIX bytes file names")
def test_predictions_csv_holds_a_non_utf8_name_as_readable_text(tmp_path, tiny_folder, capsys):
    code, _, err = _cli(capsys, "train", str(tiny_folder), *TINY, "--epochs", "1")
    assert code == 0, err
    image = next((tiny_folder / "test" / "Shirt").glob("*.png"))
    odd = os.path.join(os.fsencode(tmp_path), b"th\xe9.png")
    shutil.copyfile(image, odd)
    code, _, err = _cli(capsys, "predict", "last", os.fsdecode(odd), "--csv", str(tmp_path / "p.csv"))
    assert code == 0, err
    rows = (tmp_path / "p.csv").read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith(os.fsdecode(tmp_path) + "/th\\xe9.png,")


def test_a_config_written_by_the_engine_reads_back_identically(tmp_path):
    """Written with a TOML library: quotes, backslashes, non-Latin names and nested tables survive."""
    config = TrainConfig(
        data=[f'C:\\data\\"ti{os.pathsep}me"', "фото/猫"], model="course_cnn", epochs=3, lr=0.02,
        augment=AugmentConfig(crop_padding=4, brightness=0.2), model_args={"width": 2}, run_name='my "best" run',
    )
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert TrainConfig.from_toml(path) == config


# ---- issue 13: an option named in a message is structured, each client says it its own way ----------------


def test_the_same_option_error_reads_as_a_flag_on_the_cli_and_as_a_control_in_the_app():
    from workbench.app.qt.wording import app_message
    from workbench.cli.output import cli_message
    from workbench.engine.errors import OptionError

    with pytest.raises(OptionError) as raised:
        TrainConfig(img_size=4).validate()
    error = raised.value
    assert (error.option, error.value) == ("img_size", 4)  # the field and the value, not only words
    assert cli_message(error) == str(error) == "--img-size 4: must be in [8, 1024]"
    assert app_message(error) == "Image size 4: must be in [8, 1024]"


def test_the_cli_spells_each_option_as_its_declaration_says_and_the_app_as_its_control():
    from workbench.app.qt.wording import app_message
    from workbench.cli.output import cli_message
    from workbench.engine.errors import Action, Mention, WorkbenchError

    error = WorkbenchError(
        "try ", Mention("run_name", "x"), ", ", Mention("amp", False), " or ", Mention("weights", "RUN"),
        "; or ", Action("continue", "RUN"),
    )  # fmt: skip
    assert cli_message(error) == "try --name x, --no-amp or --weights RUN; or `workbench train --resume RUN`"
    assert app_message(error) == (
        "try Run name x, unticking “mixed precision” or Starting weights (Model tab) RUN; or Continue training (Train tab)"
    )
    assert "--" not in app_message(error)


def test_a_reason_naming_an_option_keeps_its_structure_through_the_run_summary():
    from workbench.app.qt.wording import app_message
    from workbench.cli.output import cli_message
    from workbench.engine.errors import Mention, WorkbenchError
    from workbench.engine.training import event_text
    from workbench.engine.training.events import RunFinished, RunStatus

    # the trainer hands a failure on as `str(exc)`: that str still holds the mention
    reason = str(WorkbenchError("input 28 too small: use ", Mention("img_size", 32), " or more"))
    summary = event_text.run_summary(RunFinished(RunStatus.FAILED, reason, epochs=0))
    assert cli_message(summary) == "failed — input 28 too small: use --img-size 32 or more"
    assert app_message(summary) == "failed — input 28 too small: use Image size 32 or more"


def test_the_mirror_averaged_test_line_names_the_switch_not_a_config_key():
    """#14: the log said "tta = false in the config"; each client names its own control for it."""
    from workbench.app.qt.wording import app_message
    from workbench.cli.output import cli_message
    from workbench.engine.training import event_text

    line = event_text.line(event_text.mirrored_test_message(0.789))
    cli, app = cli_message(line), app_message(line)
    assert "78.90%" in cli and "mirror-averaged test (TTA)" in cli and "--no-tta turns it off" in cli
    assert "unticking “test on image + mirror” turns it off" in app and "--" not in app
    assert "tta = false" not in cli + app and "config" not in cli + app
