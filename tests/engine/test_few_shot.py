"""Few folders, good model: stage 1 (a head fitted on cached embeddings, a real run), the embedding cache,
and honest figures on tiny validation sets — on real Fashion-MNIST PNG folders. The default policy is in
test_few_shot_policy.py, stage 2 in test_lp_ft.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from few_shot_runs import FAST, messages, run, tap_columns

from workbench.engine.evaluation.figures import HEAD_REFIT_ON_VAL, validation_provenance
from workbench.engine.evaluation.uncertainty import majority_baseline, majority_warning, wilson_interval
from workbench.engine.features import Embedder
from workbench.engine.training import event_text
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import CheckpointSaved, EpochEnded, Message, RunStarted
from workbench.engine.training.linear_probe import fit_linear_probe
from workbench.engine.training.probe_stage import fine_tuning_replaces_stage1
from workbench.engine.training.trainer import Trainer

# ---- stage 1: the linear probe ---------------------------------------------------------------------------


def test_linear_probe_separates_separable_features_and_folds_standardization():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 16, generator=g) * 3
    labels = torch.arange(3).repeat_interleave(20)
    features = (
        centres[labels] + torch.randn(60, 16, generator=g) * 0.5 + 100
    )  # far from zero: needs the shift
    fit = fit_linear_probe(features, labels, 3)
    assert fit.folds == 5 and fit.cv_accuracy > 0.9 and fit.cv_se is not None
    assert (fit.logits(features).argmax(1) == labels).float().mean() > 0.95


def test_a_class_with_one_image_still_fits_without_cross_validation():
    features = torch.randn(7, 8)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2])
    fit = fit_linear_probe(features, labels, 3)
    assert fit.folds == 0 and fit.cv_accuracy is None
    assert any("single training image" in note for note in fit.notes)


def test_stage_one_is_a_real_run_whose_checkpoint_evaluate_predict_and_export_accept(few, tmp_path):
    from workbench.engine.evaluation.evaluate import evaluate
    from workbench.engine.evaluation.predict import Predictor
    from workbench.engine.export import export_run
    from workbench.engine.runs import RunRegistry
    from workbench.engine.training.checkpoint import load_model

    events = run(TrainConfig(data=str(few / "train"), quick=True, **FAST))
    finished = events[-1]
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.model == "efficientnet_lite0"
    epochs = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in epochs] == [0] and epochs[0].stage == "linear probe"
    assert finished.epochs == 0 and finished.val_accuracy == epochs[0].val_acc

    # The head in the checkpoint is the fitted probe: well above chance on unseen test images.
    report, _ = evaluate(finished.checkpoint, few / "test")
    assert report.accuracy > 0.4  # chance is 0.1
    low, high = report.extra["accuracy_interval_95"]
    assert low < report.accuracy < high and report.extra["warning"] is None
    prediction = Predictor(finished.checkpoint).predict([next((few / "test").rglob("*.png"))])[0]
    assert prediction.top and prediction.top[0][1] > 0
    exported = export_run(finished.checkpoint, "onnx", tmp_path)
    assert exported.max_abs_diff < 1e-3
    model, meta = load_model(finished.checkpoint)
    assert meta["history"][0]["stage"] == "linear probe"
    assert RunRegistry().get(finished.run_id).status == "finished"


def test_stage_one_reads_every_block_and_stage_two_fine_tunes_through_the_last_layer(few):
    from workbench.engine.training import checkpoint as ckpt

    quick = run(TrainConfig(data=str(few / "train"), quick=True, **FAST))
    instant = ckpt.load_checkpoint(quick[-1].checkpoint)
    assert instant["model_args"] == {"taps": list(range(16)), "tap_max": True, "tap_inner_max": True}
    assert tap_columns(instant["model_state"]).abs().sum() > 0  # the instant model uses the taps
    plan = next(e for e in quick if isinstance(e, RunStarted)).plan
    reads = "the average and maximum of 16 blocks' outputs, the last layer's maximum and the maximum of their inner features"
    assert f"with {reads} (stage 1)" in plan, plan
    assert "stage 2 starts" not in messages(quick)  # a quick run prepares no stage 2
    # Without a validation split (no best.pt) the quick run's model is still the tapped head.
    unvalidated = run(TrainConfig(data=str(few / "train"), quick=True, val_split=0.0, **FAST))
    assert unvalidated[-1].status == "finished" and Path(unvalidated[-1].checkpoint).name == ckpt.LAST
    assert tap_columns(ckpt.load_checkpoint(unvalidated[-1].checkpoint)["model_state"]).abs().sum() > 0

    events = run(TrainConfig(data=str(few / "train"), epochs=1, **FAST))
    folder = Path(events[-1].checkpoint).parent
    start = ckpt.load_checkpoint(folder / ckpt.PROBE)
    assert start["model_args"] == instant["model_args"]
    assert tap_columns(start["model_state"]).abs().sum() == 0 and start["model_state"]["_fc.weight"].abs().sum() > 0
    # Fine-tuning never moved the tap columns off zero (no gradient through the taps), the rest it did move.
    final = ckpt.load_checkpoint(folder / ckpt.LAST)["model_state"]
    assert tap_columns(final).abs().sum() == 0
    assert not torch.equal(final["_blocks.3._project_conv.weight"], start["model_state"]["_blocks.3._project_conv.weight"])
    assert "stage 2 starts from a head on the last layer's features alone" in messages(events)
    # Stage 1's log line names best.pt, which holds it, not last.pt, which stage 2's starting head replaced.
    saved = next(e for e in events if isinstance(e, CheckpointSaved) and e.epoch == 0)
    line = event_text.line(saved)
    assert line == f"checkpoint saved (epoch 0): {folder / ckpt.BEST}, the model the run keeps"
    # The plan's count leaves out the tap weights the mask holds at zero (10 classes × 13,856 tap features).
    started = next(e for e in events if isinstance(e, RunStarted))
    assert any(
        n.startswith("fine-tune all: 3,383,242 of 3,521,802 parameters train (the head's 138,560 tap weights stay")
        for n in started.notes
    ), started.notes
    kept = ckpt.load_checkpoint(folder / ckpt.BEST)  # stage 1's tapped head unless fine-tuning clearly beat it
    probe, tuned = [e for e in events if isinstance(e, EpochEnded)]
    replaced, _ = fine_tuning_replaces_stage1(probe.val_acc, tuned.val_acc, tuned.val_images)
    assert (tap_columns(kept["model_state"]).abs().sum() > 0) == (not replaced)

    # The quick run continued (Continue training, `train --resume RUN --epochs 1`) fine-tunes from the same
    # starting head as the run that never stopped (from the cached features: nothing embedded), and now
    # records itself as a fine-tuning run.
    continued = list(Trainer(TrainConfig(data=str(few / "train"), epochs=1), resume=quick[-1].run_id).run())
    assert continued[-1].status == "finished", continued[-1].reason
    said = messages(continued)
    assert "stage 2 starts from a head on the last layer's features alone" in said and "0 image(s) embedded" in said
    assert [e.epoch for e in continued if isinstance(e, EpochEnded)] == [1]
    assert "(stage 2)" in next(e for e in continued if isinstance(e, RunStarted)).plan
    quick_folder = Path(quick[-1].checkpoint).parent
    quick_start = ckpt.load_checkpoint(quick_folder / ckpt.PROBE)["model_state"]
    assert torch.equal(quick_start["_fc.weight"], start["model_state"]["_fc.weight"])
    assert re.search(r"right on \d+ that stage 1 gets wrong", said)  # and it still has to beat stage 1

    # A run started from a tapped run's weights gets its architecture, whatever the new run would pick.
    again = run(TrainConfig(data=str(few / "train"), weights=quick[-1].checkpoint, epochs=1, **FAST))
    assert ckpt.load_checkpoint(again[-1].checkpoint)["model_args"] == instant["model_args"]


def test_the_embedding_cache_tells_tapped_features_from_plain_ones():
    from workbench.engine.models import build_model

    model = build_model("efficientnet_lite0", 3, 1)
    plain = Embedder(model, model_name="efficientnet_lite0", size=32, channels=1, device=torch.device("cpu"))
    tapped = Embedder(
        build_model("efficientnet_lite0", 3, 1, taps=[14, 15]), model_name="efficientnet_lite0", size=32,
        channels=1, device=torch.device("cpu"), model_args={"taps": [14, 15]},
    )  # fmt: skip
    tapped.body.load_state_dict(plain.body.state_dict())  # the same weights: only the taps differ
    assert plain.key != tapped.key and (plain.dim, tapped.dim) == (1280, 1280 + 192 + 320)


def test_the_fitted_head_in_the_network_gives_the_probe_logits(few):
    """The weights written into the model's own head reproduce the probe's logits on real images."""
    from workbench.engine.data import load_decoded, scan_dataset
    from workbench.engine.training.checkpoint import load_model

    events = run(TrainConfig(data=str(few / "train"), quick=True, augment=None, **FAST))
    model, meta = load_model(events[-1].checkpoint)
    pre = meta["preprocessing"]
    samples = scan_dataset(few / "test").split("train")[:20]
    decoded = load_decoded(samples, pre["size"], pre["channels"])
    x = (decoded.images.float() / 255 - torch.tensor(pre["mean"]).view(1, -1, 1, 1)) / torch.tensor(
        pre["std"]
    ).view(1, -1, 1, 1)
    embedder = Embedder(
        model,
        model_name=meta["model"],
        size=pre["size"],
        channels=pre["channels"],
        device=torch.device("cpu"),
    )
    head = model._fc
    with torch.no_grad():
        via_features = embedder(x) @ head.weight.T + head.bias
        direct = model(x)
    assert torch.allclose(via_features, direct, atol=1e-3)


def test_features_nearly_constant_over_a_few_images_get_no_huge_weight(few, monkeypatch):
    """4 real images per class through the pretrained network: standardized by their own tiny spread, the
    features these gray clothes barely excite got raw weights of ~100 (an ImageNet head's are below 0.5),
    and fine-tuning from that head diverged (K = 5: validation 90% → 10% by the third epoch)."""
    from workbench.engine.data import IMAGENET_MEAN, IMAGENET_STD, load_decoded, scan_dataset
    from workbench.engine.models import build_model
    from workbench.engine.training import linear_probe

    samples = scan_dataset(few / "train").split("train")
    chosen = [sample for c in range(10) for sample in [s for s in samples if s.label == c][:4]]
    decoded = load_decoded(chosen, 224, 1)
    x = (decoded.images.float() / 255 - sum(IMAGENET_MEAN) / 3) / (sum(IMAGENET_STD) / 3)
    embedder = Embedder(
        build_model("efficientnet_lite0", 10, 1, pretrained=True), model_name="efficientnet_lite0", size=224,
        channels=1, device=torch.device("cpu"),
    )  # fmt: skip
    features, mirrored = embedder(x), embedder(x.flip(-1))
    fit = fit_linear_probe(features, decoded.labels, 10, mirrored=mirrored)
    assert fit.weight.abs().max() < 5
    monkeypatch.setattr(linear_probe, "SD_FLOOR", 0.0)  # each feature by its own spread, as before
    assert fit_linear_probe(features, decoded.labels, 10, mirrored=mirrored).weight.abs().max() > 20


def test_a_second_run_on_the_same_folder_embeds_nothing(few, monkeypatch):
    config = TrainConfig(data=str(few / "train"), quick=True, **FAST)
    run(config)
    calls = []
    original = Embedder.embed
    monkeypatch.setattr(Embedder, "embed", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    events = run(config)
    assert calls == []  # every vector came from the cache: no forward pass
    assert "0 image(s) embedded" in messages(events)


def test_the_embedding_cache_keeps_vectors_in_half_precision_and_hands_out_float32(few, tmp_path):
    from safetensors.torch import load_file

    from workbench.engine.data import IMAGENET_MEAN, IMAGENET_STD, load_decoded, scan_dataset
    from workbench.engine.features import EmbeddingStore
    from workbench.engine.models import build_model, get_spec

    samples = scan_dataset(few / "train").split("train")[:12]
    images = load_decoded(samples, 96, 1).images
    tapped = build_model("efficientnet_lite0", 10, 1, pretrained=True, **get_spec("efficientnet_lite0").probe_args)
    embedder = Embedder(tapped, model_name="efficientnet_lite0", size=96, channels=1, device=torch.device("cpu"))

    def normalize(batch: torch.Tensor) -> torch.Tensor:
        return (batch.float() / 255 - sum(IMAGENET_MEAN) / 3) / (sum(IMAGENET_STD) / 3)

    paths = [sample.path for sample in samples]
    features, flipped, fresh = EmbeddingStore(tmp_path, embedder.key).lookup(
        paths, images, embedder, normalize, mirrored=True
    )
    assert fresh == 12 and features.dtype == flipped.dtype == torch.float32
    assert torch.allclose(features, embedder(normalize(images)), rtol=2e-3, atol=1e-3)  # what float16 keeps
    stored = load_file(str(tmp_path / f"{embedder.key}.safetensors"))
    assert stored["features"].dtype == torch.float16 and stored["features"].shape == (12, 15_136)
    # A second store on the same file trusts it (its digest is of what was written): the same vectors.
    again, _, fresh = EmbeddingStore(tmp_path, embedder.key).lookup(paths, images, embedder, normalize, mirrored=True)
    assert fresh == 0 and torch.equal(again, features)


def test_a_changed_file_is_embedded_again_and_a_damaged_cache_is_rebuilt(few, tmp_path, monkeypatch):
    import os
    import shutil

    from workbench.engine import paths

    data = tmp_path / "data"
    shutil.copytree(few / "train", data)
    config = TrainConfig(data=str(data), quick=True, **FAST)
    run(config)
    touched = next(data.rglob("*.png"))
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert "1 image(s) embedded" in messages(run(config))

    for store in (paths.cache_dir() / "embeddings").glob("*.safetensors"):
        raw = bytearray(store.read_bytes())
        raw[-200:] = bytes(200)  # zero the last vectors: the digest no longer matches
        store.write_bytes(bytes(raw))
    events = run(config)
    text = messages(events)
    assert "rebuilt" in text and "0 reused" in text


def test_tiny_validation_reports_cross_validated_accuracy_with_its_uncertainty(few):
    events = run(TrainConfig(data=str(few / "train"), quick=True, **FAST))
    probe = next(e for e in events if isinstance(e, EpochEnded))
    assert probe.val_images < 10 * 10  # fewer than 10 validation images per class
    assert probe.cv_accuracy is not None and probe.cv_se is not None and probe.cv_se > 0
    text = messages(events)
    assert "cross-validation" in text and "95% interval" in text


def test_with_tiny_validation_the_instant_model_also_learns_from_the_validation_images(few, capsys):
    """2 validation images per class: stage 1's figures are the held-out head's, then the head is refitted on
    all the labelled images. Calibration uses the held-out head; evaluation never calls the validation split
    held out for that model."""
    from workbench.engine.data import scan_dataset
    from workbench.engine.evaluation.evaluate import VALIDATION_SEEN, predict_folder
    from workbench.engine.training import checkpoint as ckpt

    events = run(TrainConfig(data=str(few / "train"), quick=True, **FAST))
    assert "refitted on the training and validation images together (120 images)" in messages(events)
    payload = ckpt.load_checkpoint(events[-1].checkpoint)
    held_out = payload[ckpt.HELD_OUT_HEAD]
    refitted = payload["model_state"]["_fc.weight"]
    assert held_out["weight"].shape == refitted.shape and not torch.allclose(held_out["weight"], refitted)
    # The run's validation figure is the held-out head's: the refitted one scores that or better on images
    # it has now seen.
    probe = next(e for e in events if isinstance(e, EpochEnded))
    seen = predict_folder(events[-1].checkpoint, few / "train", split="val", tta=True)
    assert seen.split_note == VALIDATION_SEEN
    assert (seen.logits.argmax(1) == seen.targets).float().mean().item() >= probe.val_acc
    # "auto" does not judge on those images: the folder has no test split, so every image, with a note.
    auto = predict_folder(events[-1].checkpoint, few / "train", split="auto")
    assert auto.split == "all" and "fitted on those too" in auto.split_note
    assert len(auto.targets) == len(scan_dataset(few / "train").samples)
    # The Runs tab words the run's validation figure as the held-out head's, not the saved model's.
    history = json.loads((Path(events[-1].checkpoint).parents[1] / "history.json").read_text())
    assert "the saved model has seen the validation images" in validation_provenance(history)
    from workbench.cli.main import main

    capsys.readouterr()
    assert main(["runs"]) == 0
    listed = capsys.readouterr().out  # `workbench runs` marks the figure and says why
    assert f"{100 * probe.val_acc:.2f}%*" in listed and "* stage 1's head before it was refitted" in listed


def test_a_validation_figure_is_the_held_out_heads_only_where_the_refitted_head_is_kept():
    refit = {"epoch": 0, "best": True, HEAD_REFIT_ON_VAL: True}
    assert "refitted" in validation_provenance([refit, {"epoch": 1, "best": False}])
    # fine-tuning kept: its own figure, on images it never trained on
    assert validation_provenance([refit, {"epoch": 1, "best": True}]) == "best.pt, single view of each image, during training"
    assert "refitted" not in validation_provenance([{**refit, HEAD_REFIT_ON_VAL: False}])


# ---- honest figures -----------------------------------------------------------------------------------------


def test_wilson_interval_is_wide_for_few_images_and_narrow_for_many():
    low, high = wilson_interval(16, 20)
    assert 0.55 < low < 0.6 and 0.9 < high < 0.95
    low, high = wilson_interval(8000, 10000)
    assert high - low < 0.02
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0


def test_majority_warning_fires_when_a_run_cannot_beat_the_largest_class(tmp_path, write_image):
    """Two classes of identical grey images, one four times larger: nothing to learn but the prior."""
    for i in range(40):
        write_image(tmp_path / "data" / "common" / f"{i}.png", size=(28, 28), mode="L", color=128)
    for i in range(10):
        write_image(tmp_path / "data" / "rare" / f"{i}.png", size=(28, 28), mode="L", color=128)
    events = run(
        TrainConfig(data=str(tmp_path / "data"), model="course_cnn", epochs=1, val_split=0.4, augment=None)
    )
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert any("not clearly better than always answering 'common'" in w for w in warnings)
    assert any("a pretrained model" in w for w in warnings)  # the advice for a run trained from scratch


def test_majority_warning_stays_quiet_for_a_clearly_better_model():
    baseline = majority_baseline([0] * 30 + [1] * 70, ["a", "b"])
    assert baseline.class_name == "b" and baseline.rate == 0.7
    assert majority_warning(0.95, 100, baseline) is None
    assert "a pretrained model" in majority_warning(0.75, 100, baseline)
    # A model that started from pretrained weights is not told to start from some.
    assert "pretrained" not in majority_warning(0.75, 100, baseline, pretrained=True)


def test_a_single_penalty_is_fitted_without_cross_validation():
    torch.manual_seed(0)
    labels = torch.arange(60) % 3
    features = torch.randn(60, 8) + labels[:, None].float()
    fit = fit_linear_probe(features, labels, 3, l2_grid=(0.01,))
    assert fit.l2 == 0.01 and fit.folds == 0 and fit.cv_accuracy is None and fit.notes == []
    assert fit.train_accuracy > 0.9
