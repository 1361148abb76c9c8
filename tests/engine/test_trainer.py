"""The trainer on real Fashion-MNIST PNG folders: accuracy, events, stop/resume, pause, failures."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training import event_text
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import (
    CheckpointSaved,
    EpochEnded,
    Message,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepEnded,
)
from workbench.engine.training.trainer import Trainer


def collect(trainer: Trainer, on_event=None) -> list:
    events = []
    for event in trainer.run():
        events.append(event)
        if on_event:
            on_event(event)
    return events


def of_type(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_course_cnn_reaches_85_percent_on_fashion_mnist(fmnist_folder_factory):
    """The issue's bar: 2 epochs on a 6,000-image train folder → ≥ 85% on the test split."""
    data = fmnist_folder_factory(600, 100)
    config = TrainConfig(data=str(data), model="course_cnn", epochs=2, batch_size=32, seed=0)
    events = collect(Trainer(config))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "finished", finished
    assert finished.test_accuracy >= 0.85, finished
    started = of_type(events, RunStarted)[0]
    assert started.train_images + started.val_images == 6000 and started.test_images == 1000
    epochs = of_type(events, EpochEnded)
    assert [e.epoch for e in epochs] == [1, 2]
    assert epochs[-1].train_loss < epochs[0].train_loss
    steps = [e.step for e in of_type(events, StepEnded)]
    assert steps == sorted(steps) and steps[-1] == 2 * started.steps_per_epoch
    record = RunRegistry().get(finished.run_id)
    assert record.status == "finished" and len(record.metrics) == 2
    assert record.test_acc == pytest.approx(finished.test_accuracy)
    payload = ckpt.load_checkpoint(finished.checkpoint)
    assert payload["classes"] == started.classes and payload["preprocessing"]["size"] == 28


def test_stop_then_resume_continues_from_saved_epoch(fmnist_folder):
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=3, batch_size=32, seed=1)
    trainer = Trainer(config)
    first = collect(trainer, lambda e: isinstance(e, EpochEnded) and trainer.stop())
    stopped = first[-1]
    assert stopped.status == "stopped" and stopped.epochs == 1
    saved = of_type(first, CheckpointSaved)[-1]
    assert ckpt.load_checkpoint(saved.path)["epoch"] == 1
    # Epoch 1's own checkpoint, then the stop's, which the log does not call "epoch 1" a second time.
    texts = [event_text.line(e) for e in of_type(first, CheckpointSaved)]
    assert texts[0].startswith("checkpoint saved (epoch 1") and saved.stopped_in_epoch == 2
    assert texts[-1].startswith("checkpoint saved where epoch 2 was stopped (resuming repeats that epoch)")
    assert RunRegistry().get(stopped.run_id).status == "stopped"

    second = collect(Trainer(resume=stopped.run_id))
    assert of_type(second, RunStarted)[0].start_epoch == 1
    assert [e.epoch for e in of_type(second, EpochEnded)] == [2, 3]
    assert second[-1].status == "finished" and second[-1].run_id == stopped.run_id
    record = RunRegistry().get(stopped.run_id)
    assert [m["epoch"] for m in record.metrics] == [1, 2, 3]


def test_pause_blocks_until_resumed(fmnist_folder):
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32)
    trainer = Trainer(config)
    resumed_at: list[float] = []
    arrived: list[tuple[float, object]] = []
    delay = 0.5

    def on_event(event):
        arrived.append((time.monotonic(), event))
        if isinstance(event, StepEnded) and event.step == 1 and not resumed_at:
            trainer.pause()
            timer = threading.Timer(delay, lambda: (resumed_at.append(time.monotonic()), trainer.resume()))
            timer.start()

    events = collect(trainer, on_event)
    assert events[-1].status == "finished"
    paused = next(i for i, e in enumerate(events) if isinstance(e, Paused))
    resumed = next(i for i, e in enumerate(events) if isinstance(e, Resumed))
    assert paused < resumed
    assert not of_type(events[paused:resumed], StepEnded), "no step may run while paused"
    # the first step after the pause came only once resume() had been called
    first_step_after = next(t for t, e in arrived[paused:] if isinstance(e, StepEnded))
    assert resumed_at and first_step_after >= resumed_at[0]
    assert of_type(events[resumed:], StepEnded), "training went on after resume"


def test_bad_folder_fails_with_a_message_not_an_exception(tmp_path):
    events = collect(Trainer(TrainConfig(data=str(tmp_path / "nope"))))
    assert len(events) == 1 and events[0].status == "failed"
    assert "nope" in events[0].reason


def test_start_from_earlier_run_replaces_head(fmnist_folder, tmp_path):
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32)
    base = collect(Trainer(config))[-1]
    # A new class set: only three of the classes, copied to a new folder.
    import shutil

    subset = tmp_path / "three"
    classes = sorted(p.name for p in (fmnist_folder / "train").iterdir())[:3]
    for split in ("train", "test"):
        for name in classes:
            shutil.copytree(fmnist_folder / split / name, subset / split / name)
    events = collect(
        Trainer(
            TrainConfig(data=str(subset), model="course_cnn", epochs=1, batch_size=16, weights=base.run_id)
        )
    )
    assert events[-1].status == "finished", events[-1]
    assert any("new head for 3 classes" in e.text for e in of_type(events, Message))
    assert ckpt.load_checkpoint(events[-1].checkpoint)["classes"] == classes


def test_same_seed_same_losses(fmnist_folder):
    def losses():
        config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=64, seed=7)
        return [e.loss for e in of_type(collect(Trainer(config)), StepEnded)]

    first = losses()
    assert len(first) >= 2 and all(loss > 0 for loss in first)
    assert first == losses()


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "step", "plateau", "constant"])
def test_every_schedule_survives_a_one_step_epoch(tmp_path, write_image, schedule):
    """A handful of images and a big batch: one step per epoch must not break any schedule."""
    for label, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        for i in range(6):
            write_image(tmp_path / "data" / label / f"{i}.png", (16, 16), "RGB", color)
    config = TrainConfig(
        data=str(tmp_path / "data"),
        model="course_cnn",
        epochs=2,
        batch_size=128,
        schedule=schedule,
        val_split=0.34,
    )
    events = collect(Trainer(config))
    assert events[-1].status == "finished", events[-1]
    assert len(of_type(events, EpochEnded)) == 2


def test_out_of_memory_halves_the_micro_batch_and_training_goes_on(fmnist_folder, monkeypatch):
    """A model that "runs out of memory" on more than 8 images at once (as CUDA would) still trains."""
    import workbench.engine.training.session_setup as setup_module

    real_build = setup_module.build_model

    def build_fragile(*args, **kwargs):
        model = real_build(*args, **kwargs)
        forward = model.forward

        def forward_or_oom(x):
            if model.training and len(x) > 8:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return forward(x)

        model.forward = forward_or_oom
        return model

    monkeypatch.setattr(setup_module, "build_model", build_fragile)
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32)
    events = collect(Trainer(config))
    assert events[-1].status == "finished", events[-1]
    warnings = [e.text for e in of_type(events, Message) if e.level == "warning"]
    assert any("32" in w and "16" in w for w in warnings) and any("8" in w for w in warnings), warnings
    epoch = of_type(events, EpochEnded)[0]
    assert epoch.train_acc > 0.2  # it really learned (twice chance), in slices of 8


def test_resume_of_a_run_killed_after_its_last_checkpoint_just_finishes_it(fmnist_folder):
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=32)
    done = collect(Trainer(config))[-1]
    registry = RunRegistry()
    registry._update(done.run_id, status="interrupted")  # as if killed between the checkpoint and `finished`
    events = collect(Trainer(resume=done.run_id))
    assert events[-1].status == "finished" and events[-1].epochs == 1
    assert not of_type(events, EpochEnded)  # nothing retrained
    assert registry.get(done.run_id).status == "finished"
    finished_again = collect(Trainer(resume=done.run_id))[-1]
    assert finished_again.status == "failed" and "already finished its 1 epoch" in finished_again.reason


def test_cpu_training_runs_nhwc_and_learns_the_same(fmnist_folder):
    """Channels-last is the fast layout for oneDNN's CPU convolutions too; the switch must not change what
    the model learns (same seed: same losses before and after the first update, up to kernel rounding)."""

    def train(channels_last: bool) -> tuple[list[float], torch.Tensor]:
        config = TrainConfig(
            data=str(fmnist_folder),
            model="compact_vgg",
            epochs=1,
            batch_size=64,
            seed=3,
            channels_last=channels_last,
            device="cpu",
        )
        events = collect(Trainer(config))
        weights = ckpt.load_checkpoint(events[-1].checkpoint)["model_state"]
        return [e.loss for e in of_type(events, StepEnded)][:2], weights["features.0.3.weight"]

    nhwc_losses, nhwc_conv = train(True)
    nchw_losses, nchw_conv = train(False)
    assert nhwc_conv.is_contiguous(memory_format=torch.channels_last)
    assert not nchw_conv.is_contiguous(memory_format=torch.channels_last)
    assert nhwc_losses == pytest.approx(nchw_losses, rel=0.02)
