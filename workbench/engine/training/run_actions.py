"""What the user can do with an existing run, said once for every client (CLI, desktop app).

- **continue**: the *same* run trains further: more epochs, its whole history kept (`train --resume RUN
  --epochs N`; the app's "Continue training" on a finished run). `epochs` is the run's new total.
- **resume**: an interrupted or stopped run goes on from its last checkpoint to the epochs it was given
  (`train --resume RUN`; the app's "Continue training" on a stopped run).
- **train again with changes**: a *new* run, with the settings the user gives, starting from the old
  run's weights (`train DATA --weights RUN`).
- **clone**: a *new* run with the same settings as the old one: model, starting weights, image size and
  hyperparameters (the app's "Clone settings"; the CLI's `train --config` of a saved configuration).

Each action gives a `RunAction`: the TrainConfig and the run to resume (if any) that a `Trainer` is built
from, so both clients build exactly the same trainer for the same action. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.engine.errors import WorkbenchError
from workbench.engine.training.config import AugmentConfig, TrainConfig
from workbench.engine.training.going_on import cannot_go_on, goes_on_to_stage_2

if TYPE_CHECKING:
    from workbench.engine.runs import RunRecord, RunRegistry
    from workbench.engine.training.trainer import Trainer

CONTINUE, RESUME, TRAIN_AGAIN, CLONE, NEW = "continue", "resume", "train again", "clone", "new"
RESUMABLE = ("stopped", "interrupted", "failed", "running")  # "running": a process that died without saying

# Settings that belong to one run, not to the recipe: a clone leaves them out.
RUN_ONLY = ("resume",)


@dataclass(frozen=True)
class RunAction:
    """How to start a trainer for one action: `Trainer(config, resume=resume)`."""

    kind: str
    config: TrainConfig | None
    resume: str | None = None  # the run id that trains further (continue, resume); None = a new run
    run_id: str | None = None  # the run the action was taken on

    def trainer(self, registry: RunRegistry | None = None) -> Trainer:
        from workbench.engine.training.trainer import Trainer

        return Trainer(self.config, resume=self.resume, registry=registry)


def _registry(registry: RunRegistry | None) -> RunRegistry:
    from workbench.engine.runs import RunRegistry

    return registry or RunRegistry()


def new_run(config: TrainConfig) -> RunAction:
    return RunAction(NEW, config)


def continue_run(
    ref: str, *, epochs: int | None = None, more: int | None = None, registry: RunRegistry | None = None
) -> RunAction:
    """The same run trains further. `epochs` is the run's new total (the CLI's `--epochs N`); `more` the
    epochs to add to what it has trained (the app); neither: as many again as it has trained."""
    record = _registry(registry).get(ref)
    total = _new_total(record, epochs, more)
    return RunAction(CONTINUE, TrainConfig(epochs=total), resume=record.run_id, run_id=record.run_id)


def _new_total(record: RunRecord, epochs: int | None, more: int | None) -> int:
    done = record.epochs_done
    return epochs if epochs is not None else done + (more if more else max(done, 1))


def resume_run(ref: str, *, epochs: int | None = None, registry: RunRegistry | None = None) -> RunAction:
    """A stopped or interrupted run goes on from its last checkpoint (with `epochs`, to that new total)."""
    record = _registry(registry).get(ref)
    return RunAction(
        RESUME, TrainConfig(epochs=epochs) if epochs else None, resume=record.run_id, run_id=record.run_id
    )


def continue_or_resume(
    ref: str, *, epochs: int | None = None, more: int | None = None, registry: RunRegistry | None = None
) -> RunAction:
    """What "go on with this run" means for its status: a finished run continues (more epochs), a stopped or
    interrupted one resumes. `train --resume RUN [--epochs N]` and the app's Continue training both call this."""
    registry = _registry(registry)
    try:
        record = registry.get(ref)
    except WorkbenchError:  # no such run: the trainer says so, as a failed run, like any resume that cannot start
        return RunAction(RESUME, TrainConfig(epochs=epochs) if epochs else None, resume=ref)
    if _continues(record, epochs, more):
        return continue_run(record.run_id, epochs=epochs, more=more, registry=registry)
    return resume_run(record.run_id, epochs=epochs, registry=registry)


def _continues(record: RunRecord, epochs: int | None, more: int | None) -> bool:
    """continue_or_resume's choice: a finished run given epochs continues; anything else resumes."""
    return record.status == "finished" and bool(epochs or more)


def continue_refusal(
    record: RunRecord, *, epochs: int | None = None, more: int | None = None
) -> WorkbenchError | None:
    """Why `continue_or_resume(record.run_id, epochs=…, more=…)` would train nothing, so that the trainer would
    refuse it (`cannot_go_on`), said from the run's record before any work: a client offers to go on with a run
    only when that can do something. None: it can. Reads no files and imports no torch (a UI can ask it often)."""
    target = _new_total(record, epochs, more) if _continues(record, epochs, more) else (epochs or None)
    total = record.config.get("epochs") if isinstance(record.config, dict) else None
    return cannot_go_on(
        record.run_id,
        status=record.status,
        done=record.epochs_done,
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        epochs=target,
        adding=more is not None,
    )


def continuing_fine_tunes(record: RunRecord) -> bool:
    """Whether going on with this run fine-tunes it for the first time (a quick run: stage 1 only), which a
    client says on its Continue button. Reads no files."""
    config = record.config if isinstance(record.config, dict) else {}
    return goes_on_to_stage_2(config, record.epochs_done)


def train_again(ref: str, changes: TrainConfig, *, registry: RunRegistry | None = None) -> RunAction:
    """A new run with the user's settings (`changes`), starting from run `ref`'s weights."""
    record = _registry(registry).get(ref)
    config = dataclasses.replace(changes, weights=record.run_id, pretrained=False)
    return RunAction(TRAIN_AGAIN, config, run_id=record.run_id)


def clone_settings(record: RunRecord) -> dict[str, Any]:
    """The run's settings for a new run: model, starting weights, image size and every hyperparameter
    (a TrainConfig-shaped dict; options the engine chose are kept as chosen, so the clone trains the same)."""
    settings = {k: v for k, v in dict(record.config).items() if k not in RUN_ONLY}
    settings.setdefault("model", record.model)
    return settings


def clone(record: RunRecord) -> RunAction:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig.from_dict({k: v for k, v in clone_settings(record).items() if k in known})
    return RunAction(CLONE, config, run_id=record.run_id)


def run_history(ref: str, *, up_to_epoch: int | None = None, registry: RunRegistry | None = None) -> list[dict]:
    """The run's per-epoch history (EpochEnded dicts), up to `up_to_epoch`: what a client shows of the
    epochs before a continued or resumed run's first new one."""
    try:
        record = _registry(registry).get(ref)
    except WorkbenchError:
        return []
    rows = [row for row in record.metrics if isinstance(row, dict) and isinstance(row.get("epoch"), int)]
    return [row for row in rows if up_to_epoch is None or row["epoch"] <= up_to_epoch]


@dataclass(frozen=True)
class PlanPreview:
    """What Train will train: the engine's one-sentence plan, its notes saying why, and whether the run starts
    with stage 1 (the instant model), which is what "quick" stops after, and the augmentation it will use."""

    sentence: str
    notes: list[str]
    instant_model: bool
    augment: AugmentConfig | None = None


def preview_plan(
    config: TrainConfig, *, typical_size: int, channels: int, num_train_images: int, device_type: str | None = None
) -> PlanPreview:
    """What Train will train with `config` on a dataset like this, before any work (defaults.describe_plan).
    Imports the model zoo (torch): call it off a UI thread."""
    from workbench.engine.training.defaults import describe_plan, resolve_defaults, run_device_type
    from workbench.engine.training.transfer import advise_strategy

    resolved, notes = resolve_defaults(
        config,
        typical_size=typical_size,
        channels=channels,
        num_train_images=num_train_images,
        device_type=device_type or run_device_type(config),
    )
    if resolved.strategy is None:
        if (resolved.pretrained or resolved.weights) and not resolved.linear_probe:
            resolved.strategy = advise_strategy(num_train_images, resolved.similar_to_imagenet).strategy
        else:
            resolved.strategy = "fine-tune-all"
    return PlanPreview(describe_plan(resolved), notes, bool(resolved.linear_probe), resolved.augment)
