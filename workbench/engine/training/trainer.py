"""The training loop: a generator of typed events, steerable with pause / resume / stop.

    trainer = Trainer(TrainConfig(data="photos/", epochs=5))
    for event in trainer.run():      # a CLI prints these, the app plots them
        ...
    trainer.stop()                   # from any thread; ends with a usable checkpoint

Read `_run()` top to bottom: data, model and optimizer (session_setup.prepare_session, which the LR finder
shares) → run folder → epochs of steps → checkpoints → test split.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
import traceback
from collections.abc import Generator
from pathlib import Path

import torch

from workbench.engine import paths
from workbench.engine.atomic import write_bytes_atomic
from workbench.engine.data import DecodeCancelled
from workbench.engine.device import describe_device, pick_device
from workbench.engine.errors import Text, WeightsError, WorkbenchError, first_line
from workbench.engine.evaluation.confidence import calibrate_run
from workbench.engine.evaluation.tta import for_evaluation, uses_flip_tta
from workbench.engine.evaluation.uncertainty import collapse_warning, majority_baseline, majority_warning
from workbench.engine.runs import RunHandle, RunRegistry
from workbench.engine.training import checkpoint as ckpt
from workbench.engine.training import event_text
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.defaults import describe_plan
from workbench.engine.training.distributed import DistContext, init_from_env
from workbench.engine.training.events import (
    CheckpointSaved,
    EpochEnded,
    Event,
    Message,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    RunStatus,
    StepEnded,
)
from workbench.engine.training.optim import build_optimizer, build_schedule, current_lr
from workbench.engine.training.probe_stage import (
    STAGE,
    VAL_HITS,
    fine_tuning_replaces_stage1,
    fit_head_on_embeddings,
    keep_taps_out_of_fine_tuning,
    start_fine_tuning_after_quick,
)
from workbench.engine.training.resume import load_resume_state
from workbench.engine.training.session import Session
from workbench.engine.training.session_setup import open_run_folder, prepare_session, wrap_for_training
from workbench.engine.training.steps import evaluate_batches, train_step
from workbench.engine.training.weight_average import FINE_TUNED_SHARE, average_into

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
        self._handle: RunHandle | None = None
        self._dist = DistContext()
        try:
            yield from self._run()
        except WorkbenchError as exc:
            if self._stop.is_set() and self._handle is None:  # cancelled while scanning or decoding
                yield RunFinished(RunStatus.STOPPED, "stopped before training began", run_id=self.run_id or "")
            else:
                yield self._fail(str(exc))
        except Exception as exc:  # a bug, not bad input: keep the details where the user can send them
            yield self._fail(
                f"internal error: {type(exc).__name__}: {first_line(exc)}{self._save_details(exc)}"
            )
        finally:
            if self._handle is not None:
                self._handle.close()
            self._dist.shutdown()

    def _save_details(self, exc: Exception) -> str:
        """Write the traceback to error.log and return where it is, for the failure message.

        The log used to be written with `write_text` under `suppress(OSError)`: on a full disk the file was
        created, the write failed, and the message pointed at an empty log. Now it is written atomically
        (all or nothing) and a failed write is said in the message instead of pointing at nothing.
        """
        log = (self.run_dir or paths.data_dir_path()) / "error.log"
        try:
            write_bytes_atomic(log, "".join(traceback.format_exception(exc)).encode("utf-8", "backslashreplace"))
        except OSError as write_error:
            return f" (the details could not be saved to {log}: {write_error.strerror or write_error})"
        return f" (details in {log})"

    def _fail(self, reason: str) -> RunFinished:
        if self._handle is not None:
            with contextlib.suppress(WorkbenchError):
                self._handle.finish(RunStatus.FAILED, reason)
        return RunFinished(RunStatus.FAILED, reason, run_id=self.run_id or "")

    def _run(self) -> Generator[Event, None, None]:
        registry = self.registry or RunRegistry()
        resumed = None
        if self.resume_ref:
            resumed = load_resume_state(
                registry, self.resume_ref, self.config.epochs if self.config else None
            )
            self.run_id, self.run_dir = resumed.run_id, resumed.run_dir
        config = (resumed.config if resumed else self.config).validate()
        self._dist, rank_device = init_from_env(config.device)
        device = rank_device or pick_device(config.device)

        session = yield from prepare_session(
            config, device, resumed=resumed, dist_ctx=self._dist, should_stop=self._stop_requested
        )
        config, data = session.config, session.data  # with every default filled in
        session.handle = self._handle = open_run_folder(registry, session, resumed, self._dist)
        self.run_id, self.run_dir = session.handle.run_id, session.handle.run_dir
        yield RunStarted(
            run_id=session.handle.run_id,
            run_dir=str(session.handle.run_dir),
            model=config.model,
            classes=data.classes,
            device=describe_device(device),
            train_images=len(data.train.labels),
            val_images=len(data.val.labels) if data.val is not None else 0,
            test_images=len(data.test.labels) if data.test is not None else 0,
            epochs=config.epochs,
            steps_per_epoch=session.steps_per_epoch,
            start_epoch=session.start_epoch,
            notes=[*session.notes, session.plan.describe()],
            plan=describe_plan(config),
            resumed=resumed is not None,
        )
        probed = False
        try:
            if config.linear_probe and resumed is None and session.start_epoch == 0:
                probed = yield from fit_head_on_embeddings(session, self._stop_requested)
            elif resumed is not None and resumed.after_quick:  # Continue training after a quick run
                yield from start_fine_tuning_after_quick(session, self._stop_requested)
        except DecodeCancelled:
            reason = "stopped by the user while computing embeddings"
            session.handle.finish(RunStatus.STOPPED, reason)
            yield RunFinished(RunStatus.STOPPED, reason, run_id=session.handle.run_id)
            return
        if probed and config.quick:
            yield from self._finish(session, 0)
            return
        epochs_done = yield from self._train_epochs(session)
        if epochs_done is None:  # stopped: the RunFinished event is already out
            return
        yield from self._finish(session, epochs_done)

    # ---- epochs ------------------------------------------------------------------------------------
    def _train_epochs(self, s: Session) -> Generator[Event, None, int | None]:
        """Train to the end (returns the epochs done) or until stopped (returns None)."""
        config = s.config
        epochs_without_gain = 0
        collapse_warned = False  # said once a run
        # On a few hundred images the validation split is too small to pick an epoch (one image is 5
        # points): a run that started with the linear head compares only it and the final fine-tuned model.
        probe = next((h for h in s.history if h.get("stage") == STAGE), None)
        probed_run, probe_acc = probe is not None, probe["val_acc"] if probe else None
        if s.plan.held_at_zero:  # decided once, where the plan counts what trains (session_setup.py)
            keep_taps_out_of_fine_tuning(s.model)
        for epoch in range(s.start_epoch, config.epochs):
            # What a mid-epoch stop saves: the schedule and RNG as the epoch began, so resume replays it.
            schedule_at_start, rng_at_start = copy.deepcopy(s.schedule.state_dict()), ckpt.capture_rng_state()
            if s.plan.start_epoch(epoch):  # fine-tune-gradual unfroze the body: new parameter groups
                s.optimizer = build_optimizer(
                    s.plan.param_groups(config.lr, config.weight_decay), config, config.lr
                )
                s.schedule = build_schedule(
                    s.optimizer, config, s.steps_per_epoch * (config.epochs - epoch), config.epochs - epoch
                )
                s.forward_model = wrap_for_training(
                    s.model, config, s.device, self._dist
                )  # DDP sees the new set
                yield Message(f"epoch {epoch + 1}: {s.plan.describe()}")
            started = time.perf_counter()
            totals = yield from self._train_one_epoch(s, epoch)
            if totals is None:
                path = s.save(epoch, best=False, schedule_state=schedule_at_start, rng=rng_at_start)
                yield CheckpointSaved(str(path), epoch, stopped_in_epoch=epoch + 1)
                reason = f"stopped by the user during epoch {epoch + 1}"
                s.handle.finish(RunStatus.STOPPED, reason)
                yield RunFinished(
                    RunStatus.STOPPED, reason, run_id=s.handle.run_id, checkpoint=str(path), epochs=epoch,
                    val_accuracy=s.best_acc,
                )  # fmt: skip
                return None
            loss_sum, correct, seen = self._dist.all_reduce_sum(list(totals), s.device)
            train_seconds = time.perf_counter() - started
            if probed_run and epoch + 1 == config.epochs:
                yield from self._average_with_probe(s)
            best_before = s.best_acc
            val = (
                evaluate_batches(s.forward_model, s.eval_batches["val"], s.amp_dtype)
                if "val" in s.eval_batches
                else None
            )
            s.schedule.after_epoch(val["acc"] if val else None)
            collapsed = (
                None if collapse_warned or not val else self._collapse_warning(s, val["predicted"], probed_run)
            )
            collapse_warned = collapse_warned or collapsed is not None
            record = EpochEnded(
                epoch=epoch + 1,
                train_loss=loss_sum / max(seen, 1),
                train_acc=correct / max(seen, 1),
                val_loss=val["loss"] if val else None,
                val_acc=val["acc"] if val else None,
                seconds=time.perf_counter() - started,
                lr=current_lr(s.optimizer),
                images_per_s=seen / max(train_seconds, 1e-9),
                val_top5=val["top5"] if val else None,
                val_images=len(s.data.val.labels) if val else 0,
            )
            s.history.append(record.to_dict())
            improved = val is not None and (best_before is None or val["acc"] > best_before)
            epochs_without_gain = 0 if improved else epochs_without_gain + 1
            early_stop = (
                bool(config.early_stopping)
                and val is not None
                and epochs_without_gain >= config.early_stopping
            )
            last = epoch + 1 == config.epochs or early_stop
            choice = ""
            if probed_run:  # LP-FT keeps one of two models: the fitted head or the end of fine-tuning
                improved = False
                if val is not None and last:
                    improved, choice = fine_tuning_replaces_stage1(
                        probe_acc, val["acc"], record.val_images, probe.get(VAL_HITS), val["hits"]
                    )
            s.history[-1]["best"] = improved
            s.handle.record_epoch(s.history, s.best_acc)
            yield record
            if collapsed:
                yield Message(collapsed, "warning")
            if choice:
                yield Message(choice)
            if (epoch + 1) % config.checkpoint_every == 0 or last or improved:
                path = s.save(
                    epoch + 1,
                    best=improved,
                    schedule_state=s.schedule.state_dict(),
                    rng=ckpt.capture_rng_state(),
                )
                yield CheckpointSaved(str(path), epoch + 1, best=improved)
            if early_stop:
                yield Message(f"early stopping: no validation-accuracy gain for {epochs_without_gain} epochs")
                return epoch + 1
        return config.epochs

    @staticmethod
    def _collapse_warning(s: Session, predicted: list[int], probed_run: bool) -> Text | None:
        """After an epoch: the model answers one class for nearly every validation image (uncertainty.py)."""
        from workbench.engine.errors import Mention

        counts = torch.bincount(s.data.val.labels, minlength=len(s.data.classes)).tolist()
        warning = collapse_warning(predicted, counts, s.data.classes)
        if warning is None:
            return None
        kept = " Stage 1's instant model is kept unless fine-tuning beats it on validation." if probed_run else ""
        return Text(f"{warning}. Lower the learning rate (now {s.config.lr:g}; ", Mention("lr"), f").{kept}")

    def _average_with_probe(self, s: Session) -> Generator[Event, None, None]:
        """LP-FT's last step (weight_average.py): the kept network is the midpoint of stage 1's and stage 2's.
        Every rank of a distributed run reads the same file, written at stage 1, epochs before."""
        path = s.handle.checkpoints_dir / ckpt.PROBE
        if not path.is_file():  # a run started before this step existed
            return
        try:
            start = ckpt.load_checkpoint(path, map_location=s.device)["model_state"]
        except WeightsError as exc:  # damaged on disk: fine-tuning's own weights are still a good model
            yield Message(f"{first_line(exc)}; the fine-tuned network is kept as it is", "warning")
            return
        alone = (
            evaluate_batches(s.forward_model, s.eval_batches["val"], s.amp_dtype)
            if "val" in s.eval_batches
            else None
        )
        average_into(s.model, start, FINE_TUNED_SHARE)
        yield Message(
            f"final weights: {FINE_TUNED_SHARE:.0%} fine-tuned, {1 - FINE_TUNED_SHARE:.0%} the fitted head's "
            "network (WiSE-FT: on few images the average usually generalizes better than either end)"
            + (f"; the fine-tuned network alone scored {alone['acc']:.1%} on validation" if alone else "")
        )

    def _train_one_epoch(
        self, s: Session, epoch: int
    ) -> Generator[Event, None, tuple[float, int, int] | None]:
        """The hot loop. Returns (loss sum, correct, images seen), or None when a stop was requested."""
        s.plan.train()
        s.train_batches.set_epoch(epoch)
        steps = s.steps_per_epoch
        report_every = max(1, steps // STEP_REPORTS_PER_EPOCH)
        loss_sum = torch.zeros((), device=s.device)
        correct = torch.zeros((), device=s.device, dtype=torch.long)
        seen = 0
        window_loss, window_steps, window_images = torch.zeros((), device=s.device), 0, 0
        window_start = time.perf_counter()
        for step_in_epoch, (x, y) in enumerate(s.train_batches, start=1):
            if not self._running.is_set():
                yield Paused()
                self._running.wait()
                if not self._stop.is_set():
                    yield Resumed()
                window_start = time.perf_counter()
            if self._stop.is_set():
                return None
            loss, batch_correct = s.oom.run(
                lambda micro, x=x, y=y: train_step(
                    s.forward_model, x, y, s.optimizer, s.scaler, amp_dtype=s.amp_dtype,
                    label_smoothing=s.config.label_smoothing, grad_clip=s.config.grad_clip, micro_batch=micro,
                )
            )  # fmt: skip
            for text in s.oom.pop_messages():
                yield Message(text, "warning")
            s.schedule.after_step()
            loss_sum += loss * len(y)
            correct += batch_correct
            seen += len(y)
            window_loss += loss
            window_steps += 1
            window_images += len(y)
            if step_in_epoch % report_every == 0 or step_in_epoch == steps:
                mean_loss = (window_loss / window_steps).item()  # the one host sync per report
                now = time.perf_counter()
                step = epoch * steps + step_in_epoch
                if not math.isfinite(mean_loss):
                    from workbench.engine.errors import Mention

                    raise WorkbenchError(
                        f"training diverged at step {step} (loss is {mean_loss}); lower the learning rate "
                        f"(now {s.config.lr:g}) or turn on gradient clipping (",
                        Mention("grad_clip", 1.0),
                        ")",
                    )
                yield StepEnded(
                    step, epoch + 1, mean_loss, current_lr(s.optimizer),
                    window_images / max(now - window_start, 1e-9), step_in_epoch, steps,
                )  # fmt: skip
                window_loss, window_steps, window_images = torch.zeros((), device=s.device), 0, 0
                window_start = now
        return loss_sum.item(), int(correct.item()), seen

    # ---- test split --------------------------------------------------------------------------------
    def _finish(self, s: Session, epochs_done: int) -> Generator[Event, None, None]:
        test_acc = None
        best_path = s.handle.checkpoints_dir / ckpt.BEST
        if "test" in s.eval_batches:
            if best_path.is_file():  # judge the model the user will keep: the best on validation
                s.model.load_state_dict(ckpt.load_checkpoint(best_path, map_location=s.device)["model_state"])
            config = s.config.to_dict()
            judged = for_evaluation(s.forward_model, config)
            # In fp32, as `workbench eval` and the app's Evaluate judge the same checkpoint: under bf16/fp16
            # autocast a few borderline images flip and the run's figure would differ from theirs.
            test_acc = evaluate_batches(judged, s.eval_batches["test"], None)["acc"]
            if uses_flip_tta(config):
                yield event_text.mirrored_test_message(test_acc)
        judged = s.data.test if test_acc is not None else s.data.val
        accuracy = test_acc if test_acc is not None else s.best_acc
        if judged is not None and accuracy is not None:
            warning = majority_warning(
                accuracy, len(judged.labels), majority_baseline(judged.labels.tolist(), s.data.classes),
                "test" if test_acc is not None else "validation",
                pretrained=bool(s.config.pretrained or s.config.weights),
            )  # fmt: skip
            if warning:
                yield Message(warning, "warning")
        final = best_path if best_path.is_file() else s.handle.checkpoints_dir / ckpt.LAST
        for text in calibrate_run(s, final):  # temperature and out-of-domain threshold, into `final`
            yield Message(text)
        s.handle.finish(RunStatus.FINISHED, test_acc=test_acc)
        yield RunFinished(
            RunStatus.FINISHED, "", run_id=s.handle.run_id, checkpoint=str(final), epochs=epochs_done,
            val_accuracy=s.best_acc, test_accuracy=test_acc,
        )  # fmt: skip
