"""The CLI as a user runs it: real commands, real folders, JSON on the last line, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main


def run_cli(capsys, *args: str) -> tuple[int, dict | list, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    return code, json.loads(last), captured.err


@pytest.fixture(scope="module")
def trained_run(fmnist_folder, tmp_path_factory):
    """One real training run shared by the eval/predict/runs tests (its own WORKBENCH_HOME)."""
    home = tmp_path_factory.mktemp("cli-home")
    old = os.environ.get("WORKBENCH_HOME")
    os.environ["WORKBENCH_HOME"] = str(home)
    try:
        code = main(
            [
                "train",
                str(fmnist_folder),
                "--model",
                "course_cnn",
                "--epochs",
                "2",
                "--batch-size",
                "32",
                "--json",
            ]
        )
    finally:
        if old is not None:
            os.environ["WORKBENCH_HOME"] = old
    assert code == 0
    return home


def test_train_json_has_the_promised_fields(fmnist_folder, capsys):
    code, result, _ = run_cli(
        capsys,
        "train",
        str(fmnist_folder),
        "--model",
        "course_cnn",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--json",
    )
    assert code == 0
    for key in (
        "run_id",
        "run_dir",
        "checkpoint",
        "status",
        "epochs",
        "classes",
        "val_accuracy",
        "test_accuracy",
        "skipped_files",
    ):
        assert key in result, key
    assert result["status"] == "finished" and result["epochs"] == 1
    assert len(result["classes"]) == 10 and Path(result["checkpoint"]).is_file()
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["skipped_files"] == 0


def test_eval_confusion_matrix_agrees_with_per_class(trained_run, fmnist_folder, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(trained_run))
    code, result, _ = run_cli(capsys, "eval", "last", str(fmnist_folder), "--json")
    assert code == 0
    cm = result["confusion_matrix"]
    test_images = sum(1 for _ in (fmnist_folder / "test").rglob("*.png"))
    assert sum(map(sum, cm)) == result["num_images"] == test_images
    for k, name in enumerate(result["classes"]):
        row = cm[k]
        column = [cm[i][k] for i in range(len(cm))]
        stats = result["per_class"][name]
        assert stats["support"] == sum(row)
        assert stats["recall"] == pytest.approx(row[k] / sum(row))
        assert stats["precision"] == pytest.approx(row[k] / sum(column) if sum(column) else 0.0)
    assert result["accuracy"] == pytest.approx(sum(cm[i][i] for i in range(len(cm))) / test_images)


def test_predict_gives_top_k_probabilities(trained_run, fmnist_folder, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(trained_run))
    images = sorted((fmnist_folder / "test" / "Trouser").glob("*.png"))[:3]
    code, result, _ = run_cli(capsys, "predict", "last", *map(str, images), "--top-k", "3", "--json")
    assert code == 0 and [r["path"] for r in result] == [str(p) for p in images]
    for entry in result:
        probabilities = [t["probability"] for t in entry["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0001
    assert sum(r["top"][0]["class"] == "Trouser" for r in result) >= 2  # trousers are the easy class


def test_runs_lists_the_run(trained_run, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(trained_run))
    code, result, _ = run_cli(capsys, "runs", "--json")
    assert code == 0 and len(result) == 1
    assert (
        result[0]["status"] == "finished" and result[0]["epochs"] == 2 and result[0]["model"] == "course_cnn"
    )


def test_resume_a_finished_run_for_more_epochs(fmnist_folder, capsys):
    code, first, _ = run_cli(
        capsys, "train", str(fmnist_folder), "--model", "course_cnn", "--epochs", "1", "--json"
    )
    assert code == 0
    code, second, _ = run_cli(capsys, "train", "--resume", first["run_id"], "--epochs", "2", "--json")
    assert code == 0 and second["run_id"] == first["run_id"] and second["epochs"] == 2


def test_fashion_mnist_export_command(tmp_path, capsys, fashion_mnist_source):
    code, result, _ = run_cli(
        capsys, "data", "fashion-mnist", str(tmp_path / "fm"), "--per-class", "3", "--json"
    )
    assert code == 0 and result["images"] == {"train": 30, "test": 30}
    assert len(list((tmp_path / "fm" / "train" / "Ankle boot").glob("*.png"))) == 3


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "{missing}"], "does-not-exist"),
        (["train", "{data}", "--epochs", "0"], "--epochs"),
        (["train", "{data}", "--model", "resnet-eighteen"], "resnet-eighteen"),
        (["predict", "{missing}", "x.png"], "does-not-exist"),
    ],
)
def test_bad_input_is_a_clear_error_without_traceback(tmp_path, args, expected, fmnist_folder):
    args = [
        a.replace("{missing}", str(tmp_path / "does-not-exist")).replace("{data}", str(fmnist_folder))
        for a in args
    ]
    result = subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")},
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert expected in result.stderr + result.stdout


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "workbench"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "train" in result.stdout and "predict" in result.stdout


def test_models_lists_the_zoo_with_metadata(capsys):
    code, result, _ = run_cli(capsys, "models", "--json")
    names = {m["name"]: m for m in result}
    assert code == 0
    for expected in ("lenet5", "course_cnn", "resnet18_small", "vgg16", "efficientnet_lite0", "se_resnet50"):
        assert expected in names
    assert names["efficientnet_lite0"]["pretrained"] is True
    assert {"family", "year", "description", "min_size", "default_size"} <= set(names["vgg16"])


def test_summary_of_lenet5_matches_the_course_table(capsys):
    code, result, _ = run_cli(capsys, "summary", "lenet5", "--img-size", "28", "--in-channels", "1", "--json")
    assert code == 0 and result["total_params"] == 61_706
    with_params = [layer["params"] for layer in result["layers"] if layer["params"]]
    assert with_params == [156, 2_416, 48_120, 10_164, 850]
    for layer in result["layers"]:
        assert {"name", "type", "output_shape", "params", "macs", "receptive_field"} <= set(layer)


def test_pretrained_without_strategy_follows_the_advisor(fmnist_folder, capsys):
    code, result, err = run_cli(
        capsys,
        "train",
        str(fmnist_folder),
        "--model",
        "efficientnet_lite0",
        "--pretrained",
        "--img-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--no-linear-probe",  # with the linear probe first, stage 2 always fine-tunes everything (LP-FT)
        "--json",
    )
    assert code == 0, err
    assert "strategy feature-extractor" in err  # 540 images like ImageNet's: small & similar
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert config["strategy"] == "feature-extractor" and config["pretrained"] is True


def test_train_from_a_toml_config_with_cli_overrides(fmnist_folder, tmp_path, capsys):
    from workbench.engine.training.config import TrainConfig

    settings = tmp_path / "run.toml"
    settings.write_text(
        TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=3, batch_size=32).to_toml()
    )
    code, result, _ = run_cli(capsys, "train", "--config", str(settings), "--epochs", "1", "--json")
    assert code == 0 and result["epochs"] == 1 and result["model"] == "course_cnn"
    saved = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert saved["batch_size"] == 32 and saved["data"] == [str(fmnist_folder)]


def test_every_cli_subcommand_is_known_to_the_launcher():
    """`workbench FOLDER` opens the app; a subcommand must never be mistaken for a folder of that name."""
    from workbench.__main__ import SUBCOMMANDS
    from workbench.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    assert set(commands) == SUBCOMMANDS
