"""Export faults of issue #12, each reproduced with real trained runs, real exported files and the real CLI:

2. exports in one folder shared one `<model>.json`, so a later export relabelled an earlier one;
5. 200 flipped bytes in an exported file loaded fine and gave nonsense (and the export check did not look);
6. a full disk aborted a TorchScript export (exit 134) and left a temp file; a killed export's temp files
   stayed for good;
8. the metadata (of an export, or of any ONNX file) drove allocation and indexing unchecked.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import onnx
import pytest
import torch
from safetensors.torch import load_file, save, save_file

from workbench.cli import main
from workbench.engine import export as export_module
from workbench.engine.errors import WeightsError, WorkbenchError
from workbench.engine.export import ExportResult, export_run, load_exported, metadata_digest
from workbench.engine.training.checkpoint import load_model
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer

FORMATS = ("onnx", "torchscript", "safetensors")
DISK_FULL_WORDS = ("No space left on device", "File too large")
CLI = "import sys; from workbench.cli import main; sys.exit(main(sys.argv[1:]))"


# ---------------------------------------------------------------------------------------------- fixtures


def train(data: Path, seed: int) -> Path:
    config = TrainConfig(data=str(data), model="course_cnn", epochs=1, batch_size=32, seed=seed)
    finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return Path(finished.checkpoint)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults-export-home")


@pytest.fixture(autouse=True)
def in_home(home, workbench_home, monkeypatch) -> Path:
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def run_a(fmnist_folder, home) -> Path:
    """course_cnn, one epoch on real Fashion-MNIST PNGs: its checkpoint."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        return train(fmnist_folder, seed=0)


@pytest.fixture(scope="module")
def run_b(fmnist_folder, home, tmp_path_factory) -> Path:
    """Another run with as many classes under other names: a mix-up with run A loads without complaint."""
    renamed = tmp_path_factory.mktemp("renamed-classes")
    for split in ("train", "test"):
        for folder in sorted((fmnist_folder / split).iterdir()):
            shutil.copytree(folder, renamed / split / f"other {folder.name}")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        return train(renamed, seed=1)


@pytest.fixture(scope="module")
def exports(run_a, home, tmp_path_factory) -> dict[str, ExportResult]:
    """Run A exported in every format to one folder (read-only: tests copy what they damage)."""
    folder = tmp_path_factory.mktemp("exports-a")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        return {fmt: export_run(run_a, fmt, folder) for fmt in FORMATS}


@pytest.fixture(scope="module")
def images(fmnist_folder) -> list[Path]:
    """One real test image of each of three classes."""
    return [sorted(folder.glob("*.png"))[0] for folder in sorted((fmnist_folder / "test").iterdir())[:3]]


def cli(capsys, *args: str) -> tuple[int, object, str]:
    """(exit code, the --json result, stderr) of `workbench ARGS --json`."""
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, captured.err


def predicted(capsys, model: Path | str, images: list[Path]) -> list[list[str]]:
    """The top-3 class names `workbench predict` gives for each image."""
    code, result, err = cli(capsys, "predict", str(model), *map(str, images), "--trust-torchscript")
    assert code == 0, err
    return [[top["class"] for top in one["top"]] for one in result]


def copy_export(result: ExportResult, folder: Path) -> Path:
    """The exported file alone (no JSON beside it) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(result.path, folder / result.path.name))


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------------------------- 2. metadata


def test_two_runs_exported_to_one_folder_each_file_predicts_with_its_own_classes(
    run_a, run_b, images, tmp_path, capsys
):
    """The old shared `course_cnn.json` was rewritten by each export, and safetensors read it first: run A's
    weights then answered with run B's class names (same count: no error, exit 0)."""
    own = {str(run_a): predicted(capsys, run_a, images), str(run_b): predicted(capsys, run_b, images)}
    assert all(name.startswith("other ") for top in own[str(run_b)] for name in top)
    files: dict[Path, Path] = {}
    for folder, order in (
        (tmp_path / "x", [(run_a, "safetensors"), (run_b, "onnx"), (run_b, "torchscript")]),
        (tmp_path / "y", [(run_b, "safetensors"), (run_a, "onnx"), (run_a, "torchscript")]),
    ):
        for run, fmt in order:
            code, result, err = cli(capsys, "export", str(run), "--format", fmt, "--out", str(folder))
            assert code == 0, err
            files[Path(result["path"])] = run

    for path, run in files.items():
        assert predicted(capsys, path, images) == own[str(run)], path
    for path, run in files.items():  # each file's own JSON copy
        copy = json.loads(Path(f"{path}.json").read_text())
        assert copy["classes"] == load_model(run)[1]["classes"], path
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == [
        "course_cnn.onnx",
        "course_cnn.onnx.json",
        "course_cnn.safetensors",
        "course_cnn.safetensors.json",
        "course_cnn.torchscript.pt",
        "course_cnn.torchscript.pt.json",
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_json_beside_an_export_that_does_not_match_it_is_refused_naming_both(
    fmt, exports, images, tmp_path, capsys
):
    path = copy_export(exports[fmt], tmp_path)
    sidecar = Path(f"{path}.json")
    edited = json.loads(exports[fmt].metadata_path.read_text())
    edited["classes"][0], edited["classes"][1] = edited["classes"][1], edited["classes"][0]
    sidecar.write_text(json.dumps(edited))

    code, _, err = cli(capsys, "predict", str(path), *map(str, images), "--trust-torchscript")
    assert code == 2 and "Traceback" not in err
    assert f"{sidecar} does not match {path}" in err and "'classes' differs" in err
    shutil.copy(exports[fmt].metadata_path, sidecar)  # the true copy: fine again
    assert load_exported(path, trust_code=True).meta["classes"] == json.loads(sidecar.read_text())["classes"]


def test_a_json_from_another_export_never_describes_bare_weights(exports, run_b, tmp_path):
    """A file without metadata inside is described by its JSON only when the JSON's digest is the file's."""
    b = export_run(run_b, "safetensors", tmp_path / "b")
    bare = tmp_path / "bare.safetensors"
    save_file(load_file(b.path), bare)  # run B's weights, no metadata inside
    shutil.copy(exports["safetensors"].metadata_path, tmp_path / "bare.safetensors.json")  # run A's JSON
    with pytest.raises(WeightsError) as caught:
        load_exported(bare)
    assert f"bare.safetensors.json does not describe {bare}" in str(caught.value)
    shutil.copy(b.metadata_path, tmp_path / "bare.safetensors.json")  # its own: fine
    assert load_exported(bare).meta["classes"][0].startswith("other ")


@pytest.mark.parametrize("fmt", ["onnx", "safetensors"])
def test_exports_before_digests_load_from_their_own_copy_not_the_shared_json(fmt, exports, run_b, tmp_path):
    """Version 1: no digests, and a `<stem>.json` shared by every format (here rewritten by run B)."""
    path = with_metadata(exports[fmt], tmp_path / exports[fmt].path.name, lambda m: None, version1=True)
    shared = json.loads(export_run(run_b, "onnx", tmp_path / "b").metadata_path.read_text())
    (tmp_path / "course_cnn.json").write_text(json.dumps({**shared, "version": 1}))
    loaded = load_exported(path)
    assert loaded.meta["classes"] == json.loads(exports[fmt].metadata_path.read_text())["classes"]
    assert loaded.meta["version"] == 1 and not loaded.verified


# ---------------------------------------------------------------------------------------------- 5. integrity


def largest_tensor(checkpoint: Path) -> bytes:
    """The raw bytes of the model's largest weight tensor, which every format stores verbatim."""
    model, _ = load_model(checkpoint)
    return max(model.state_dict().values(), key=torch.Tensor.numel).numpy().tobytes()


def flip_bytes(path: Path, count: int = 200, *, within: bytes | None = None, seed: int = 0) -> None:
    data = bytearray(path.read_bytes())
    start, length = 0, len(data)
    if within is not None:
        start, length = bytes(data).find(within), len(within)
        assert start >= 0, f"{path.name} does not hold the tensor verbatim"
    rng = random.Random(seed)
    for position in rng.sample(range(start, start + length), count):
        data[position] ^= rng.randrange(1, 256)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", FORMATS)
def test_flipped_bytes_in_the_weights_are_refused_naming_the_file(
    fmt, exports, run_a, images, tmp_path, capsys
):
    """Bit rot in the bulk of the file: the old loaders never looked (torch does not even check its CRCs)."""
    path = copy_export(exports[fmt], tmp_path)
    flip_bytes(path, within=largest_tensor(run_a))
    with pytest.raises(WeightsError, match="damaged") as caught:
        load_exported(path, trust_code=True)
    assert str(path) in str(caught.value)
    code, _, err = cli(capsys, "predict", str(path), *map(str, images), "--trust-torchscript")
    assert code == 2 and str(path) in err and "damaged" in err and "Traceback" not in err


@pytest.mark.parametrize("fmt", FORMATS)
def test_flipped_bytes_anywhere_never_load(fmt, exports, tmp_path):
    for seed in range(5):
        path = copy_export(exports[fmt], tmp_path / str(seed))
        flip_bytes(path, seed=seed)
        with pytest.raises(WeightsError) as caught:
            load_exported(path, trust_code=True)
        assert str(path) in str(caught.value)


def test_the_export_check_verifies_the_digest_too(run_a, tmp_path, monkeypatch):
    """A write that changes what it was given (bad disk, bad RAM) behind a file whose outputs still match:
    here a class name inside the metadata. The old check only compared outputs and kept the file."""
    real_writer = export_module._WRITERS["safetensors"]

    def writes_one_wrong_byte(model, example, path, metadata):
        sealed = real_writer(model, example, path, metadata)
        path.write_bytes(path.read_bytes().replace(b"Ankle boot", b"Ankle boat"))
        return sealed

    monkeypatch.setitem(export_module._WRITERS, "safetensors", writes_one_wrong_byte)
    with pytest.raises(WorkbenchError, match=r"does not read back intact .*nothing was written"):
        export_run(run_a, "safetensors", tmp_path)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- 6. disk


@pytest.fixture
def full_folder(tmp_path) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """(a folder on a really full disk, what a child process must call first, or None).

    A 16 MB tmpfs filled to the last byte where the test may mount one (root with CAP_SYS_ADMIN, as in this
    project's containers); elsewhere the child runs under RLIMIT_FSIZE at 1 byte, where every write that
    grows a file fails (EFBIG) — as in tests/engine/test_disk_errors.py. Nothing in the engine is patched.
    """
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mount = shutil.which("mount")
    command = [mount or "mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)]
    mounted = mount is not None and subprocess.run(command, capture_output=True).returncode == 0
    folder = mount_point / "exports"
    folder.mkdir()
    if not mounted:
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        yield folder, lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1, hard))
        return
    try:
        for chunk in (1 << 16, 512):  # then the last few KB left by a half-written block
            with contextlib.suppress(OSError), open(mount_point / f"filler-{chunk}", "wb") as filler:
                while True:
                    filler.write(b"\0" * chunk)
                    filler.flush()
        yield folder, None
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_disk_is_a_clear_error_and_leaves_no_temp_file(fmt, run_a, home, full_folder):
    """In a child process: torch's own file writer used to abort the whole process (exit 134)."""
    folder, first = full_folder
    done = subprocess.run(
        [sys.executable, "-c", CLI, "export", str(run_a), "--format", fmt, "--out", str(folder)],
        env={**os.environ, "WORKBENCH_HOME": str(home)},
        preexec_fn=first,
        capture_output=True,
        text=True,
        timeout=600,
    )
    target = folder / f"course_cnn{export_module.SUFFIXES[fmt]}"
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert f"cannot write {target}" in done.stderr and "Traceback" not in done.stderr
    assert any(words in done.stderr for words in DISK_FULL_WORDS) and "--out" in done.stderr
    assert list(folder.iterdir()) == []  # no temp file, no half file


def test_a_json_copy_that_cannot_be_written_leaves_no_older_copy_to_contradict_the_file(
    run_a, run_b, tmp_path, monkeypatch
):
    export_run(run_b, "safetensors", tmp_path)  # an earlier export of another run: its JSON copy is there

    def disk_full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export_module, "write_json_atomic", disk_full)
    with pytest.raises(
        WorkbenchError, match=r"wrote .*, but not course_cnn.safetensors.json beside it: No space"
    ):
        export_run(run_a, "safetensors", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course_cnn.safetensors"]
    assert (
        load_exported(tmp_path / "course_cnn.safetensors").meta["classes"] == load_model(run_a)[1]["classes"]
    )


def test_an_export_removes_the_temp_files_a_killed_export_left(run_a, home, tmp_path, capsys):
    folder = tmp_path / "exports"
    killed = subprocess.Popen(
        [sys.executable, "-c", CLI, "export", str(run_a), "--format", "onnx", "--out", str(folder)],
        env={**os.environ, "WORKBENCH_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (folder.is_dir() and temp_files(folder)) and killed.poll() is None:
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.01)
    finally:
        killed.kill()
        killed.wait()
    left = temp_files(folder)
    assert len(left) == 1 and left[0].startswith(".course_cnn.onnx."), left
    # What a kill during the JSON copy leaves, and names that are not this export's to delete.
    os.close(tempfile.mkstemp(prefix=".course_cnn.onnx.json.", suffix=".tmp", dir=folder)[0])
    others = [
        ".course_cnn.safetensors.abcd1234.tmp",  # another target's
        ".course_cnn.onnx.abcd1234.tmp.keep",
        ".course_cnn.onnx.abcd12345.tmp",
        "course_cnn.onnx.abcd1234.tmp",
        ".course_cnn.onnx.notes",
    ]
    for name in others:
        (folder / name).write_text("not ours")

    code, result, err = cli(capsys, "export", str(run_a), "--format", "onnx", "--out", str(folder))
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["course_cnn.onnx", "course_cnn.onnx.json", *others]
    )
    assert len(result["removed_leftovers"]) == 2
    assert load_exported(folder / "course_cnn.onnx").verified


# ---------------------------------------------------------------------------------------------- 8. metadata


def with_metadata(
    export: ExportResult, target: Path, change: Callable[[dict], object], *, version1: bool = False
) -> Path:
    """A copy of an exported file whose embedded metadata is changed, its metadata digest recomputed (as a
    producer other than the workbench would write it: only validation stands between it and predict), or
    written as version 1, without digests."""
    source = export.path
    metadata = json.loads(export.metadata_path.read_text())
    change(metadata)
    if version1:
        metadata.pop("integrity", None)
        metadata["version"] = 1
    elif "integrity" in metadata:
        metadata["integrity"]["metadata"] = metadata_digest(metadata)
    text = json.dumps(metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".onnx":
        model = onnx.load(str(source))
        next(p for p in model.metadata_props if p.key == "cnn_workbench").value = text
        onnx.save(model, str(target))
    elif source.suffix == ".safetensors":
        target.write_bytes(save(load_file(source), metadata={"cnn_workbench": text}))
    else:  # TorchScript: re-saving changes the archive's records, so only a version-1 file is possible
        assert version1
        with warnings.catch_warnings():  # torch.jit's deprecation notice
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(source))
            torch.jit.save(module, str(target), _extra_files={"cnn_workbench.json": text})
    return target


def set_pre(field: str, value: object) -> Callable[[dict], None]:
    return lambda m: m["preprocessing"].__setitem__(field, value)


BAD_FIELDS = {
    "size 100000": (
        set_pre("size", 100000),
        r"'preprocessing.size' is 100000: must be a whole number .* 8 to 1024",
    ),
    "size as text": (set_pre("size", "28"), r"'preprocessing.size' is '28'"),
    "no preprocessing": (lambda m: m.pop("preprocessing"), r"'preprocessing' is missing"),
    "classes a string": (
        lambda m: m.__setitem__("classes", "ABCDEFGHIJ"),
        r"'classes' is 'ABCDEFGHIJ': must be a non-empty list",
    ),
    "zero std": (set_pre("std", [0.0]), r"'preprocessing.std' is \[0.0\]: every value must be above 0"),
    "NaN mean": (set_pre("mean", [math.nan]), r"'preprocessing.mean' is \[nan\]: must be a list of 1 finite"),
    "mean not a list": (set_pre("mean", 0.5), r"'preprocessing.mean' is 0.5: must be a list of 1 finite"),
    "two channels": (set_pre("channels", 2), r"'preprocessing.channels' is 2: must be 1 \(grey\) or 3"),
    "nine classes": (
        lambda m: m.__setitem__("classes", m["classes"][:9]),
        r"'classes' lists 9 names, but the network outputs 10 scores",
    ),
    "repeated class": (
        lambda m: m["classes"].__setitem__(1, m["classes"][0]),
        r"'classes' is .*'Ankle boot' repeated",
    ),
    "empty class name": (lambda m: m["classes"].__setitem__(2, " "), r"'classes' is .*' ' is not one"),
}


@pytest.mark.parametrize("case", list(BAD_FIELDS))
@pytest.mark.parametrize("version1", [False, True], ids=["sealed", "version1"])
def test_bad_metadata_fields_in_an_onnx_file_are_refused_naming_the_field(case, version1, exports, tmp_path):
    change, message = BAD_FIELDS[case]
    path = with_metadata(exports["onnx"], tmp_path / "model.onnx", change, version1=version1)
    with pytest.raises(WeightsError, match=message) as caught:
        load_exported(path)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_class_list_that_is_not_the_networks_output_is_refused_in_every_format(fmt, exports, tmp_path):
    add_one = lambda m: m["classes"].append("one more")  # noqa: E731
    name = exports[fmt].path.name
    path = with_metadata(exports[fmt], tmp_path / name, add_one, version1=fmt == "torchscript")
    with pytest.raises(WeightsError, match=r"'classes' lists 11 names, but .* outputs? 10 scores per image"):
        load_exported(path, trust_code=True)


def test_predict_refuses_a_zero_std_instead_of_printing_nan_percent(exports, images, tmp_path, capsys):
    path = with_metadata(exports["safetensors"], tmp_path / "zero.safetensors", set_pre("std", [0.0]))
    code, _, err = cli(capsys, "predict", str(path), *map(str, images))
    assert code == 2 and "'preprocessing.std' is [0.0]" in err and str(path) in err
    assert "nan%" not in err and "Traceback" not in err
