"""A real trained run for the result views' tests (evaluation, predictions, inspector, export)."""

from __future__ import annotations

import pytest


def train_tiny_run(data, home) -> dict[str, str]:
    """course_cnn trained one epoch on `data` (real PNGs) in its own WORKBENCH_HOME `home`: the run the
    result views open."""
    from workbench.engine.training.config import TrainConfig
    from workbench.engine.training.trainer import Trainer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        config = TrainConfig(data=str(data), model="course_cnn", epochs=1, batch_size=32, seed=0)
        finished = list(Trainer(config).run())[-1]
    assert finished.status == "finished", finished
    return {"home": str(home), "run_id": finished.run_id, "checkpoint": finished.checkpoint}
