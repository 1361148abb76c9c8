import torch
from torch import nn

from workbench.engine.evaluation.evaluate import evaluate
from workbench.engine.evaluation.predict import Predictor
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.events import RunFinished, RunStarted
from workbench.engine.training.trainer import Trainer


def test_val_split_of_a_run_is_the_runs_own_random_split(fmnist_folder):
    """A class-folder dataset has no val/ folder: `--split val` must still find the run's held-out images."""
    data = fmnist_folder / "train"  # class folders only: val is a seeded random 20%
    events = list(Trainer(TrainConfig(data=str(data), model="course_cnn", epochs=1, val_split=0.2)).run())
    started = next(e for e in events if isinstance(e, RunStarted))
    finished = next(e for e in events if isinstance(e, RunFinished))
    # single view, as the trainer's per-epoch validation judges it (eval's default flip-averages)
    report, predictions = evaluate(finished.run_id, data, split="val", tta=False)
    assert report.num_images == started.val_images == 120
    assert abs(report.accuracy - finished.val_accuracy) <= 0.02  # fp32 here vs the trainer's autocast
    train_report, _ = evaluate(finished.run_id, data, split="train")
    assert train_report.num_images == started.train_images
    assert not set(predictions.paths) & set(evaluate(finished.run_id, data, split="train")[1].paths)
    # "auto" on the run's own folder without a test split judges the held-out validation images, not all
    auto_report, auto_predictions = evaluate(finished.run_id, data, tta=False)
    assert auto_report.extra["split"] == "val" and auto_report.extra["split_note"] == ""
    assert sorted(auto_predictions.paths) == sorted(predictions.paths)


def test_auto_split_of_a_run_that_kept_nothing_aside_says_training_images_are_included(fmnist_folder):
    """Every image is all there is to judge then; the figure must not pass for accuracy on new images."""
    data = fmnist_folder / "train"
    events = list(Trainer(TrainConfig(data=str(data), model="course_cnn", epochs=1, val_split=0.0)).run())
    finished = next(e for e in events if isinstance(e, RunFinished))
    report, _ = evaluate(finished.run_id, data, tta=False)
    assert report.extra["split"] == "all" and report.num_images == 600
    assert "training images included" in report.extra["split_note"]


def test_a_checkpoint_is_judged_in_the_layout_and_with_the_figure_of_its_run(fmnist_folder):
    """On a CPU a run trains in NHWC (channels_last, the default), and `eval`/`predict` judge its checkpoint
    in NHWC too: twice as fast as NCHW for EfficientNet at 224 px, and rounded as the run's own test figure
    was, which they must reproduce exactly. A run that turned NHWC off is judged in NCHW."""
    data = fmnist_folder / "train"
    for channels_last in (True, False):
        config = TrainConfig(
            data=str(data), model="course_cnn", epochs=1, test_split=0.2, channels_last=channels_last
        )
        finished = next(e for e in Trainer(config).run() if isinstance(e, RunFinished))
        network = Predictor(finished.checkpoint).network
        convs = [m for m in network.modules() if isinstance(m, nn.Conv2d) and m.in_channels > 1]
        assert convs and all(
            c.weight.is_contiguous(memory_format=torch.channels_last) == channels_last for c in convs
        )
        report, _ = evaluate(
            finished.run_id, data
        )  # "auto": the run's own test split, flip-averaged as the run
        assert report.extra["split"] == "test" and report.accuracy == finished.test_accuracy
