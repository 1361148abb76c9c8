"""Untrusted files run no code: weights, checkpoints and the decoded-image cache refuse malicious pickles
(the file the payload would create is never created), even with torch's opt-out variable set; names
cannot lead outside their folder.

Every `torch.load` in the engine (grep: models/weights.py `read_state_dict`, training/checkpoint.py
`load_checkpoint`) passes `weights_only=True`; `np.load` in the cache keeps numpy's `allow_pickle=False`.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from workbench.engine.data import load_decoded, scan_dataset
from workbench.engine.errors import RunNotFoundError, WeightsError, WorkbenchError
from workbench.engine.models import build_model
from workbench.engine.models.weights import read_state_dict
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import RunFinished
from workbench.engine.training.trainer import Trainer

# A bare pickle (protocol 4) makes torch warn about its protocol before refusing it: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")


class CreatesFile:
    """Unpickling this calls `open(target, "w")`: a harmless stand-in for any code an attacker would run."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


class ExecutesCode:
    """Unpickling this runs Python source through `exec`."""

    def __init__(self, target):
        self.source = f"open({str(target)!r}, 'w').write('pwned')"

    def __reduce__(self):
        return (exec, (self.source,))


def _zip_format(obj, path):
    torch.save(obj, path, pickle_module=pickle)


def _legacy_format(obj, path):
    torch.save(obj, path, pickle_module=pickle, _use_new_zipfile_serialization=False)


def _bare_pickle(obj, path):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


WRITERS = {"zip": _zip_format, "legacy": _legacy_format, "pickle": _bare_pickle}
PAYLOADS = {"open": CreatesFile, "exec": ExecutesCode}


@pytest.fixture(params=[(w, p) for w in WRITERS for p in PAYLOADS], ids=lambda wp: f"{wp[0]}-{wp[1]}")
def evil_file(request, tmp_path):
    """(path of a malicious file, path its payload would create) for every file format and payload."""
    writer, payload = request.param
    request.node.file_writer = writer
    victim = tmp_path / "pwned.txt"
    path = tmp_path / "weights.pt"
    model_state = {"weight": torch.zeros(2, 2)}
    WRITERS[writer](
        {
            "format": ckpt.FORMAT,
            "model_state": model_state,
            "state_dict": model_state,
            "x": PAYLOADS[payload](victim),
        },
        path,
    )
    assert not victim.exists()
    return path, victim


@pytest.fixture(params=["0", "1"], ids=["default-env", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1"])
def torch_opt_out(request, monkeypatch):
    """torch honours TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD only where a caller left weights_only unset."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", request.param)


def test_weights_loader_refuses_malicious_files_without_running_them(request, evil_file, torch_opt_out):
    path, victim = evil_file
    for name in ("weights.pt", "weights.pth", "weights.bin"):
        renamed = path.with_name(name)
        renamed.write_bytes(path.read_bytes())
        with pytest.raises(WeightsError) as caught:
            read_state_dict(renamed)
        assert str(renamed) in str(caught.value)
        # torch's own formats get the precise reason; a bare pickle stops at its first opcode torch rejects.
        expected = "not a PyTorch weights file" if request.node.file_writer == "pickle" else "could run code"
        assert expected in str(caught.value)
    assert not victim.exists()


def test_checkpoint_loader_refuses_malicious_files_without_running_them(evil_file, torch_opt_out):
    path, victim = evil_file
    with pytest.raises(WeightsError, match="refused"):
        ckpt.load_checkpoint(path)
    with pytest.raises(WeightsError, match="refused"):
        ckpt.load_model(path)
    assert not victim.exists()


def test_a_pickle_named_safetensors_is_not_unpickled(tmp_path):
    victim = tmp_path / "pwned.txt"
    path = tmp_path / "model.safetensors"
    _zip_format({"weight": CreatesFile(victim)}, path)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        read_state_dict(path)
    header_lies = tmp_path / "huge.safetensors"
    header_lies.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(WeightsError, match="huge.safetensors"):
        read_state_dict(header_lies)
    assert not victim.exists()


def test_build_model_with_a_malicious_weights_file_refuses_it(tmp_path):
    victim = tmp_path / "pwned.txt"
    path = tmp_path / "course.pth"
    _zip_format({**build_model("course_cnn", 2, 1).state_dict(), "extra": CreatesFile(victim)}, path)
    with pytest.raises(WeightsError, match="could run code"):
        build_model("course_cnn", 2, 1, weights_path=path)
    assert not victim.exists()


# ---------------------------------------------------------------------------------------------- the trainer


def tiny_dataset(root, per_class: int = 12):
    """Two classes of 8×8 grey noise, dark and bright: distinct files (no duplicate warnings)."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("dark", "bright")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (8, 8)) + 150 * c
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def finished(config_or_trainer) -> RunFinished:
    trainer = config_or_trainer if isinstance(config_or_trainer, Trainer) else Trainer(config_or_trainer)
    events = list(trainer.run())
    assert isinstance(events[-1], RunFinished)
    return events[-1]


def test_training_from_a_malicious_weights_file_fails_clearly_and_runs_nothing(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    victim = tmp_path / "pwned.txt"
    evil = tmp_path / "pretrained.pth"
    _zip_format({**build_model("course_cnn", 2, 1).state_dict(), "x": CreatesFile(victim)}, evil)

    result = finished(
        TrainConfig(data=str(data), model="course_cnn", epochs=1, batch_size=8, weights=str(evil))
    )

    assert result.status == "failed"
    assert str(evil) in result.reason and "could run code" in result.reason
    assert "internal error" not in result.reason
    assert not victim.exists()


def test_resuming_a_run_whose_checkpoint_was_swapped_for_a_malicious_one_is_refused(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    first = finished(TrainConfig(data=str(data), model="course_cnn", epochs=1, batch_size=8, img_size=8))
    assert first.status == "finished"
    last = RunRegistry().get(first.run_id).run_dir + "/checkpoints/last.pt"
    victim = tmp_path / "pwned.txt"
    _zip_format({"format": ckpt.FORMAT, "epoch": 0, "x": CreatesFile(victim)}, last)

    result = finished(Trainer(TrainConfig(epochs=2), resume=first.run_id))

    assert result.status == "failed" and "refused" in result.reason and "last.pt" in result.reason
    assert not victim.exists()


# ---------------------------------------------------------------------------------------------- the cache


def test_a_tampered_image_cache_is_ignored_not_trusted(tmp_path):
    data = tiny_dataset(tmp_path / "data", per_class=3)
    samples = scan_dataset(data, val_fraction=0.0).samples
    cache = tmp_path / "cache"
    honest = load_decoded(samples, 8, 1, cache_root=cache)
    packs = sorted(cache.rglob("*.json"))
    assert len(packs) == 2

    # 1. A pack that points its pixels at a file outside the cache folder.
    outside = tmp_path / "outside.npy"
    np.save(outside, np.full((3, 1, 8, 8), 7, np.uint8))
    meta = json.loads(packs[0].read_text())
    data_file = packs[0].parent / meta["data"]
    packs[0].write_text(json.dumps({**meta, "data": "../../outside.npy"}))
    # 2. A pack whose array is a pickle of objects that would run code.
    victim = tmp_path / "pwned.txt"
    second = json.loads(packs[1].read_text())
    np.save(
        packs[1].parent / second["data"], np.array([CreatesFile(victim)] * 3, dtype=object), allow_pickle=True
    )

    again = load_decoded(samples, 8, 1, cache_root=cache)

    assert torch.equal(again.images, honest.images) and again.problems == []
    assert not victim.exists()
    assert data_file.exists() or json.loads(packs[0].read_text())["data"] != "../../outside.npy"


# ---------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["../../escaped", "runs/../../x", "..", "a/b", "c\\d", "nul\0byte"])
def test_a_run_name_cannot_place_files_outside_the_runs_folder(tmp_path, workbench_home, name):
    data = tiny_dataset(tmp_path / "data", per_class=4)

    result = finished(TrainConfig(data=str(data), model="course_cnn", epochs=1, batch_size=8, run_name=name))

    assert result.status == "failed" and "run name" in result.reason
    assert list((workbench_home / "data" / "runs").iterdir()) == []  # not even a folder for the run
    stray = [p for p in workbench_home.rglob("*") if p.name in ("escaped", "x", "b", "c\\d")]
    assert stray == [] and not (workbench_home.parent / "escaped").exists()


@pytest.mark.parametrize("ref", ["..", "../..", "/", "runs/.."])
def test_path_like_run_references_match_no_run_and_delete_nothing(tmp_path, ref):
    registry = RunRegistry(tmp_path / "home")
    handle = registry.create_run(model="m", dataset="d", config={})
    handle.finish("finished")
    with pytest.raises(RunNotFoundError):
        registry.delete(ref)
    assert handle.run_dir.is_dir() and (tmp_path / "home" / "registry.sqlite").is_file()
    assert [r.run_id for r in registry.list_runs()] == [handle.run_id]


def test_run_names_stay_labels_in_the_registry(tmp_path):
    registry = RunRegistry(tmp_path)
    with pytest.raises(WorkbenchError, match="run name"):
        registry.create_run(model="m", dataset="d", config={}, name="../x")
    handle = registry.create_run(model="m", dataset="d", config={}, name="cats vs dogs; DROP TABLE runs")
    assert handle.run_dir.parent == registry.runs_dir
    assert registry.get(handle.run_id).name == "cats vs dogs; DROP TABLE runs"
