"""`workbench feature-maps`, `filters` and `gradcam` as a user runs them: real run, real images, real PNGs."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

cli_main = importlib.import_module(
    "workbench.cli.main"
)  # the module; `workbench.cli.main` is also a function


def run_cli(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = cli_main.main([*args, "--json"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if lines else None, captured.err


@pytest.fixture(scope="module")
def checkpoint(fmnist_folder, tmp_path_factory) -> str:
    """A real run (course_cnn, two epochs) trained through the CLI; its checkpoint file."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(tmp_path_factory.mktemp("inspect-cli-home")))
        argv = [
            "train",
            str(fmnist_folder),
            "--model",
            "course_cnn",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--seed",
            "0",
        ]
        assert cli_main.main(argv) == 0
        from workbench.engine.runs import RunRegistry

        return RunRegistry().list_runs()[0].checkpoint


@pytest.fixture(scope="module")
def trouser(fmnist_folder) -> str:
    return str(sorted((Path(fmnist_folder) / "test" / "Trouser").glob("*.png"))[0])


def test_feature_maps_list_shows_the_layer_tree(checkpoint, trouser, capsys):
    code, tree, _ = run_cli(capsys, "feature-maps", checkpoint, trouser, "--list")
    assert code == 0 and tree["kind"] == "model"
    features = next(child for child in tree["children"] if child["name"] == "features")
    assert [c["output_shape"] for c in features["children"][:4]] == [[16, 28, 28]] * 3 + [[16, 14, 14]]


def test_feature_maps_grid_png_sorted_by_mean(checkpoint, trouser, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code, result, _ = run_cli(
        capsys, "feature-maps", checkpoint, trouser, "--layer", "features.2", "--out", str(out)
    )
    assert code == 0 and result["layer"] == "features.2" and result["output_shape"] == [16, 28, 28]
    means = [result["channels"][i]["mean"] for i in result["order"]]
    assert means == sorted(means, reverse=True) and len(means) == 16
    picture = np.asarray(Image.open(out))
    assert picture.shape == (4 * 32 + 5, 4 * 32 + 5, 3)  # 16 channels: 4×4 tiles of 32 px, 1 px borders


def test_filters_png_of_the_first_layer(checkpoint, tmp_path, capsys):
    out = tmp_path / "filters.png"
    code, result, _ = run_cli(capsys, "filters", checkpoint, "--out", str(out))
    assert code == 0 and result["layer"] == "features.0" and result["kernels"] == 16
    assert result["kernel_size"] == [5, 5] and Image.open(out).size == (4 * 40 + 5, 4 * 40 + 5)
    deeper = tmp_path / "deeper.png"
    code, result, _ = run_cli(
        capsys, "filters", checkpoint, "--layer", "features.4", "--kernels", "2", "--out", str(deeper)
    )
    assert code == 0 and Image.open(deeper).size == (16 * 40 + 17, 2 * 40 + 3)  # one row per kernel


def test_gradcam_png_for_the_predicted_and_a_chosen_class(checkpoint, trouser, tmp_path, capsys):
    predicted = tmp_path / "predicted.png"
    code, result, _ = run_cli(capsys, "gradcam", checkpoint, trouser, "--out", str(predicted))
    assert code == 0 and result["class"] == result["predicted"] and result["layer"] == "pool"
    assert Image.open(predicted).size == (224, 224) and Image.open(predicted).mode == "RGBA"
    bag = tmp_path / "bag.png"
    code, result, _ = run_cli(capsys, "gradcam", checkpoint, trouser, "--class", "Bag", "--out", str(bag))
    assert code == 0 and result["class"] == "Bag"
    assert not np.array_equal(np.asarray(Image.open(predicted)), np.asarray(Image.open(bag)))
    image_only = tmp_path / "image.png"
    run_cli(capsys, "gradcam", checkpoint, trouser, "--opacity", "0", "--out", str(image_only))
    grey = np.asarray(Image.open(image_only))[..., :3]
    assert (grey[..., 0] == grey[..., 2]).all()  # opacity 0: the grey image, no colour


def test_bad_names_are_messages_not_tracebacks(checkpoint, trouser, tmp_path, capsys):
    code, _, err = run_cli(capsys, "feature-maps", checkpoint, trouser, "--layer", "features.99")
    assert code == 2 and "no layer named 'features.99'" in err and "Traceback" not in err
    code, _, err = run_cli(
        capsys, "gradcam", checkpoint, trouser, "--class", "Hat", "--out", str(tmp_path / "x.png")
    )
    assert code == 2 and "unknown class 'Hat'" in err and not (tmp_path / "x.png").exists()
    code, _, err = run_cli(
        capsys, "gradcam", checkpoint, str(tmp_path / "missing.png"), "--out", str(tmp_path / "y.png")
    )
    assert code == 2 and "missing.png" in err
