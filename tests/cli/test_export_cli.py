"""`workbench export` as a user runs it, then `workbench predict` on what it wrote."""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import onnxruntime as ort
import pytest

from workbench.cli import export_cmd
from workbench.engine import export as export_module

cli_main = importlib.import_module(
    "workbench.cli.main"
)  # the module; `workbench.cli.main` is also a function


def run_cli(capsys, *args: str) -> tuple[int, dict | list | None, str]:
    code = cli_main.main(list(args))
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, captured.err


@pytest.fixture(scope="module")
def trained_run(fmnist_folder, tmp_path_factory):
    """One real training run (course_cnn, one epoch) in its own WORKBENCH_HOME; returns (home, run_id)."""
    home = tmp_path_factory.mktemp("export-cli-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        argv = ["train", str(fmnist_folder), "--model", "course_cnn", "--epochs", "1", "--batch-size", "32"]
        assert cli_main.main([*argv, "--json"]) == 0
        from workbench.engine.runs import RunRegistry

        run_id = RunRegistry().list_runs()[0].run_id
    return home, run_id


@pytest.fixture
def in_home(trained_run, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(trained_run[0]))
    return trained_run[1]


def test_export_onnx_then_predict_with_it(in_home, fmnist_folder, capsys):
    code, result, _ = run_cli(capsys, "export", "last", "--format", "onnx", "--json")
    assert code == 0
    path = Path(result["path"])
    assert (
        path.name == "course_cnn.onnx"
        and path.parent.name == "exports"
        and path.parent.parent.name == in_home
    )
    assert result["max_abs_diff"] < 1e-4 and Path(result["metadata_path"]).is_file()
    assert ort.InferenceSession(str(path)).get_inputs()[0].shape == ["batch", 1, 28, 28]

    images = sorted((Path(fmnist_folder) / "test" / "Bag").glob("*.png"))[:3]
    code, from_export, _ = run_cli(capsys, "predict", str(path), *map(str, images), "--json")
    assert code == 0
    code, from_run, _ = run_cli(capsys, "predict", in_home, *map(str, images), "--json")
    assert code == 0
    for mine, theirs in zip(from_export, from_run, strict=True):
        assert [t["class"] for t in mine["top"]] == [t["class"] for t in theirs["top"]]
        for a, b in zip(mine["top"], theirs["top"], strict=True):
            assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)


def test_export_torchscript_to_a_chosen_file_prints_the_check(in_home, tmp_path, capsys):
    target = tmp_path / "model.pt"
    code, _, _ = run_cli(capsys, "export", in_home, "--format", "torchscript", "--out", str(target), "--json")
    assert code == 0 and target.is_file() and (tmp_path / "model.pt.json").is_file()
    # Without --json the output is for people: where the files went and how close the check came.
    code = cli_main.main(["export", in_home, "--format", "safetensors", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 0 and "course_cnn.safetensors" in text and "max |difference| from PyTorch" in text


def test_export_errors_are_messages_not_tracebacks(in_home, tmp_path, capsys):
    code, _, err = run_cli(capsys, "export", in_home, "--format", "onnx", "--out", str(tmp_path / "x.pt"))
    assert code == 2 and "x.pt: a onnx export needs a file name ending in .onnx" in err
    assert "Traceback" not in err and not (tmp_path / "x.pt").exists()
    code, _, err = run_cli(capsys, "export", "no-such-run", "--format", "onnx")
    assert code == 2 and "no-such-run" in err


def test_cli_formats_are_the_engines():
    assert export_cmd.FORMATS == export_module.FORMATS
    assert os.environ.get("WORKBENCH_HOME")  # the suite's isolation is in force here too
