"""The words for the engine's events, said once for both clients: the CLI prints these lines, the app logs
them. Pure functions, no Qt, no printing.
"""

from __future__ import annotations

from pathlib import Path

from workbench.engine.errors import Mention, Text, concat, counted
from workbench.engine.evaluation.figures import BEST_FILE
from workbench.engine.names import display_name
from workbench.engine.training.events import (
    CheckpointSaved,
    DataProgress,
    EpochEnded,
    Event,
    FileSkipped,
    Message,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
)


def percent(value: float | None, digits: int = 1) -> str:
    """0.8123 → "81.2%"; None (not measured) → "n/a"."""
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def duration(seconds: float) -> str:
    """75 → "1:15"; 3725 → "1:02:05"."""
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def line(event: Event, *, epochs: int = 0) -> str | None:
    """The one line a person reads for `event`; None for events shown otherwise (steps: a progress bar).
    `epochs`: the run's total, to say "epoch 3/10"."""
    match event:
        case FileSkipped():
            return f"skipped {display_name(event.path)}: {event.reason}"
        case Paused():
            return "paused"
        case Resumed():
            return "resumed"
        case Message():
            return display_name(event.text)
        case EpochEnded():
            return epoch_line(event, epochs)
        case CheckpointSaved():
            return checkpoint_line(event)
        case RunStarted():
            return run_started_line(event)
        case RunFinished():
            return run_summary(event)
        case DataProgress():
            return data_progress_text(event)
    return None


def is_warning(event: Event) -> bool:
    return isinstance(event, FileSkipped) or (isinstance(event, Message) and event.level == "warning")


def epoch_line(event: EpochEnded, epochs: int = 0) -> str:
    if event.stage:  # stage 1: the head fitted on frozen features (epoch 0)
        cv = (
            f" · cross-validated {percent(event.cv_accuracy)} ± {percent(event.cv_se or 0)}"
            if event.cv_accuracy is not None
            else ""
        )
        val = "" if event.val_acc is None else f" · val acc {percent(event.val_acc)} of {event.val_images} images"
        return (
            f"stage 1, instant model ({event.stage}): train acc {percent(event.train_acc)}{val}{cv} · "
            f"{event.seconds:.1f} s"
        )
    val = "" if event.val_loss is None else f" · val loss {event.val_loss:.4f} acc {percent(event.val_acc)}"
    speed = f" · {event.images_per_s:,.0f} img/s" if event.images_per_s else ""
    return (
        f"epoch {event.epoch}{f'/{epochs}' if epochs else ''}: train loss {event.train_loss:.4f} "
        f"acc {percent(event.train_acc)}{val}{speed} · {event.seconds:.1f} s"
    )


def checkpoint_line(event: CheckpointSaved) -> str:
    if event.stopped_in_epoch is not None:  # not "epoch N" again: epoch N's own checkpoint came before
        return (
            f"checkpoint saved where epoch {event.stopped_in_epoch} was stopped (resuming repeats that "
            f"epoch): {event.path}"
        )
    if event.best:  # best.pt, a copy of last.pt then; but last.pt may be overwritten before the user looks
        return f"checkpoint saved (epoch {event.epoch}): {Path(event.path).with_name(BEST_FILE)}, the model the run keeps"
    return f"checkpoint saved (epoch {event.epoch}): {event.path}"


def run_started_line(event: RunStarted) -> str:
    return (
        f"run {event.run_id}: {event.model} on {event.device}; {len(event.classes)} classes; "
        f"{event.train_images:,} train / {event.val_images:,} val / {event.test_images:,} test images; "
        f"{counted(event.epochs, 'epoch')} of {counted(event.steps_per_epoch, 'step')}"
    )


def run_summary(event: RunFinished) -> str:
    """Status, epochs, accuracies, and why it ended."""
    summary = f"{event.status}"
    if event.epochs:
        summary += f" after {event.epochs} epoch{'s' if event.epochs != 1 else ''}"
    if event.val_accuracy is not None:
        summary += f" · best val accuracy {percent(event.val_accuracy)}"
    if event.test_accuracy is not None:
        summary += f" · test accuracy {percent(event.test_accuracy)}"
    if event.reason:  # the reason may name options (a Text): kept, for each client to say them its way
        return concat(summary, " — ", event.reason)
    return summary


def mirrored_test_message(test_acc: float) -> Message:
    """The run's test accuracy was judged on each image and its mirror: said with the option that turns it
    off, which each client names its own way (CLI `--no-tta`, the app its "test on image + mirror" box)."""
    return Message(
        Text(
            f"test accuracy {percent(test_acc, 2)}: mirror-averaged test (TTA), each image judged with its mirror "
            "image and the two averaged (the model trained with flips); ",
            Mention("tta", False),
            " turns it off",
        )
    )


def data_progress_text(event: DataProgress) -> str:
    return f"{event.stage}: {event.done:,} / {event.total:,} images" if event.total else f"{event.stage}…"
