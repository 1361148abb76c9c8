"""Calibrated confidence on real trained runs: the temperature fitted on validation at the end of training is
stored in the checkpoint and its exports, evaluate reports the expected calibration error before and after,
predictions use it; old checkpoints and too-small validation splits keep T = 1 and say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench.engine.errors import WeightsError
from workbench.engine.evaluation import calibration
from workbench.engine.evaluation.calibration import (
    Calibration,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from workbench.engine.evaluation.confidence import describe
from workbench.engine.evaluation.evaluate import evaluate
from workbench.engine.evaluation.predict import Predictor
from workbench.engine.export import export_run
from workbench.engine.training.checkpoint import load_checkpoint, save_checkpoint
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


def _train(data: Path, home: Path, **options) -> tuple[Path, list]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        config = TrainConfig(data=str(data), model="course_cnn", batch_size=32, seed=0, **{"epochs": 1, **options})
        events = list(Trainer(config).run())
    assert events[-1].status == "finished", events[-1]
    return Path(events[-1].checkpoint), events


@pytest.fixture(scope="module")
def run(fmnist_folder, tmp_path_factory) -> tuple[Path, list]:
    """course_cnn, one epoch on 600 real Fashion-MNIST PNGs (60 of them the validation split)."""
    return _train(fmnist_folder, tmp_path_factory.mktemp("calibration-home"))


# ---------------------------------------------------------------------------------------------- the maths


def test_ece_is_the_weighted_gap_between_accuracy_and_confidence():
    # 10 images at 90% confidence of which 6 are right, 10 at 55% of which 5 are right: gaps 0.3 and 0.05.
    sure = torch.tensor([[0.9, 0.1]] * 10)
    unsure = torch.tensor([[0.55, 0.45]] * 10)
    probabilities = torch.cat([sure, unsure])
    targets = torch.tensor([0] * 6 + [1] * 4 + [0] * 5 + [1] * 5)
    assert expected_calibration_error(probabilities, targets) == pytest.approx((0.3 + 0.05) / 2)
    bins = reliability_bins(probabilities, targets)
    assert len(bins) == 15 and sum(b.count for b in bins) == 20
    top = bins[int(0.9 * 15)]
    assert top.count == 10 and top.accuracy == pytest.approx(0.6) and top.confidence == pytest.approx(0.9)


def test_an_overconfident_model_gets_a_temperature_above_one_and_a_lower_ece():
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(400) % 4
    # Logits that are right 70% of the time, scaled up until the model claims ~99% on every image.
    noisy = torch.randn(400, 4, generator=generator)
    noisy[torch.arange(400), targets] += 1.2
    logits = noisy * 8
    fitted = fit_temperature(logits, targets)
    assert fitted.fitted and fitted.temperature > 2
    assert fitted.ece_after < fitted.ece_before / 2
    assert fitted.nll_after < fitted.nll_before
    assert "ECE rose" not in describe(fitted) and "log-loss" in describe(fitted)


def test_a_fit_whose_ece_rose_on_few_images_says_what_it_lowered_and_why_the_ece_moved():
    # The sample's 40 validation images in the app: T = 0.89 lowered the loss and raised the ECE.
    generator = torch.Generator().manual_seed(3)
    found = None
    for _ in range(200):  # real fits on 40 noisy images until one shows it
        targets = torch.arange(40) % 4
        logits = torch.randn(40, 4, generator=generator) * 2
        logits[torch.arange(40), targets] += 1.5
        fitted = fit_temperature(logits, targets)
        if fitted.fitted and fitted.ece_after > fitted.ece_before:
            found = fitted
            break
    assert found is not None and found.nll_after < found.nll_before
    text = describe(found)
    assert f"log-loss {found.nll_before:.3f} → {found.nll_after:.3f}" in text
    assert "the ECE rose because 40 images spread over 15 confidence bins" in text


@pytest.mark.parametrize(
    ("logits", "targets", "reason"),
    [
        (torch.randn(12, 3), torch.arange(12) % 3, "12 validation image(s), fewer than 20"),
        (torch.randn(40, 3), torch.zeros(40, dtype=torch.long), "all of one class"),
        (torch.eye(3).repeat(10, 1) * 5, torch.arange(30) % 3, "gets all 30 validation images right"),
    ],
)
def test_validation_that_cannot_support_a_fit_keeps_t_1_and_says_why(logits, targets, reason):
    fitted = fit_temperature(logits, targets)
    assert not fitted.fitted and fitted.temperature == 1.0
    assert reason in fitted.note and fitted.note.startswith("T = 1 kept")


def test_stored_records_that_are_missing_or_malformed_mean_t_1():
    assert Calibration.from_dict(None).temperature == 1.0
    assert "older version" in Calibration.from_dict(None).note
    for bad in ({"temperature": "hot"}, {"temperature": float("nan")}, {"temperature": 1e9}, {}):
        kept = Calibration.from_dict(bad)
        assert kept.temperature == 1.0 and not kept.fitted and "not usable" in kept.note


# ---------------------------------------------------------------------------------------------- a real run


def test_training_stores_a_fitted_temperature_in_the_kept_checkpoint(run):
    checkpoint, events = run
    stored = load_checkpoint(checkpoint)[calibration.KEY]
    assert stored["validation_images"] == 60
    messages = [e.text for e in events if type(e).__name__ == "Message"]
    if stored["fitted"]:
        # What the fit promises is a lower validation loss; the ECE over 15 bins of 60 images may still rise.
        assert stored["temperature"] != 1.0 and stored["nll_after"] < stored["nll_before"]
        assert any(f"temperature {stored['temperature']:.2f}" in m for m in messages), messages
    else:
        assert any("T = 1 kept" in m for m in messages), messages


def test_evaluate_reports_ece_before_and_after_with_the_stored_temperature(run, fmnist_folder):
    checkpoint, _ = run
    report, predictions = evaluate(checkpoint, fmnist_folder, split="test")
    stored = load_checkpoint(checkpoint)[calibration.KEY]
    result = report.to_dict()["calibration"]
    assert result["temperature"] == pytest.approx(stored["temperature"])
    probabilities = predictions.logits.softmax(1)
    assert result["ece_before"] == pytest.approx(expected_calibration_error(probabilities, predictions.targets))
    scaled = (predictions.logits / stored["temperature"]).softmax(1)
    assert result["ece_after"] == pytest.approx(expected_calibration_error(scaled, predictions.targets))
    assert sum(b["count"] for b in result["reliability_after"]) == 200
    json.dumps(report.to_dict())  # eval --json can print it


def test_predictions_are_the_calibrated_probabilities(run, fmnist_folder):
    checkpoint, _ = run
    temperature = load_checkpoint(checkpoint)[calibration.KEY]["temperature"]
    image = sorted((fmnist_folder / "test" / "Bag").glob("*.png"))[0]
    predictor = Predictor(checkpoint, tta=False)
    [result] = predictor.predict([image], top_k=10)
    with torch.inference_mode():
        logits = predictor.model(_input(predictor, image))
    expected = (logits / temperature).softmax(1)[0]
    top_class, top_p = result.top[0]
    assert top_p == pytest.approx(expected.max().item(), abs=1e-6)
    assert result.temperature == pytest.approx(temperature)
    assert result.to_dict()["calibrated"] is predictor.calibration.fitted
    assert "calibrated" in predictor.probability_note


def _input(predictor: Predictor, image: Path) -> torch.Tensor:
    from workbench.engine.data import decode_image

    x = decode_image(image, predictor.size, predictor.channels).float()[None] / 255
    return (x - predictor.mean) / predictor.std


def test_an_old_checkpoint_without_a_temperature_predicts_with_t_1(run, fmnist_folder, tmp_path):
    checkpoint, _ = run
    payload = load_checkpoint(checkpoint)
    payload.pop(calibration.KEY)
    payload.pop("out_of_domain")
    old = save_checkpoint(tmp_path / "old.pt", payload)
    image = sorted((fmnist_folder / "test" / "Bag").glob("*.png"))[0]
    predictor = Predictor(old, tta=False)
    [result] = predictor.predict([image], top_k=1)
    with torch.inference_mode():
        plain = predictor.model(_input(predictor, image)).softmax(1)[0]
    assert result.top[0][1] == pytest.approx(plain.max().item(), abs=1e-6)
    assert not result.calibrated and result.temperature == 1.0 and result.out_of_domain is None
    assert "older version" in predictor.probability_note and "older version" in predictor.domain_note
    report, _ = evaluate(old, fmnist_folder, split="test")
    assert report.extra["calibration"]["ece_after"] == report.extra["calibration"]["ece_before"]


def test_a_validation_split_too_small_keeps_t_1_and_says_so(fmnist_folder_factory, tmp_path):
    data = fmnist_folder_factory(12, 3)  # 120 training images: a validation split of about a dozen
    checkpoint, events = _train(data, tmp_path / "home")
    stored = load_checkpoint(checkpoint)[calibration.KEY]
    count = stored["validation_images"]
    assert 0 < count < 20 and stored["temperature"] == 1.0 and not stored["fitted"]
    texts = [e.text for e in events if type(e).__name__ == "Message"]
    said = f"{count} validation image(s), fewer than 20"
    assert any("confidence not calibrated" in t and said in t for t in texts), texts
    assert any(f"no out-of-domain check: {said}" in t for t in texts), texts
    assert Predictor(checkpoint).detector.active is False


def test_exports_carry_the_temperature_and_predict_the_same_calibrated_probabilities(run, fmnist_folder, monkeypatch):
    checkpoint, _ = run
    monkeypatch.setenv("WORKBENCH_HOME", str(checkpoint.parents[4]))
    exported = export_run(checkpoint, "onnx")
    metadata = json.loads(exported.metadata_path.read_text())
    stored = load_checkpoint(checkpoint)
    assert metadata[calibration.KEY]["temperature"] == pytest.approx(stored[calibration.KEY]["temperature"])
    assert metadata["out_of_domain"]["measure"] == "energy"
    assert metadata["out_of_domain"]["thresholds"]["energy"] == pytest.approx(
        stored["out_of_domain"]["thresholds"]["energy"]
    )
    images = sorted((fmnist_folder / "test" / "Coat").glob("*.png"))[:4]
    from_checkpoint = Predictor(checkpoint).predict(images, top_k=3)
    from_export = Predictor(exported.path).predict(images, top_k=3)
    for a, b in zip(from_checkpoint, from_export, strict=True):
        assert [c for c, _ in a.top] == [c for c, _ in b.top]
        assert [p for _, p in a.top] == pytest.approx([p for _, p in b.top], abs=1e-4)
        assert b.calibrated == a.calibrated and b.out_of_domain is not None


def test_an_export_whose_temperature_was_edited_is_refused_clearly(run, tmp_path):
    from workbench.engine.export.metadata import validate_metadata

    checkpoint, _ = run
    metadata = {
        "format": "cnn-workbench-export", "version": 1, "model": "course_cnn", "classes": ["a", "b"],
        "preprocessing": {"size": 28, "channels": 1, "mean": [0.5], "std": [0.25]},
    }  # fmt: skip
    validate_metadata(metadata, tmp_path / "m.json")  # an export from before calibration: fine
    with pytest.raises(WeightsError, match=r"'calibration.temperature' is -3: must be a number from 0.05 to 20"):
        validate_metadata({**metadata, "calibration": {"temperature": -3}}, tmp_path / "m.json")
    with pytest.raises(WeightsError, match=r"'out_of_domain.measure' is 'feature_distance'"):
        validate_metadata(
            {**metadata, "out_of_domain": {"measure": "feature_distance", "thresholds": {}}}, tmp_path / "m.json"
        )


def test_a_failing_fit_leaves_the_run_finished_and_its_model_usable(fmnist_folder_factory, tmp_path, monkeypatch):
    from workbench.engine.evaluation import confidence

    def broken(*_args, **_kwargs):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(confidence, "fit_confidence", broken)
    checkpoint, events = _train(fmnist_folder_factory(12, 3), tmp_path / "home")  # asserts it finished
    texts = [e.text for e in events if type(e).__name__ == "Message"]
    assert any("confidence not calibrated" in t and "simulated failure" in t for t in texts), texts
    assert calibration.KEY not in load_checkpoint(checkpoint)
    image = sorted((fmnist_folder_factory(12, 3) / "test" / "Bag").glob("*.png"))[0]
    [result] = Predictor(checkpoint).predict([image])
    assert result.temperature == 1.0 and result.out_of_domain is None and result.top


def test_a_run_that_keeps_stage_1_calibrates_from_the_embedding_cache_as_forward_passes_would(
    fmnist_folder_factory, monkeypatch
):
    """Stage 1's network is the frozen body whose features the embedding cache holds: its calibration reads
    them instead of running the network again, and stores what the forward passes would have."""
    import copy

    from workbench.engine.evaluation import confidence, out_of_domain

    data = fmnist_folder_factory(30, 3)  # 300 images: the pretrained default, a validation split of 30
    config = {"data": str(data / "train"), "quick": True, "img_size": 64, "test_split": 0.0, "seed": 0}
    passes = []
    original_passes = out_of_domain.logits_and_features
    monkeypatch.setattr(
        out_of_domain, "logits_and_features", lambda *a, **k: passes.append(1) or original_passes(*a, **k)
    )

    def kept_records() -> dict:
        events = list(Trainer(TrainConfig(**config)).run())
        assert events[-1].status == "finished", events[-1]
        return load_checkpoint(events[-1].checkpoint)

    from_cache = kept_records()
    assert passes == []  # not one forward pass of the network
    detector = from_cache[out_of_domain.KEY]
    assert detector["measure"] == "feature_distance" and detector["validation_images"] >= 20

    # The same run once more (same split, same head) with the cache not consulted: the forward passes.
    read_from_cache = confidence.judged_from_embeddings
    asked = []

    def forward_passes_instead(model, run_config, prepared):
        nudged = copy.deepcopy(model)  # a body one weight away (a fine-tuned one) finds nothing in the cache
        with torch.no_grad():
            next(p for name, p in nudged.named_parameters() if not name.startswith("_fc")).add_(1e-3)
        asked.append((read_from_cache(model, run_config, prepared) is not None,
                      read_from_cache(nudged, run_config, prepared)))  # fmt: skip
        return None

    monkeypatch.setattr(confidence, "judged_from_embeddings", forward_passes_instead)
    from_passes = kept_records()
    assert asked == [(True, None)] and passes  # it was in the cache; the passes ran
    assert from_cache[calibration.KEY]["temperature"] == pytest.approx(
        from_passes[calibration.KEY]["temperature"], rel=1e-3
    )
    a, b = from_cache[out_of_domain.KEY], from_passes[out_of_domain.KEY]
    assert a["thresholds"].keys() == b["thresholds"].keys()
    for measure, threshold in a["thresholds"].items():  # the cache keeps vectors in float16: 3 digits
        assert threshold == pytest.approx(b["thresholds"][measure], rel=2e-3, abs=1e-4), measure
    cosines = (torch.as_tensor(a["class_means"]) * torch.as_tensor(b["class_means"])).sum(1)
    assert cosines.min() > 0.9999
