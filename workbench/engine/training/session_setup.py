"""Setting up a run before its first step: data, the model, its transfer plan, batches, optimizer and
schedule (`prepare_session`, shared by the Trainer and the LR finder), then the run folder (`open_run_folder`,
the Trainer's alone: created, reopened on resume, or followed on DDP ranks > 0)."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path

import torch

from workbench.engine.data import BatchIterator
from workbench.engine.data.batches import drops_last_batch
from workbench.engine.device import autocast_dtype, prefers_channels_last
from workbench.engine.errors import WeightsError
from workbench.engine.models import build_model, replace_head
from workbench.engine.names import class_key
from workbench.engine.runs import FollowerRunHandle, RunHandle, RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.data_setup import PreparedData, ShouldStop, prepare_data, with_progress
from workbench.engine.training.defaults import choose_strategy
from workbench.engine.training.distributed import DistContext, per_rank_batch
from workbench.engine.training.events import DataProgress, Event, Message
from workbench.engine.training.optim import Schedule, build_optimizer, build_schedule
from workbench.engine.training.resume import ResumeState
from workbench.engine.training.session import Session
from workbench.engine.training.steps import seed_everything
from workbench.engine.training.transfer import TransferPlan


def prepare_session(
    config: TrainConfig,
    device: torch.device,
    *,
    resumed: ResumeState | None = None,
    dist_ctx: DistContext | None = None,
    should_stop: ShouldStop | None = None,
) -> Generator[Event, None, Session]:
    """Everything a run needs before its first step, and nothing written to the runs folder: data →
    defaults → model (fresh, pretrained, an earlier run's, or the resumed one) → transfer plan → batches
    → optimizer and schedule. The one setup path: the Trainer then opens a run folder (`open_run_folder`);
    the LR finder sweeps on the session as it is, so both train the same network on the same tensors.
    Yields DataProgress, FileSkipped and Messages (advice, download progress) on the way."""
    dist_ctx = dist_ctx or DistContext()
    seed_everything(config.seed, config.deterministic)  # same seed: same weights and batches, whoever asks
    prepared = yield from prepare_data(config, device, resumed, dist_ctx, should_stop)
    config, data = prepared.config, prepared.data
    model = yield from build_run_model(config, data, resumed, prepared.start_from)
    if config.strategy is None:
        config.strategy, advice = choose_strategy(config, model, len(data.train.labels))
        if advice:
            yield Message(advice)
    channels_last = config.channels_last and prefers_channels_last(device)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    plan = TransferPlan(
        model,
        config.strategy,
        unfreeze=config.unfreeze,
        backbone_lr_mult=config.backbone_lr_mult,
        head_epochs=config.head_epochs,
        pretrained=config.pretrained or bool(config.weights),
        freeze_bn_stats=bool(config.freeze_bn_stats),
        taps_held_at_zero=bool(config.linear_probe),
    )
    train_batches, eval_batches = _batches(config, data, device, channels_last, dist_ctx)
    start_epoch = resumed.epoch if resumed else 0
    plan.start_epoch(start_epoch)
    optimizer = build_optimizer(plan.param_groups(config.lr, config.weight_decay), config, config.lr)
    scheduled_epochs = config.epochs - start_epoch if resumed and resumed.schedule_reset else config.epochs
    schedule = build_schedule(optimizer, config, len(train_batches) * scheduled_epochs, scheduled_epochs)
    amp_dtype = autocast_dtype(device, model) if config.amp else None
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    if resumed is not None:
        _restore_training_state(resumed, optimizer, schedule, scaler)
    return Session(
        config=config, device=device, data=data, model=model,
        forward_model=wrap_for_training(model, config, device, dist_ctx), plan=plan, optimizer=optimizer,
        schedule=schedule, scaler=scaler, amp_dtype=amp_dtype, train_batches=train_batches,
        eval_batches=eval_batches, history=list(resumed.history) if resumed else [], start_epoch=start_epoch,
        notes=prepared.notes, is_main=dist_ctx.is_main,
    )  # fmt: skip


def _batches(
    config: TrainConfig, data: PreparedData, device: torch.device, channels_last: bool, dist_ctx: DistContext
) -> tuple[BatchIterator, dict[str, BatchIterator]]:
    """The training batches (this rank's share, shuffled, augmented) and the val/test batches."""
    normalize = {"mean": data.preprocessing.mean, "std": data.preprocessing.std}
    train_batches = BatchIterator(
        data.train.images,
        data.train.labels,
        per_rank_batch(config.batch_size, dist_ctx.world_size),
        shuffle=True,
        device=device,
        augment=config.augment,
        seed=config.seed,
        channels_last=channels_last,
        drop_last=drops_last_batch(len(data.train.labels), config.batch_size),
        rank=dist_ctx.rank,
        world_size=dist_ctx.world_size,
        **normalize,
    )
    eval_batches = {
        name: BatchIterator(
            split.images,
            split.labels,
            config.batch_size * 2,
            shuffle=False,
            device=device,
            channels_last=channels_last,
            **normalize,
        )
        for name, split in (("val", data.val), ("test", data.test))
        if split is not None and len(split.labels)
    }
    return train_batches, eval_batches


def _restore_training_state(
    resumed: ResumeState, optimizer: torch.optim.Optimizer, schedule: Schedule, scaler: torch.amp.GradScaler
) -> None:
    """Optimizer, schedule, loss scaler and RNG as the resumed run's last checkpoint left them."""
    payload = resumed.payload
    with contextlib.suppress(ValueError, KeyError):  # a changed trainable set means a fresh optimizer
        optimizer.load_state_dict(payload["optimizer_state"])
    if not resumed.schedule_reset:
        schedule.load_state_dict(payload.get("scheduler_state"))
    if payload.get("scaler_state"):
        scaler.load_state_dict(payload["scaler_state"])
    ckpt.restore_rng_state(payload["rng"])


def open_run_folder(
    registry: RunRegistry, session: Session, resumed: ResumeState | None, dist_ctx: DistContext
) -> RunHandle:
    """The run's folder and registry row: created, reopened on resume, or followed on DDP ranks > 0."""
    config = session.config
    if not dist_ctx.is_main:
        run_id, run_dir = dist_ctx.broadcast(None)
        handle: RunHandle = FollowerRunHandle(run_id, Path(run_dir))
    elif resumed is not None:
        handle = registry.reopen_run(resumed.run_id)
    else:
        handle = registry.create_run(
            model=config.model, dataset=config.data, config=config.to_dict(), name=config.run_name
        )
        handle.write_json("dataset.json", session.data.index.to_dict())
    if dist_ctx.enabled and dist_ctx.is_main:
        dist_ctx.broadcast((handle.run_id, str(handle.run_dir)))
    handle.update(model=config.model, config=config.to_dict())
    return handle


def build_run_model(
    config: TrainConfig, data: PreparedData, resumed: ResumeState | None, start_from: dict | None
) -> Generator[Event, None, torch.nn.Module]:
    """The network to train: a resumed run's, one of the user's runs (new head if the classes differ), or a
    fresh zoo model (pretrained weights downloaded with progress)."""
    num_classes = len(data.classes)
    if resumed is not None:
        model = build_model(config.model, num_classes, config.channels, **config.model_args)
        model.load_state_dict(resumed.payload["model_state"])
        return model
    if start_from is not None:  # one of the user's own runs: same architecture, new head if needed
        if start_from["model"] != config.model:
            raise WeightsError(f"{config.weights} holds a {start_from['model']} model, not {config.model}")
        model = build_model(config.model, len(start_from["classes"]), config.channels, **config.model_args)
        model.load_state_dict(start_from["model_state"])
        if [class_key(c) for c in start_from["classes"]] != [class_key(c) for c in data.classes]:
            replace_head(model, num_classes)
            yield Message(f"started from {config.weights} with a new head for {num_classes} classes")
        return model
    return (
        yield from with_progress(
            lambda report: build_model(
                config.model,
                num_classes,
                config.channels,
                pretrained=config.pretrained and not config.weights,
                weights_path=config.weights,
                progress=report,
                **config.model_args,
            ),
            lambda done, total: DataProgress("download", done, total),
        )
    )


def wrap_for_training(
    model: torch.nn.Module, config: TrainConfig, device: torch.device, dist_ctx: DistContext
) -> torch.nn.Module:
    """What the loop calls forward on: the model itself, compiled (CUDA, --compile), and/or DDP-wrapped."""
    forward_model = model
    if dist_ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        if any(p.requires_grad for p in model.parameters()):
            forward_model = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
    if config.compile and device.type == "cuda":
        forward_model = torch.compile(forward_model)
    return forward_model
