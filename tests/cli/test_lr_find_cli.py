"""`workbench lr-find` on real images, starting from one of the user's runs (issue #13)."""

from __future__ import annotations

import json
import math
import shutil

from workbench.cli import main
from workbench.engine.runs import RunRegistry
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


def test_lr_find_from_an_earlier_run_prints_a_suggestion_and_records_nothing(
    fmnist_folder_factory, tmp_path, capsys
):
    ten = fmnist_folder_factory(6, 2)
    earlier = list(Trainer(TrainConfig(data=str(ten), model="course_cnn", epochs=1, batch_size=16)).run())[-1]
    assert earlier.status == "finished", earlier
    six = tmp_path / "six"  # a new class set: the earlier run's network gets a new head
    for name in sorted(p.name for p in (ten / "train").iterdir())[:6]:
        for split in ("train", "test"):
            shutil.copytree(ten / split / name, six / split / name)
    capsys.readouterr()

    args = ["lr-find", str(six), "--model", "course_cnn", "--weights", earlier.run_id, "--batch-size", "16"]
    assert main([*args, "--steps", "8"]) == 0
    out = capsys.readouterr().out
    assert "suggested learning rate:" in out and "new head for 6 classes" in out

    assert main([*args, "--steps", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(result["lrs"]) >= 5 and all(math.isfinite(loss) for loss in result["losses"])
    assert result["lrs"][0] <= result["suggestion"] <= result["lrs"][-1]
    assert [r.run_id for r in RunRegistry().list_runs()] == [earlier.run_id]
