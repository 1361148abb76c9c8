"""`workbench train` and `workbench lr-find`."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from workbench.cli import arguments
from workbench.cli.output import Output, cli_message
from workbench.engine.training.policy import FEW_IMAGES


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train or fine-tune a model on a folder of labeled images")
    train.add_argument(
        "data",
        nargs="*",
        metavar="FOLDER",
        help="folder with one sub-folder per class (or train/val/test sub-folders), or several folders, one "
        "class each",
    )
    _add_training_options(train)
    train.add_argument(
        "--config", metavar="FILE", help="read settings from a TOML file (options given here win)"
    )
    train.add_argument(
        "--resume", metavar="RUN", help="continue an interrupted or stopped run (id, folder or 'last')"
    )
    train.add_argument(
        "--json", action="store_true", help="print one JSON object with the result as the last line"
    )
    train.set_defaults(handler=run_train)

    finder = commands.add_parser("lr-find", help="sweep the learning rate and suggest a good one")
    finder.add_argument("data", nargs="+", metavar="FOLDER")
    _add_training_options(finder)
    finder.add_argument("--steps", type=arguments.whole_number(5, 100_000), default=100, help="number of sweep steps (default 100)")
    finder.add_argument("--json", action="store_true")
    finder.set_defaults(handler=run_lr_find)


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig option, generated from its declaration (help, type, range, choices)."""
    from workbench.engine.training.config import options

    for name, spec in options().items():
        if spec.cli in ("on", "off"):
            shown = spec.help if spec.cli == "on" else f"turn off: {spec.help}"
            p.add_argument(spec.flag_name(name), dest=f"switch_{name}", action="store_true", help=shown)
        elif spec.cli == "value":
            p.add_argument(spec.flag_name(name), dest=name, metavar=spec.metavar, help=spec.help,
                           **arguments.from_rule(spec.rule))
    # Options whose flag reads better than the field it sets.
    p.add_argument("--augment", metavar="SPEC",
                   help="'default', 'none', or e.g. 'flip,crop=4,zoom=0.15,brightness=0.2,contrast=0.2'")
    p.add_argument("--domain", choices=("similar", "different"),
                   help="are the images like ImageNet photos? guides the default transfer strategy")
    p.add_argument("--no-linear-probe", action="store_true",
                   help="pretrained runs: fine-tune at once, without first fitting the head on frozen features")
    p.add_argument("--bn-stats", choices=("frozen", "train"),
                   help=f"batch-norm running statistics while fine-tuning (default: frozen below {FEW_IMAGES:,} images)")


def config_from_args(args: argparse.Namespace) -> Any:
    """The config file (or the defaults), then every option given on the command line over it."""
    from workbench.engine.training.config import AugmentConfig, TrainConfig, options

    config = TrainConfig.from_toml(args.config) if getattr(args, "config", None) else TrainConfig()
    if args.data:
        config.data = args.data
    for name, spec in options().items():
        if spec.cli == "value" and getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
        elif spec.cli in ("on", "off") and getattr(args, f"switch_{name}"):
            setattr(config, name, spec.cli == "on")  # a switch only ever moves away from the default
    if args.augment is not None:
        config.augment = AugmentConfig.parse(args.augment)
    if args.no_linear_probe:
        config.linear_probe = False
    if args.bn_stats:
        config.freeze_bn_stats = args.bn_stats == "frozen"
    if args.domain:
        config.similar_to_imagenet = args.domain == "similar"
    return config.validate()


def run_train(args: argparse.Namespace) -> int:
    from workbench.engine.errors import ConfigError
    from workbench.engine.training import event_text, run_actions
    from workbench.engine.training.events import (
        DataProgress,
        FileSkipped,
        RunFinished,
        RunStarted,
        RunStatus,
        StepEnded,
    )
    out = Output(args.json)
    if not args.data and not args.resume and not args.config:
        raise ConfigError("give a dataset folder to train on, or --resume RUN to continue a run")
    config = config_from_args(args)
    # `--resume RUN`: a stopped run resumes; with `--epochs N` a finished one continues (the same run)
    action = (
        run_actions.continue_or_resume(args.resume, epochs=config.epochs)
        if args.resume
        else run_actions.new_run(config)
    )
    trainer = action.trainer()
    view = _ProgressView(out)
    started: RunStarted | None = None
    finished: RunFinished | None = None
    skipped = 0
    previous = signal.signal(
        signal.SIGINT, lambda *_: (trainer.stop(), out.say("\nstopping after this step…"))
    )
    try:
        for event in trainer.run():
            match event:
                case DataProgress():
                    view.data_progress(event)
                case RunStarted():
                    started = event
                    view.started(event)
                case StepEnded():
                    view.step(event)
                case RunFinished():
                    finished = event
                case _:
                    skipped += isinstance(event, FileSkipped)
                    view.line(event)
    finally:
        signal.signal(signal.SIGINT, previous)
        view.close()
    assert finished is not None
    if finished.status == RunStatus.FAILED:
        out.error(finished.reason)
    else:
        out.say(event_text.run_summary(finished) + (f"\ncheckpoint: {finished.checkpoint}" if finished.checkpoint else ""))
    out.result(
        {
            "run_id": finished.run_id or (started.run_id if started else None),
            "run_dir": started.run_dir if started else None,
            "checkpoint": finished.checkpoint,
            "status": finished.status,
            "reason": finished.reason,
            "model": started.model if started else None,
            "epochs": finished.epochs,
            "classes": started.classes if started else [],
            "val_accuracy": finished.val_accuracy,
            "test_accuracy": finished.test_accuracy,
            "skipped_files": skipped,
        }
    )
    return 0 if finished.status in (RunStatus.FINISHED, RunStatus.STOPPED) else 1


class _ProgressView:
    """A tqdm bar per epoch on a terminal; otherwise one plain line per epoch (logs, CI, pipes)."""

    def __init__(self, out: Output):
        self.out = out
        self.bar = None
        self.epochs = 0

    def data_progress(self, event) -> None:
        if self.out.interactive and event.total:
            self._bar(
                event.total, f"{event.stage}", unit="img" if event.stage != "download" else "B"
            ).n = event.done
            self.bar.refresh()

    def line(self, event) -> None:
        """Messages, skipped files, pause/resume, epochs, checkpoints: the engine's wording for each."""
        from workbench.engine.training import event_text
        from workbench.engine.training.events import CheckpointSaved

        text = event_text.line(event, epochs=self.epochs)
        if text is None or isinstance(event, CheckpointSaved):
            return

        self._close_bar()
        (self.out.warn if event_text.is_warning(event) else self.out.say)(cli_message(text))

    def started(self, event) -> None:
        from workbench.engine.training import event_text

        self._close_bar()
        self.epochs = event.epochs
        if event.plan:
            self.out.say(f"plan: {event.plan}")
        for note in event.notes:
            self.out.say(f"  {note}")
        self.out.say(event_text.run_started_line(event))

    def step(self, event) -> None:
        if not self.out.interactive:
            return
        bar = self._bar(event.steps_per_epoch, f"epoch {event.epoch}/{self.epochs}", unit="step")
        bar.n = event.step_in_epoch
        bar.set_postfix_str(
            f"loss {event.loss:.4f}  {event.images_per_s:,.0f} img/s  lr {event.lr:.2g}", refresh=True
        )

    def _bar(self, total: int, desc: str, unit: str):
        from tqdm import tqdm

        if self.bar is None or self.bar.desc != desc or self.bar.total != total:
            self._close_bar()
            self.bar = tqdm(
                total=total, desc=desc, unit=unit, file=self.out.human, leave=False, dynamic_ncols=True
            )
        return self.bar

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self._close_bar()


def run_lr_find(args: argparse.Namespace) -> int:
    import threading

    from workbench.engine.training.events import DataProgress, StepEnded
    from workbench.engine.training.lr_find import sweep

    out = Output(args.json)
    view = _ProgressView(out)
    stop = threading.Event()
    events = sweep(config_from_args(args), num_steps=args.steps, should_stop=stop.is_set)
    # Ctrl-C ends the sweep after its current step: the curve so far is printed, but it suggests no rate.
    previous = signal.signal(signal.SIGINT, lambda *_: (stop.set(), out.say("\nstopping after this step…")))
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as done:
                result = done.value
                break
            match event:
                case DataProgress():
                    view.data_progress(event)
                case StepEnded():
                    _sweep_step(view, event)
                case _:
                    view.line(event)
    finally:
        signal.signal(signal.SIGINT, previous)
        view.close()
    if not args.json:
        every = max(1, len(result.lrs) // 20)
        for lr, loss in zip(result.lrs[::every], result.losses[::every], strict=True):
            out.say(f"  lr {lr:9.2e}  loss {loss:.4f}")
    if result.stopped:
        out.say(f"sweep stopped after {len(result.lrs)} of {args.steps} steps: no learning rate suggested "
                "(a partial sweep has not reached its minimum); run it to the end for a suggestion")  # fmt: skip
    else:
        out.say(f"suggested learning rate: {result.suggestion:.2e}")
    out.result(result.to_dict())
    return 0


def _sweep_step(view: _ProgressView, event: Any) -> None:
    """A bar over the sweep's steps on a terminal, with the rate and smoothed loss it has reached."""
    if not view.out.interactive:
        return
    bar = view._bar(event.steps_per_epoch, "lr sweep", unit="step")
    bar.n = event.step_in_epoch
    bar.set_postfix_str(f"lr {event.lr:.2g}  loss {event.loss:.4f}", refresh=True)
