"""The out-of-domain warning on a real trained run: real foreign images (the workbench's own screenshots and
icons) dropped on a clothing model are flagged, ordinary test images mostly are not; `workbench predict --json`
carries the flag and the calibrated probabilities; stored records that are missing or damaged mean no check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench.cli.main import main as cli_main
from workbench.engine.evaluation import out_of_domain as ood
from workbench.engine.evaluation.predict import Predictor
from workbench.engine.training.checkpoint import load_checkpoint

RESOURCES = Path(__file__).resolve().parents[2] / "resources"


@pytest.fixture(scope="module")
def run(course_cnn_run) -> dict[str, str]:
    return course_cnn_run


@pytest.fixture(autouse=True)
def in_the_runs_home(run, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", run["home"])


def foreign_images() -> list[Path]:
    """Real images that are not clothing: the app's screenshots and its icon at several sizes."""
    found = sorted((RESOURCES / "screenshots").glob("*.png")) + sorted((RESOURCES / "icons").rglob("*.png"))
    assert len(found) >= 10
    return found


def test_the_run_stores_thresholds_for_five_percent_false_alarms_on_validation(run):
    stored = load_checkpoint(Path(run["checkpoint"]))[ood.KEY]
    detector = ood.OutOfDomain.from_dict(stored)
    assert detector.active and detector.measure == ood.FEATURE_MEASURE
    assert detector.validation_images == 60 and detector.false_alarm_rate == 0.05
    assert set(detector.thresholds) == set(ood.MEASURES)
    assert detector.class_means.shape[0] == 10
    assert detector.note.endswith("(feature distance)")
    # An export has logits only: its record is the energy threshold, and its note names that measure.
    exported = detector.for_logits_only()
    assert exported.measure == ood.ENERGY and exported.note.endswith("(energy)"), exported.note


def test_foreign_images_are_flagged_and_test_images_mostly_not(run, fmnist_folder):
    predictor = Predictor(run["checkpoint"])
    foreign = predictor.predict(foreign_images())
    flagged = [r for r in foreign if r.out_of_domain]
    assert len(flagged) >= 0.9 * len(foreign), [(Path(r.path).name, r.domain_score) for r in foreign]
    test = predictor.predict([fmnist_folder / "test"])
    assert len(test) == 200
    false_alarms = sum(1 for r in test if r.out_of_domain)
    assert false_alarms <= 0.12 * len(test)  # the threshold aims at 5% (set on 60 validation images)
    for result in flagged:
        assert result.domain_score > result.domain_threshold
        assert result.top[0][1] < 1.0  # it still answers, with the warning beside the answer


def test_predict_json_carries_the_flag_and_the_calibrated_probabilities(run, fmnist_folder, capsys):
    icon = sorted((RESOURCES / "screenshots").glob("*.png"))[0]
    coat = sorted((fmnist_folder / "test" / "Coat").glob("*.png"))[0]
    code = cli_main(["predict", run["run_id"], str(icon), str(coat), "--top-k", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    entries = {Path(e["path"]).name: e for e in json.loads(captured.out.strip().splitlines()[-1])}
    assert entries[icon.name]["out_of_domain"] is True
    temperature = load_checkpoint(Path(run["checkpoint"]))["calibration"]["temperature"]
    for entry in entries.values():
        assert entry["temperature"] == pytest.approx(temperature)
        assert isinstance(entry["calibrated"], bool) and isinstance(entry["out_of_domain"], bool)
        assert entry["out_of_domain"] == (entry["out_of_domain_score"] > entry["out_of_domain_threshold"])
    assert "unlike the training images" in captured.err  # the human lines go to stderr under --json
    assert "probabilities" in captured.err


def test_predict_text_marks_the_foreign_image(run, capsys):
    icon = sorted((RESOURCES / "screenshots").glob("*.png"))[0]
    assert cli_main(["predict", run["run_id"], str(icon)]) == 0
    out = capsys.readouterr()
    line = next(line for line in out.out.splitlines() if icon.name in line)
    assert "⚠ unlike the training images" in line
    assert "1 of 1 image(s) are unlike the training images" in out.err


def test_missing_or_damaged_records_mean_no_check_with_a_note():
    assert not ood.OutOfDomain.from_dict(None).active
    assert "older version" in ood.OutOfDomain.from_dict(None).note
    for bad in (
        {"measure": "feature_distance", "thresholds": {"feature_distance": "high"}},
        {"measure": "moon_phase", "thresholds": {}},
        {"measure": "energy", "thresholds": {"energy": float("inf")}},
    ):
        detector = ood.OutOfDomain.from_dict(bad)
        assert not detector.active and "not usable" in detector.note
        assert detector.scores(torch.zeros(2, 3)) is None


def test_too_few_validation_images_mean_no_check():
    detector = ood.fit_out_of_domain(torch.randn(12, 3), None, None, None)
    assert not detector.active and "12 validation image(s), fewer than 20" in detector.note


def test_without_features_the_logit_measure_is_used():
    logits = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    detector = ood.fit_out_of_domain(logits, None, None, None)
    assert detector.measure == ood.ENERGY
    flagged = detector.flags(detector.scores(logits)).float().mean().item()
    assert flagged == pytest.approx(0.05, abs=0.011)  # 5% of the images it was set on
