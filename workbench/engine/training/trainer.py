"""The training loop: a generator of typed events, steerable with pause / resume / stop.

    trainer = Trainer(TrainConfig(data="photos/", epochs=5))
    for event in trainer.run():      # a CLI prints these, the app plots them
        ...
    trainer.stop()                   # from any thread; ends with a usable checkpoint

Read `run()` top to bottom: data → model → optimizer → epochs of steps → checkpoints → test.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import threading
import time
import traceback
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from workbench.engine import paths
from workbench.engine.data import BatchIterator
from workbench.engine.device import autocast_dtype, describe_device, pick_device
from workbench.engine.errors import WeightsError, WorkbenchError
from workbench.engine.evaluation.metrics import topk_accuracy
from workbench.engine.models import build_model, check_input_size, replace_head
from workbench.engine.runs import RunHandle, RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.data_setup import PreparedData, decode, scan, with_progress
from workbench.engine.training.defaults import resolve_defaults
from workbench.engine.training.events import (
    CheckpointSaved,
    DataProgress,
    EpochEnded,
    Event,
    Message,
    RunFinished,
    RunStarted,
    StepEnded,
)
from workbench.engine.training.optim import build_optimizer, build_schedule, current_lr
from workbench.engine.training.transfer import TransferPlan

STEP_REPORTS_PER_EPOCH = 100  # enough points for a smooth curve, few enough to cost nothing


class Trainer:
    def __init__(
        self,
        config: TrainConfig | None = None,
        *,
        resume: str | None = None,
        registry: RunRegistry | None = None,
    ):
        if config is None and resume is None:
            raise WorkbenchError("nothing to train: give a training configuration or a run to resume")
        self.config = config
        self.resume_ref = resume
        self.registry = registry
        self.run_id: str | None = None
        self.run_dir: Path | None = None
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()

    # ---- control, from any thread ----------------------------------------------------------------
    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _stop_requested(self) -> bool:
        return self._stop.is_set()

    # ---- the run -----------------------------------------------------------------------------------
    def run(self) -> Generator[Event, None, None]:
        """Yield events until the run ends; the last one is always `RunFinished`."""
        handle: RunHandle | None = None
        try:
            handle = yield from self._run()
        except WorkbenchError as exc:
            if self._stop.is_set() and handle is None:  # cancelled while scanning or decoding
                yield RunFinished("stopped", "stopped before training began", run_id=self.run_id or "")
            else:
                yield self._fail(handle, str(exc))
        except Exception as exc:  # a bug, not bad input: keep the details in the run folder
            log = (self.run_dir or paths.data_dir()) / "error.log"
            with contextlib.suppress(OSError):
                log.write_text("".join(traceback.format_exception(exc)))
            yield self._fail(handle, f"internal error: {type(exc).__name__}: {exc} (details in {log})")
        finally:
            if handle is not None:
                handle.close()

    def _fail(self, handle: RunHandle | None, reason: str) -> RunFinished:
        if handle is not None:
            with contextlib.suppress(WorkbenchError):
                handle.finish("failed", reason)
        return RunFinished("failed", reason, run_id=self.run_id or "")

    def _run(self) -> Generator[Event, None, RunHandle | None]:
        registry = self.registry or RunRegistry()
        resumed = self._load_resume_state(registry) if self.resume_ref else None
        config = (self.config if resumed is None else resumed["config"]).validate()
        _seed_everything(config.seed, config.deterministic)
        device = pick_device(config.device)

        # 1. Data: index the folder (or reuse the run's index), choose defaults, decode once into tensors.
        if resumed is None:
            index = yield from scan(config, should_stop=self._stop_requested)
            from workbench.engine.data import guess_image_geometry

            typical_size, channels = guess_image_geometry(index.split("train"))
            config, notes = resolve_defaults(
                config,
                typical_size=typical_size,
                channels=channels,
                num_train_images=len(index.split("train")),
            )
        else:
            index, notes = resumed["index"], [f"resuming from epoch {resumed['epoch']}"]
        check_input_size(config.model, config.img_size)
        start_from = _previous_run_checkpoint(config.weights) if resumed is None else None
        for problem in index.problems:
            yield Message(f"skipped {problem.path}: {problem.reason}", "warning")
        for warning in index.warnings:
            yield Message(warning, "warning")
        data: PreparedData = yield from decode(
            index,
            config.img_size,
            config.channels,
            imagenet_stats=config.pretrained or (bool(config.weights) and start_from is None),
            should_stop=self._stop_requested,
        )
        earlier = resumed["payload"] if resumed else start_from
        if earlier is not None:  # the weights were trained with that normalization: keep it
            data.preprocessing.mean = earlier["preprocessing"]["mean"]
            data.preprocessing.std = earlier["preprocessing"]["std"]
        for split in (data.train, data.val, data.test):
            for problem in split.problems if split is not None else ():
                yield Message(f"skipped {problem.path}: {problem.reason}", "warning")

        # 2. Model, transfer plan, optimizer and schedule.
        model = yield from self._build_model(config, data, resumed, start_from)
        model.to(device)
        if device.type == "cuda" and config.channels_last:
            model.to(memory_format=torch.channels_last)
        plan = TransferPlan(
            model,
            config.strategy,
            unfreeze=config.unfreeze,
            backbone_lr_mult=config.backbone_lr_mult,
            head_epochs=config.head_epochs,
            pretrained=config.pretrained or bool(config.weights),
        )
        train_batches = BatchIterator(
            data.train.images,
            data.train.labels,
            config.batch_size,
            shuffle=True,
            device=device,
            mean=data.preprocessing.mean,
            std=data.preprocessing.std,
            augment=config.augment,
            seed=config.seed,
            channels_last=device.type == "cuda" and config.channels_last,
            drop_last=len(data.train.labels) > config.batch_size,
        )
        eval_batches = {
            name: BatchIterator(
                split.images,
                split.labels,
                config.batch_size * 2,
                shuffle=False,
                device=device,
                mean=data.preprocessing.mean,
                std=data.preprocessing.std,
                channels_last=device.type == "cuda" and config.channels_last,
            )
            for name, split in (("val", data.val), ("test", data.test))
            if split is not None and len(split.labels)
        }
        steps_per_epoch = len(train_batches)
        start_epoch = resumed["epoch"] if resumed else 0
        plan.start_epoch(start_epoch)
        optimizer = build_optimizer(plan.param_groups(config.lr, config.weight_decay), config, config.lr)
        schedule = build_schedule(
            optimizer,
            config,
            steps_per_epoch
            * (config.epochs - start_epoch if resumed and resumed["schedule_reset"] else config.epochs),
            config.epochs,
        )
        amp_dtype = autocast_dtype(device) if config.amp else None
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        history: list[dict[str, Any]] = resumed["history"] if resumed else []
        if resumed is not None:
            payload = resumed["payload"]
            with contextlib.suppress(ValueError, KeyError):  # a changed trainable set means a fresh optimizer
                optimizer.load_state_dict(payload["optimizer_state"])
            if not resumed["schedule_reset"]:
                schedule.load_state_dict(payload.get("scheduler_state"))
            if payload.get("scaler_state"):
                scaler.load_state_dict(payload["scaler_state"])
            ckpt.restore_rng_state(payload["rng"])
        compiled = torch.compile(model) if config.compile and device.type == "cuda" else model

        # 3. The run folder and registry row.
        handle = self._open_run(registry, config, data)
        handle.update(model=config.model, config=config.to_dict())
        self.run_id, self.run_dir = handle.run_id, handle.run_dir
        yield RunStarted(
            run_id=handle.run_id,
            run_dir=str(handle.run_dir),
            model=config.model,
            classes=data.classes,
            device=describe_device(device),
            train_images=len(data.train.labels),
            val_images=len(data.val.labels) if data.val is not None else 0,
            test_images=len(data.test.labels) if data.test is not None else 0,
            epochs=config.epochs,
            steps_per_epoch=steps_per_epoch,
            start_epoch=start_epoch,
            notes=notes + [plan.describe()],
        )

        def save(epoch: int, best: bool, sched_state: dict | None, rng: dict) -> Path:
            payload = {
                "model": config.model,
                "model_args": config.model_args,
                "classes": data.classes,
                "preprocessing": data.preprocessing.to_dict(),
                "config": config.to_dict(),
                "epoch": epoch,
                "history": history,
                "best_val_acc": best_acc,
                "model_state": model.state_dict(),
                "optimizer_state": optimizer.state_dict(),
                "scheduler_state": sched_state,
                "scaler_state": scaler.state_dict() if scaler.is_enabled() else None,
                "rng": rng,
            }
            path = ckpt.save_checkpoint(handle.checkpoints_dir / ckpt.LAST, payload)
            if best:
                ckpt.save_checkpoint(handle.checkpoints_dir / ckpt.BEST, payload)
            handle.record_checkpoint(
                handle.checkpoints_dir / (ckpt.BEST if best or data.val is None else ckpt.LAST)
            )
            return path

        # 4. Epochs.
        best_acc = max((h["val_acc"] for h in history if h.get("val_acc") is not None), default=None)
        epochs_without_gain = 0
        step = start_epoch * steps_per_epoch
        report_every = max(1, steps_per_epoch // STEP_REPORTS_PER_EPOCH)
        epoch = start_epoch
        for epoch in range(start_epoch, config.epochs):
            sched_at_start, rng_at_start = copy.deepcopy(schedule.state_dict()), ckpt.capture_rng_state()
            if plan.start_epoch(epoch):
                optimizer = build_optimizer(
                    plan.param_groups(current_lr(optimizer), config.weight_decay), config, config.lr
                )
                schedule = build_schedule(
                    optimizer, config, steps_per_epoch * (config.epochs - epoch), config.epochs - epoch
                )
                yield Message(f"epoch {epoch + 1}: {plan.describe()}")
            plan.train()
            train_batches.set_epoch(epoch)
            started = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            window_images, window_steps, window_start = 0, 0, started
            window_loss = torch.zeros((), device=device)
            for step_in_epoch, (x, y) in enumerate(train_batches, start=1):
                if not self._running.is_set():
                    yield Message("paused")
                    self._running.wait()
                    if not self._stop.is_set():
                        yield Message("resumed")
                    window_start = time.perf_counter()
                if self._stop.is_set():
                    path = save(epoch, False, sched_at_start, rng_at_start)
                    yield CheckpointSaved(str(path), epoch)
                    handle.finish("stopped", f"stopped by the user during epoch {epoch + 1}")
                    yield RunFinished(
                        "stopped",
                        f"stopped by the user during epoch {epoch + 1}",
                        run_id=handle.run_id,
                        checkpoint=str(path),
                        epochs=epoch,
                        val_accuracy=best_acc,
                    )
                    return handle
                loss, batch_correct = _train_step(compiled, x, y, optimizer, scaler, config, amp_dtype)
                schedule.after_step()
                step += 1
                loss_sum += loss * len(y)
                window_loss += loss
                window_steps += 1
                correct += batch_correct
                seen += len(y)
                window_images += len(y)
                if step_in_epoch % report_every == 0 or step_in_epoch == steps_per_epoch:
                    now = time.perf_counter()
                    mean_loss = (window_loss / window_steps).item()  # the one host sync per report
                    if not math.isfinite(mean_loss):
                        raise WorkbenchError(
                            f"training diverged at step {step} (loss is {mean_loss}); lower the learning rate "
                            f"(now {config.lr:g}) or turn on gradient clipping (--grad-clip 1.0)"
                        )
                    yield StepEnded(
                        step,
                        epoch + 1,
                        mean_loss,
                        current_lr(optimizer),
                        window_images / max(now - window_start, 1e-9),
                        step_in_epoch,
                        steps_per_epoch,
                    )
                    window_images, window_steps, window_start = 0, 0, now
                    window_loss = torch.zeros((), device=device)

            train_seconds = time.perf_counter() - started
            val = _evaluate(compiled, eval_batches["val"], amp_dtype) if "val" in eval_batches else None
            schedule.after_epoch(val["acc"] if val else None)
            seconds = time.perf_counter() - started
            record = EpochEnded(
                epoch=epoch + 1,
                train_loss=(loss_sum / max(seen, 1)).item(),
                train_acc=correct.item() / max(seen, 1),
                val_loss=val["loss"] if val else None,
                val_acc=val["acc"] if val else None,
                seconds=seconds,
                lr=current_lr(optimizer),
                images_per_s=seen / max(train_seconds, 1e-9),
                val_top5=val["top5"] if val else None,
            )
            history.append(record.to_dict())
            improved = val is not None and (best_acc is None or val["acc"] > best_acc)
            if improved:
                best_acc, epochs_without_gain = val["acc"], 0
            else:
                epochs_without_gain += 1
            handle.record_epoch(history, best_acc)
            yield record
            last_epoch = epoch + 1 == config.epochs
            if (epoch + 1) % config.checkpoint_every == 0 or last_epoch or improved:
                path = save(epoch + 1, improved, schedule.state_dict(), ckpt.capture_rng_state())
                yield CheckpointSaved(str(path), epoch + 1, best=improved)
            if config.early_stopping and val is not None and epochs_without_gain >= config.early_stopping:
                if not ((epoch + 1) % config.checkpoint_every == 0 or last_epoch or improved):
                    path = save(epoch + 1, False, schedule.state_dict(), ckpt.capture_rng_state())
                    yield CheckpointSaved(str(path), epoch + 1)
                yield Message(f"early stopping: no validation-accuracy gain for {epochs_without_gain} epochs")
                epoch += 1
                break
        else:
            epoch = config.epochs

        # 5. Test split, with the best weights.
        test_acc = None
        if "test" in eval_batches:
            best_path = handle.checkpoints_dir / ckpt.BEST
            if best_path.is_file():
                model.load_state_dict(ckpt.load_checkpoint(best_path, map_location=device)["model_state"])
            test_acc = _evaluate(compiled, eval_batches["test"], amp_dtype)["acc"]
        handle.finish("finished", test_acc=test_acc)
        final = handle.checkpoints_dir / (
            ckpt.BEST if (handle.checkpoints_dir / ckpt.BEST).is_file() else ckpt.LAST
        )
        yield RunFinished(
            "finished",
            "",
            run_id=handle.run_id,
            checkpoint=str(final),
            epochs=epoch,
            val_accuracy=best_acc,
            test_accuracy=test_acc,
        )
        return handle

    # ---- helpers ----------------------------------------------------------------------------------
    def _load_resume_state(self, registry: RunRegistry) -> dict[str, Any]:
        record = registry.get(self.resume_ref)
        run_dir = Path(record.run_dir)
        last = run_dir / "checkpoints" / ckpt.LAST
        if not last.is_file():
            raise WeightsError(
                f"run {record.run_id} has no checkpoint to resume from; start a new run instead"
            )
        payload = ckpt.load_checkpoint(last)
        config = TrainConfig.from_dict(payload["config"])
        schedule_reset = False
        if self.config is not None and self.config.epochs and self.config.epochs != config.epochs:
            config = dataclasses.replace(
                config, epochs=self.config.epochs
            )  # "continue training" for more epochs
            schedule_reset = True
        if payload["epoch"] >= config.epochs:
            raise WorkbenchError(
                f"run {record.run_id} already finished its {config.epochs} epochs; pass --epochs N (more than "
                f"{payload['epoch']}) to continue training"
            )
        from workbench.engine.data import DatasetIndex

        index = DatasetIndex.from_dict(_read_json(run_dir / "dataset.json"))
        self.run_id, self.run_dir = record.run_id, run_dir
        return {
            "record": record,
            "payload": payload,
            "config": config,
            "epoch": payload["epoch"],
            "history": payload.get("history", [])[: payload["epoch"]],
            "index": index,
            "schedule_reset": schedule_reset,
        }

    def _open_run(self, registry: RunRegistry, config: TrainConfig, data: PreparedData) -> RunHandle:
        if self.resume_ref:
            return registry.reopen_run(self.run_id)
        handle = registry.create_run(
            model=config.model, dataset=config.data, config=config.to_dict(), name=config.run_name
        )
        handle.write_json("dataset.json", data.index.to_dict())
        return handle

    def _build_model(
        self, config: TrainConfig, data: PreparedData, resumed: dict | None, start_from: dict | None
    ) -> Generator[Event, None, torch.nn.Module]:
        num_classes = len(data.classes)
        if resumed is not None:
            model = build_model(config.model, num_classes, config.channels, **config.model_args)
            model.load_state_dict(resumed["payload"]["model_state"])
            return model
        if start_from is not None:  # one of the user's own runs: same architecture, new head if needed
            payload = start_from
            if payload["model"] != config.model:
                raise WeightsError(f"{config.weights} holds a {payload['model']} model, not {config.model}")
            model = build_model(config.model, len(payload["classes"]), config.channels, **config.model_args)
            model.load_state_dict(payload["model_state"])
            if payload["classes"] != data.classes:
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


def _train_step(
    model, x, y, optimizer, scaler, config: TrainConfig, amp_dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        logits = model(x)
        if isinstance(logits, tuple):  # Inception/GoogLeNet auxiliary heads in training mode
            main, *aux = logits
            loss = F.cross_entropy(main, y, label_smoothing=config.label_smoothing)
            loss = loss + 0.3 * sum(
                F.cross_entropy(a, y, label_smoothing=config.label_smoothing) for a in aux if a is not None
            )
            logits = main
        else:
            loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if config.grad_clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), (logits.detach().argmax(dim=1) == y).sum()


@torch.no_grad()
def _evaluate(model, batches: Iterator, amp_dtype) -> dict[str, float]:
    was_training = model.training
    model.eval()
    loss_sum, correct, top5, count = 0.0, 0, 0.0, 0
    for x, y in batches:
        with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x).float()
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(dim=1) == y).sum().item()
        top5 += topk_accuracy(logits, y, 5) * len(y)
        count += len(y)
    model.train(was_training)
    return {"loss": loss_sum / max(count, 1), "acc": correct / max(count, 1), "top5": top5 / max(count, 1)}


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True


def _previous_run_checkpoint(weights: str | None) -> dict[str, Any] | None:
    """The checkpoint when `weights` names one of the user's runs or a workbench checkpoint file;
    None for no weights or a plain (torchvision-style) state dict, which build_model loads and checks."""
    if not weights:
        return None
    path = Path(weights).expanduser()
    if path.is_file():
        try:
            return ckpt.load_checkpoint(path)
        except WeightsError:
            return None
    return ckpt.load_checkpoint(ckpt.find_checkpoint(weights))


def _read_json(path: Path) -> Any:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WorkbenchError(f"cannot read {path}: {exc}") from None
