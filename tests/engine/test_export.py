"""Exports of a real trained model reproduce PyTorch's outputs when run by their own runtimes; predictions
from exported files and as CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from workbench.engine import export as export_module
from workbench.engine.data import decode_image
from workbench.engine.errors import ConfigError, WeightsError, WorkbenchError
from workbench.engine.evaluation.predict import Predictor, predictions_csv, write_predictions_csv
from workbench.engine.export import ExportResult, export_run, exported_format, load_exported
from workbench.engine.models import build_model
from workbench.engine.training.checkpoint import load_model
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def checkpoint(fmnist_folder, tmp_path_factory) -> Path:
    """course_cnn trained one epoch on real Fashion-MNIST PNGs (in its own WORKBENCH_HOME)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("export-home")))
        config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32, seed=0)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return Path(finished.checkpoint)


@pytest.fixture(autouse=True)
def in_the_runs_home(checkpoint, workbench_home, monkeypatch):
    """Every test here works as the user who trained the run (their runs folder holds its exports)."""
    monkeypatch.setenv("WORKBENCH_HOME", str(checkpoint.parents[4]))


@pytest.fixture(scope="module")
def images(fmnist_folder) -> list[Path]:
    """One real test image of each class."""
    return [sorted(folder.glob("*.png"))[0] for folder in sorted((Path(fmnist_folder) / "test").iterdir())]


@pytest.fixture(scope="module")
def exports(checkpoint) -> dict[str, ExportResult]:
    return {fmt: export_run(checkpoint, fmt) for fmt in ("onnx", "torchscript", "safetensors")}


def real_batch(checkpoint: Path, paths: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalized batch of real images, PyTorch's logits for it)."""
    model, meta = load_model(checkpoint)
    pre = meta["preprocessing"]
    pixels = torch.stack([decode_image(p, pre["size"], pre["channels"]) for p in paths]).float() / 255
    x = (pixels - torch.tensor(pre["mean"]).view(-1, 1, 1)) / torch.tensor(pre["std"]).view(-1, 1, 1)
    with torch.no_grad():
        return x, model(x)


def test_exports_land_in_the_run_folder_with_metadata(exports, checkpoint):
    run_dir = checkpoint.parent.parent
    _, meta = load_model(checkpoint)
    for fmt, result in exports.items():
        assert result.path.parent == run_dir / "exports" and result.path.is_file(), fmt
        assert result.max_abs_diff < 1e-4 and result.check_batch == 3
        metadata = json.loads(result.metadata_path.read_text())
        assert metadata["classes"] == meta["classes"] and metadata["model"] == "course_cnn"
        assert metadata["preprocessing"] == meta["preprocessing"]
        assert metadata["model_args"] == meta["model_args"]
        assert metadata["input"]["shape"] == ["batch", 1, 28, 28]
    assert sorted(p.name for p in (run_dir / "exports").iterdir()) == [
        "course_cnn.onnx",
        "course_cnn.onnx.json",
        "course_cnn.safetensors",
        "course_cnn.safetensors.json",
        "course_cnn.torchscript.pt",
        "course_cnn.torchscript.pt.json",
    ]


def test_onnx_run_by_onnxruntime_matches_pytorch_for_any_batch_size(exports, checkpoint, images):
    x, expected = real_batch(checkpoint, images)
    session = ort.InferenceSession(str(exports["onnx"].path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].name == "input" and session.get_outputs()[0].name == "logits"
    for batch in (x[:1], x[:7], x):
        (logits,) = session.run(None, {"input": batch.numpy()})
        assert np.abs(logits - expected[: len(batch)].numpy()).max() < 1e-4
    embedded = {p.key: p.value for p in onnx.load(str(exports["onnx"].path)).metadata_props}
    assert (
        json.loads(embedded["cnn_workbench"])["classes"]
        == json.loads(exports["onnx"].metadata_path.read_text())["classes"]
    )


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_loaded_by_torch_jit_matches_pytorch(exports, checkpoint, images):
    x, expected = real_batch(checkpoint, images)
    module = torch.jit.load(str(exports["torchscript"].path))
    with torch.no_grad():
        assert (module(x) - expected).abs().max() < 1e-4
        assert (module(x[:3]) - expected[:3]).abs().max() < 1e-4


def test_safetensors_weights_rebuild_the_model_from_the_json(exports, checkpoint, images):
    x, expected = real_batch(checkpoint, images)
    metadata = json.loads(exports["safetensors"].metadata_path.read_text())
    model = build_model(metadata["model"], len(metadata["classes"]), 1, **metadata["model_args"])
    model.load_state_dict(load_file(str(exports["safetensors"].path)))
    with torch.no_grad():
        assert (model.eval()(x) - expected).abs().max() < 1e-4


def test_predict_accepts_exported_files_with_the_same_numbers(exports, checkpoint, images):
    reference = Predictor(checkpoint).predict(images, top_k=3)
    for fmt, result in exports.items():
        predictor = Predictor(result.path)
        assert predictor.source_format == fmt and predictor.classes == Predictor(checkpoint).classes
        for mine, theirs in zip(predictor.predict(images, top_k=3), reference, strict=True):
            assert [c for c, _ in mine.top] == [c for c, _ in theirs.top], fmt
            assert np.allclose([p for _, p in mine.top], [p for _, p in theirs.top], atol=1e-5), fmt
    assert exported_format(checkpoint) is None


def test_export_to_a_chosen_file_or_folder(checkpoint, tmp_path):
    result = export_run(checkpoint, "torchscript", tmp_path / "mine.pt")
    assert result.path == tmp_path / "mine.pt" and result.metadata_path == tmp_path / "mine.pt.json"
    # Outside the runs folder a TorchScript file is indistinguishable from a downloaded one: trust is explicit.
    assert load_exported(result.path, trust_code=True).meta["classes"] == load_model(checkpoint)[1]["classes"]
    folder = export_run(checkpoint, "safetensors", tmp_path / "out")
    assert folder.path == tmp_path / "out" / "course_cnn.safetensors" and folder.metadata_path.is_file()
    with pytest.raises(
        ConfigError, match=r"mine.onnx: a safetensors export needs a file name ending in \.safetensors"
    ):
        export_run(checkpoint, "safetensors", tmp_path / "mine.onnx")
    with pytest.raises(ConfigError, match="is the checkpoint being exported"):
        export_run(checkpoint, "torchscript", checkpoint)
    with pytest.raises(ConfigError, match="unknown export format 'tflite'"):
        export_run(checkpoint, "tflite")


def test_file_names_cannot_escape_their_folder(tmp_path):
    checkpoint = tmp_path / "run" / "checkpoints" / "best.pt"
    target = export_module._target_path(checkpoint, "../../etc/passwd", "onnx", None)
    assert target.parent == tmp_path / "run" / "exports" and target.name == "etc_passwd.onnx"
    assert export_module._target_path(checkpoint, "..", "onnx", tmp_path).name == "model.onnx"


def test_a_failed_check_leaves_nothing_behind(checkpoint, tmp_path, monkeypatch):
    real_runner = export_module._runner

    def off_by_one(*args):
        run = real_runner(*args)
        return lambda x: run(x) + 1.0

    monkeypatch.setattr(export_module, "_runner", off_by_one)
    with pytest.raises(
        WorkbenchError, match=r"outputs differ from PyTorch's by up to 1 .*nothing was written"
    ):
        export_run(checkpoint, "onnx", tmp_path)
    assert list(tmp_path.iterdir()) == []

    def exporter_gives_up(model, example, path, metadata):
        path.write_bytes(b"half a file")
        raise RuntimeError("Unsupported operator aten::weird\nlong details")

    monkeypatch.setitem(export_module._WRITERS, "torchscript", exporter_gives_up)
    with pytest.raises(
        WorkbenchError, match=r"torchscript export of course_cnn .* failed: Unsupported operator aten::weird;"
    ):
        export_run(checkpoint, "torchscript", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_exports_are_clear_errors(tmp_path, exports):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(WeightsError, match="junk.onnx: cannot be loaded as onnx"):
        load_exported(junk)
    bare = tmp_path / "bare.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(WeightsError, match=r"bare.safetensors: no CNN Workbench metadata .* bare\.safetensors\.json"):
        load_exported(bare)
    with pytest.raises(WeightsError, match="not an exported model"):
        load_exported(tmp_path / "notes.txt")
    # A safetensors file whose JSON names another architecture: the weights do not fit.
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(exports["safetensors"].path.read_bytes())
    metadata = json.loads(exports["safetensors"].metadata_path.read_text())
    (tmp_path / "lonely.safetensors.json").write_text(json.dumps({**metadata, "model": "lenet5"}))
    with pytest.raises(WeightsError, match=r"lonely.safetensors.json does not match .*lonely.safetensors: its 'model' differs"):
        load_exported(lonely)


def test_predictions_as_csv_carry_the_same_numbers(checkpoint, images, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    results = Predictor(checkpoint).predict([*images[:3], broken], top_k=2)
    path = write_predictions_csv(results, tmp_path / "predictions.csv")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    header = ["path", "class_1", "probability_1", "class_2", "probability_2", "out_of_domain", "error"]
    assert list(rows[0]) == header
    for row, result in zip(rows, results, strict=True):
        assert row["path"] == result.path
        if result.error:
            assert row["error"] == result.error and row["class_1"] == ""
            continue
        assert (row["class_1"], float(row["probability_1"])) == result.top[0]
        assert (row["class_2"], float(row["probability_2"])) == result.top[1]
        assert row["out_of_domain"] == ("yes" if result.out_of_domain else "no")
    assert rows[-1]["error"] and predictions_csv([]) == "path,error\n"


def test_torchscript_from_outside_the_runs_folder_needs_explicit_trust(
    exports, checkpoint, tmp_path, monkeypatch
):
    """Loading TorchScript runs the file's code: only the user's own exports load without asking."""
    import shutil

    own = exports["torchscript"].path
    assert Predictor(own).source_format == "torchscript"  # inside the user's runs folder: fine
    foreign = tmp_path / "downloaded.torchscript.pt"
    shutil.copy(own, foreign)
    with pytest.raises(WeightsError, match="runs its own code.*--trust-torchscript"):
        Predictor(foreign)
    assert Predictor(foreign, trust_code=True).classes == Predictor(own).classes
