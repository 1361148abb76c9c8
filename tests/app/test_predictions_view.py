"""The predictions view on a real trained model: images and a folder dropped on it get top-k classes with
probability bars, the same numbers `workbench predict` prints; unreadable files are reported; CSV export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tiny_run import train_tiny_run

from workbench.app.predictions.view import PredictionsView, ProbabilityBar
from workbench.cli.main import main as cli_main
from workbench.engine.evaluation.predict import predictions_csv


@pytest.fixture(scope="module")
def trained(fmnist_folder, tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("predict-home")
    run = train_tiny_run(fmnist_folder, home)
    return run


@pytest.fixture(autouse=True)
def trained_home(trained, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", trained["home"])


@pytest.fixture
def view(qtbot, trained) -> PredictionsView:
    view = PredictionsView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    view.show()
    qtbot.waitExposed(view)
    view.set_run(trained["run_id"])
    qtbot.waitUntil(lambda: view.runs.current_run_id() == trained["run_id"], timeout=10_000)
    return view


def test_dropped_images_and_folder_get_the_same_top_k_as_workbench_predict(
    qtbot, view, trained, fmnist_folder, tmp_path, capsys, drop
):
    folder = Path(shutil.copytree(fmnist_folder / "test" / "Bag", tmp_path / "bags"))
    loose = sorted((fmnist_folder / "test" / "Trouser").glob("*.png"))[:2]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    view.top_k.setValue(4)

    with qtbot.waitSignal(view.predicted, timeout=30_000) as predicted:
        assert drop(view, [*loose, folder, broken])
    expected_good = len(loose) + len(list(folder.glob("*.png")))
    assert predicted.args == [expected_good]
    assert view.table.rowCount() == expected_good + 1
    assert "1 could not be read" in view.status.text()

    code = cli_main(["predict", trained["run_id"], *map(str, loose), str(folder), "--top-k", "4", "--json"])
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    shown = {result.path: view.shown_top(row) for row, result in enumerate(view.results) if not result.error}
    assert set(shown) == {entry["path"] for entry in cli}
    for entry in cli:
        bars = shown[entry["path"]]
        assert [name for name, _ in bars] == [top["class"] for top in entry["top"]]
        assert [p for _, p in bars] == pytest.approx([top["probability"] for top in entry["top"]], abs=1e-6)
    bar = view.table.cellWidget(0, 1).findChildren(ProbabilityBar)[0]
    assert bar.text() == f"{bar.class_name} {bar.probability:.1%}"
    assert [r.error is not None for r in view.results].count(True) == 1

    out = tmp_path / "predictions.csv"
    view.export_csv(str(out))
    qtbot.waitUntil(lambda: "Saved" in view.status.text(), timeout=10_000)
    assert out.read_text(encoding="utf-8") == predictions_csv(view.results)


def test_a_drop_without_files_is_refused(view, tmp_path, drop):
    assert not drop(view, [tmp_path / "missing.png"])
    assert view.table.rowCount() == 0
