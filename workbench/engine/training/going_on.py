"""Whether a run can train further: the one rule that the trainer applies to a run's last checkpoint
(resume.py) and that clients ask before any work (run_actions.continue_refusal). Its own module, free of
torch and of the trainer, so that both can import it without knowing each other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workbench.engine.errors import Mention, WorkbenchError, counted


def goes_on_to_stage_2(config: Mapping[str, Any], epochs_done: int) -> bool:
    """Whether going on with a run fine-tunes it for the first time: a quick run (stage 1 only) continued takes
    it on to stage 2, starting where a run without quick would have (resume.py, probe_stage.py)."""
    return bool(config.get("quick") and config.get("linear_probe")) and epochs_done == 0


def cannot_go_on(
    run_id: str, *, status: str, done: int, total: int | None, epochs: int | None = None, adding: bool = False
) -> WorkbenchError | None:
    """Why run `run_id` (its `status`, `done` epochs trained of its `total`) cannot train further to `epochs`, its
    new total (None: its own total): the one rule of `train --resume RUN [--epochs N]` and the app's Continue
    training. The trainer checks it on the run's last checkpoint (resume.load_resume_state), clients ask it
    before any work (`continue_refusal`). None: the run can go on. `adding`: the client's Epochs counts the
    epochs to add (the app's Continue training), not the new total (the CLI's --epochs), and the advice says so."""
    if epochs is not None and epochs <= done:
        return WorkbenchError(
            f"run {run_id} has already trained {done} epoch(s); ",
            Mention("epochs"),
            f" is the run's total, so give more than {done} to continue it (",
            Mention("epochs", epochs),
            " would train nothing)",
        )
    target = epochs or total
    if status == "finished" and target is not None and done >= target:
        advice = " to how many more epochs to train" if adding else f" to more than {done}"
        return WorkbenchError(
            f"run {run_id} already finished its {counted(target, 'epoch')}; set ",
            Mention("epochs"),
            f"{advice} to continue training",
        )
    return None
