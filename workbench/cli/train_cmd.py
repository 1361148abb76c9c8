"""`workbench train` and `workbench lr-find`."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from workbench.cli.output import Output, format_pct

# CLI flag -> TrainConfig field, for options passed straight through (None = not given, keep the default).
_PASSTHROUGH = {
    "model": "model",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "optimizer": "optimizer",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "schedule": "schedule",
    "label_smoothing": "label_smoothing",
    "grad_clip": "grad_clip",
    "early_stopping": "early_stopping",
    "img_size": "img_size",
    "channels": "channels",
    "val_split": "val_split",
    "test_split": "test_split",
    "device": "device",
    "seed": "seed",
    "weights": "weights",
    "strategy": "strategy",
    "unfreeze": "unfreeze",
    "name": "run_name",
}


def register(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train or fine-tune a model on a folder of labeled images")
    train.add_argument(
        "data", nargs="?", help="folder with one sub-folder per class (or train/val/test sub-folders)"
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
    finder.add_argument("data")
    _add_training_options(finder)
    finder.add_argument("--steps", type=int, default=100, help="number of sweep steps (default 100)")
    finder.add_argument("--json", action="store_true")
    finder.set_defaults(handler=run_lr_find)


def _add_training_options(p: argparse.ArgumentParser) -> None:
    from workbench.engine.training.config import OPTIMIZERS, SCHEDULES, STRATEGIES

    p.add_argument("--model", help="zoo model name (see `workbench models`); default: chosen from the images")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate; default depends on the optimizer")
    p.add_argument("--optimizer", choices=OPTIMIZERS)
    p.add_argument("--momentum", type=float)
    p.add_argument("--no-nesterov", action="store_true", help="plain momentum instead of Nesterov's")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=SCHEDULES)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--grad-clip", type=float, metavar="NORM", help="clip the global gradient norm")
    p.add_argument(
        "--early-stopping", type=int, metavar="EPOCHS", help="stop after N epochs without val gain"
    )
    p.add_argument("--img-size", type=int, help="training image side in pixels; default: from the images")
    p.add_argument("--channels", type=int, choices=(1, 3))
    p.add_argument("--val-split", type=float, help="fraction held out for validation (default 0.1)")
    p.add_argument("--test-split", type=float, help="fraction held out for testing (default 0)")
    p.add_argument(
        "--augment",
        metavar="SPEC",
        help="'default', 'none', or e.g. 'flip,crop=4,brightness=0.2,contrast=0.2'",
    )
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--no-amp", action="store_true", help="no mixed precision (bf16/fp16 on GPUs and bf16-capable CPUs)"
    )
    p.add_argument(
        "--no-tta",
        action="store_true",
        help="report test accuracy on each image once, not averaged with its mirror",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument("--seed", type=int)
    p.add_argument("--deterministic", action="store_true")
    p.add_argument("--pretrained", action="store_true", help="start from ImageNet weights")
    p.add_argument(
        "--weights",
        metavar="FILE_OR_RUN",
        help="start from a weights file (torchvision state dict) or one of your runs",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="transfer-learning strategy (default: advised from the data size and --domain)",
    )
    p.add_argument("--unfreeze", type=int, metavar="N", help="fine-tune-top: number of top blocks to train")
    p.add_argument(
        "--domain",
        choices=("similar", "different"),
        help="are the images like ImageNet photos? guides the default transfer strategy",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="pretrained runs: stop after stage 1, the head fitted on cached features (seconds, no fine-tuning)",
    )
    p.add_argument(
        "--no-linear-probe",
        action="store_true",
        help="pretrained runs: fine-tune at once, without first fitting the head on frozen features",
    )
    p.add_argument(
        "--bn-stats",
        choices=("frozen", "train"),
        help="batch-norm running statistics while fine-tuning (default: frozen below 2,500 images)",
    )
    p.add_argument("--name", help="a name for the run")


def config_from_args(args: argparse.Namespace) -> Any:
    from workbench.engine.training.config import AugmentConfig, TrainConfig

    config = TrainConfig.from_toml(args.config) if getattr(args, "config", None) else TrainConfig()
    if args.data:
        config.data = args.data
    for flag, field in _PASSTHROUGH.items():
        value = getattr(args, flag, None)
        if value is not None:
            setattr(config, field, value)
    if args.augment is not None:
        config.augment = AugmentConfig.parse(args.augment)
    # Switches only ever turn something on or off relative to the file (or the defaults).
    config.nesterov = config.nesterov and not args.no_nesterov
    config.amp = config.amp and not args.no_amp
    config.tta = config.tta and not args.no_tta
    config.compile = config.compile or args.compile
    config.deterministic = config.deterministic or args.deterministic
    config.pretrained = config.pretrained or args.pretrained
    config.quick = config.quick or args.quick
    if args.no_linear_probe:
        config.linear_probe = False
    if args.bn_stats:
        config.freeze_bn_stats = args.bn_stats == "frozen"
    if args.domain:
        config.similar_to_imagenet = args.domain == "similar"
    return config.validate()


def run_train(args: argparse.Namespace) -> int:
    from workbench.engine.errors import ConfigError
    from workbench.engine.training.events import (
        CheckpointSaved,
        DataProgress,
        EpochEnded,
        Message,
        RunFinished,
        RunStarted,
        StepEnded,
    )
    from workbench.engine.training.trainer import Trainer

    out = Output(args.json)
    if not args.data and not args.resume and not args.config:
        raise ConfigError("give a dataset folder to train on, or --resume RUN to continue a run")
    config = config_from_args(args)
    trainer = Trainer(config, resume=args.resume) if args.resume else Trainer(config)
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
                case Message():
                    skipped += event.text.startswith("skipped ")
                    view.message(event)
                case RunStarted():
                    started = event
                    view.started(event)
                case StepEnded():
                    view.step(event)
                case EpochEnded():
                    view.epoch(event)
                case CheckpointSaved():
                    pass
                case RunFinished():
                    finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
        view.close()
    assert finished is not None
    if finished.status == "failed":
        out.say(f"error: {finished.reason}") if not args.json else out.warn(finished.reason)
    else:
        out.say(
            f"{finished.status}: {finished.epochs} epoch(s); best val accuracy {format_pct(finished.val_accuracy)}"
            + (
                f", test accuracy {format_pct(finished.test_accuracy)}"
                if finished.test_accuracy is not None
                else ""
            )
            + (f"\ncheckpoint: {finished.checkpoint}" if finished.checkpoint else "")
        )
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
    return {"finished": 0, "stopped": 0}.get(finished.status, 1)


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

    def message(self, event) -> None:
        self._close_bar()
        (self.out.warn if event.level == "warning" else self.out.say)(event.text)

    def started(self, event) -> None:
        self._close_bar()
        self.epochs = event.epochs
        if event.plan:
            self.out.say(f"plan: {event.plan}")
        for note in event.notes:
            self.out.say(f"  {note}")
        self.out.say(
            f"run {event.run_id}: {event.model} on {event.device}, {len(event.classes)} classes, "
            f"{event.train_images} train / {event.val_images} val / {event.test_images} test images"
        )

    def step(self, event) -> None:
        if not self.out.interactive:
            return
        bar = self._bar(event.steps_per_epoch, f"epoch {event.epoch}/{self.epochs}", unit="step")
        bar.n = event.step_in_epoch
        bar.set_postfix_str(
            f"loss {event.loss:.4f}  {event.images_per_s:,.0f} img/s  lr {event.lr:.2g}", refresh=True
        )

    def epoch(self, event) -> None:
        self._close_bar()
        if event.stage:  # stage 1, the head fitted on frozen features: its summary message follows
            self.out.say(
                f"stage 1 ({event.stage})  train acc {format_pct(event.train_acc)}"
                + ("" if event.val_acc is None else f"  val acc {format_pct(event.val_acc)}")
                + f"  {event.seconds:.1f}s"
            )
            return
        val = (
            ""
            if event.val_acc is None
            else f"  val loss {event.val_loss:.4f}  val acc {format_pct(event.val_acc)}"
        )
        self.out.say(
            f"epoch {event.epoch}/{self.epochs}  train loss {event.train_loss:.4f}  "
            f"train acc {format_pct(event.train_acc)}{val}  {event.images_per_s:,.0f} img/s  {event.seconds:.1f}s"
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
    from workbench.engine.training.lr_find import lr_find

    out = Output(args.json)
    result = lr_find(config_from_args(args), num_steps=args.steps)
    if not args.json:
        for lr, loss in zip(
            result.lrs[:: max(1, len(result.lrs) // 20)],
            result.losses[:: max(1, len(result.lrs) // 20)],
            strict=True,
        ):
            out.say(f"  lr {lr:9.2e}  loss {loss:.4f}")
    out.say(f"suggested learning rate: {result.suggestion:.2e}")
    out.result(result.to_dict())
    return 0
