"""The LR finder: the suggestion rule, and the sweep as a short run of the trainer's own setup (same network,
weights, batches and normalization as training with the same settings), which records nothing."""

from __future__ import annotations

import copy
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from workbench.engine import paths
from workbench.engine.data import IMAGENET_MEAN, IMAGENET_STD
from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training import lr_find as lr_find_module
from workbench.engine.training import trainer as trainer_module
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.defaults import PRETRAINED_SIZES
from workbench.engine.training.events import RunFinished, StepEnded
from workbench.engine.training.lr_find import lr_find, suggest_lr, sweep
from workbench.engine.training.trainer import Trainer

TINY = {"model": "course_cnn", "batch_size": 16}


def test_suggestion_is_a_decade_below_the_minimum_not_the_noisy_start():
    lrs = [1e-6 * 10 ** (i / 10) for i in range(60)]  # 1e-6 … ~1
    losses = [2.3 + (0.05 if i % 2 else -0.05) for i in range(10)]  # noisy plateau at the start
    losses += [2.3 - 0.04 * i for i in range(40)] + [0.7 + 0.5 * i for i in range(10)]  # falls, then blows up
    suggestion = suggest_lr(lrs, losses)
    lowest = lrs[losses.index(min(losses))]
    assert math.isclose(suggestion, lowest / 10)
    assert suggestion > lrs[10]


def test_lr_find_on_real_images(fmnist_folder):
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", batch_size=32)
    result = lr_find(config, num_steps=60)
    assert 10 <= len(result.lrs) <= 60 and len(result.lrs) == len(result.losses)
    assert result.lrs == sorted(result.lrs)  # an exponential sweep upwards
    assert result.lrs[0] < result.suggestion < result.lrs[-1]
    assert all(math.isfinite(loss) for loss in result.losses)
    assert not result.stopped


def test_a_stopped_sweep_keeps_its_curve_but_suggests_no_rate(fmnist_folder):
    """Stopped after 11 of 100 steps, the lowest loss so far is no minimum: the rule would give the sweep's
    first rate (1e-06), which the app used to put in the learning-rate field."""
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", batch_size=32)
    steps = []
    events = sweep(config, num_steps=100, should_stop=lambda: len(steps) >= 11)
    while True:
        try:
            event = next(events)
        except StopIteration as end:
            result = end.value
            break
        if isinstance(event, StepEnded):
            steps.append(event)
    assert result.stopped and result.suggestion is None
    assert len(result.lrs) == len(result.losses) == 11
    assert result.to_dict()["suggestion"] is None and result.to_dict()["stopped"] is True


# ---- one setup path with the trainer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_classes(fmnist_folder_factory) -> Path:
    return fmnist_folder_factory(6, 2)


@pytest.fixture(scope="module")
def six_classes(ten_classes, tmp_path_factory) -> Path:
    """Six of the ten classes: a new class set for weights from a ten-class run (issue #14's 6 classes)."""
    folder = tmp_path_factory.mktemp("six-classes")
    for name in sorted(p.name for p in (ten_classes / "train").iterdir())[:6]:
        for split in ("train", "test"):
            shutil.copytree(ten_classes / split / name, folder / split / name)
    return folder


@pytest.fixture
def earlier_run(ten_classes) -> RunFinished:
    """A finished one-epoch course_cnn run on the ten classes (in this test's own WORKBENCH_HOME)."""
    finished = list(Trainer(TrainConfig(data=str(ten_classes), epochs=1, **TINY)).run())[-1]
    assert finished.status == "finished", finished
    return finished


def sweep_events(config: TrainConfig, num_steps: int = 8) -> tuple[list, lr_find_module.LRFindResult]:
    events = sweep(config, num_steps=num_steps)
    seen = []
    while True:
        try:
            seen.append(next(events))
        except StopIteration as done:
            return seen, done.value


def assert_sane_start(losses: list[float], num_classes: int) -> None:
    """A fresh head guesses about uniformly: cross-entropy ≈ ln(classes), with or without label smoothing.
    The smoothed curve used to start at ten times that (an average started at the first loss, then debiased)."""
    assert all(math.isfinite(loss) for loss in losses)
    assert abs(losses[0] - math.log(num_classes)) < 0.5, losses[:3]


def test_first_smoothed_loss_of_a_fresh_head_is_near_ln_of_the_class_count(six_classes):
    result = lr_find(TrainConfig(data=str(six_classes), **TINY), num_steps=8)
    assert len(result.lrs) >= 5
    assert_sane_start(result.losses, 6)
    assert max(result.losses[:5]) < 2 * math.log(6)  # no spike from the smoothing at the start either


def test_lr_find_starts_from_an_earlier_run_by_id_with_a_new_head(six_classes, earlier_run):
    events, result = sweep_events(TrainConfig(data=str(six_classes), weights=earlier_run.run_id, **TINY))
    assert len(result.lrs) >= 5
    assert_sane_start(result.losses, 6)
    assert any("new head for 6 classes" in getattr(e, "text", "") for e in events)
    assert [e.lr for e in events if isinstance(e, StepEnded)] == result.lrs


def test_lr_find_starts_from_an_earlier_runs_checkpoint_file_as_from_its_id(ten_classes, earlier_run):
    by_file = lr_find(TrainConfig(data=str(ten_classes), weights=earlier_run.checkpoint, **TINY), num_steps=6)
    by_id = lr_find(TrainConfig(data=str(ten_classes), weights=earlier_run.run_id, **TINY), num_steps=6)
    assert len(by_file.lrs) >= 4 and all(math.isfinite(loss) for loss in by_file.losses)
    assert by_file.losses == pytest.approx(by_id.losses, rel=1e-4)  # same weights, head, normalization


def test_lr_find_creates_no_run_registry_row_or_checkpoint(six_classes, earlier_run):
    def on_disk() -> tuple[list[str], list[str], list[str]]:
        runs = [r.run_id for r in RunRegistry().list_runs()]
        folders = sorted(p.name for p in paths.runs_dir().iterdir())
        files = sorted(str(p) for p in Path(earlier_run.checkpoint).parents[1].rglob("*"))
        return runs, folders, files

    before = on_disk()
    lr_find(TrainConfig(data=str(six_classes), weights=earlier_run.run_id, **TINY), num_steps=5)
    lr_find(TrainConfig(data=str(six_classes), **TINY), num_steps=5)
    assert on_disk() == before


# ---- lr_find and the Trainer cannot drift apart ---------------------------------------------------------


class FirstStepSpy:
    """Wraps `train_step` in a module and records what the first step trains: the network (its trainable
    parameters, weights, memory layout, module modes) and the batch (size, normalization, augmentation)."""

    def __init__(self, monkeypatch, module, after: Callable[[], None] | None = None):
        self.seen: dict = {}
        real = module.train_step

        def spy(model, x, y, optimizer, scaler, **kwargs):
            if not self.seen:
                self.seen = {
                    "model": type(model).__name__,
                    "trainable": sorted(n for n, p in model.named_parameters() if p.requires_grad),
                    "training": {n: m.training for n, m in model.named_modules()},
                    "batch_norm_training": [m.training for m in model.modules() if isinstance(m, _BatchNorm)],
                    "state": copy.deepcopy(model.state_dict()),
                    "strides": [p.stride() for p in model.parameters()],
                    "x": x.detach().clone(),
                    "y": y.detach().clone(),
                    "step_options": kwargs,
                }
                if after is not None:
                    after()
            return real(model, x, y, optimizer, scaler, **kwargs)

        monkeypatch.setattr(module, "train_step", spy)


def first_steps(monkeypatch, config: TrainConfig) -> tuple[dict, dict]:
    """What the Trainer's first step and lr_find's first step see, for the same config."""
    trainer = Trainer(copy.deepcopy(config))
    trained = FirstStepSpy(monkeypatch, trainer_module, after=trainer.stop)
    finished = list(trainer.run())[-1]
    assert finished.status == "stopped", finished
    swept = FirstStepSpy(monkeypatch, lr_find_module)
    lr_find(copy.deepcopy(config), num_steps=2)
    assert trained.seen and swept.seen
    return trained.seen, swept.seen


def assert_same_first_step(trained: dict, swept: dict) -> None:
    for key in ("model", "trainable", "training", "strides", "step_options"):
        assert trained[key] == swept[key], key
    assert trained["state"].keys() == swept["state"].keys()
    for name, tensor in trained["state"].items():
        assert torch.equal(tensor, swept["state"][name]), name
    assert torch.equal(trained["y"], swept["y"])
    assert torch.equal(trained["x"], swept["x"])  # same size, normalization, layout, shuffle, augmentation


def test_lr_find_and_the_trainer_take_the_same_first_step_from_scratch(monkeypatch, six_classes):
    trained, swept = first_steps(monkeypatch, TrainConfig(data=str(six_classes), **TINY))
    assert_same_first_step(trained, swept)


def test_lr_find_and_the_trainer_take_the_same_first_step_from_an_earlier_run(
    monkeypatch, six_classes, earlier_run
):
    config = TrainConfig(data=str(six_classes), weights=earlier_run.run_id, **TINY)
    trained, swept = first_steps(monkeypatch, config)
    assert_same_first_step(trained, swept)
    earlier = ckpt.load_checkpoint(earlier_run.checkpoint)["model_state"]
    body = [name for name in earlier if name.startswith("features")]
    assert body and all(torch.equal(earlier[name], swept["state"][name]) for name in body)


def test_lr_find_and_the_trainer_take_the_same_first_step_from_imagenet_weights(monkeypatch, six_classes):
    """Pretrained: ImageNet statistics, the input-size rule, batch-norm statistics kept for few images."""
    config = TrainConfig(
        data=str(six_classes), model="efficientnet_lite0", pretrained=True, linear_probe=False, batch_size=16
    )
    trained, swept = first_steps(monkeypatch, config)
    assert_same_first_step(trained, swept)
    assert swept["x"].shape[-1] == PRETRAINED_SIZES[0]  # so few images: the largest side fits the time budget
    assert swept["batch_norm_training"] and not any(swept["batch_norm_training"])
    black = -(sum(IMAGENET_MEAN) / 3) / (sum(IMAGENET_STD) / 3)  # gray images: the mean ImageNet channel
    assert math.isclose(swept["x"].min().item(), black, rel_tol=1e-3)
