"""DistributedDataParallel under torchrun: two gloo processes on this CPU equal one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from workbench.engine.runs import RunRegistry
from workbench.engine.training import checkpoint as ckpt

# No BatchNorm (per-rank batch statistics would differ), no augmentation, no bf16: the sums must match.
COMMON = [
    "--model",
    "lenet5",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--lr",
    "0.02",
    "--schedule",
    "constant",
    "--augment",
    "none",
    "--no-amp",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--json",
]


def train(command: list[str], home: Path) -> dict:
    env = {**os.environ, "WORKBENCH_HOME": str(home), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_two_gloo_processes_train_like_one(fmnist_folder, tmp_path, monkeypatch):
    single = train(
        [sys.executable, "-m", "workbench", "train", str(fmnist_folder), *COMMON], tmp_path / "one"
    )
    torchrun = str(Path(sys.executable).parent / "torchrun")
    ddp = train([torchrun, "--standalone", "--nproc_per_node=2", "-m", "workbench", "train", str(fmnist_folder),
                 *COMMON], tmp_path / "two")  # fmt: skip

    assert single["epochs"] == ddp["epochs"] == 2 and ddp["status"] == "finished"
    a = ckpt.load_checkpoint(single["checkpoint"])["model_state"]
    b = ckpt.load_checkpoint(ddp["checkpoint"])["model_state"]
    assert a.keys() == b.keys() and not any(k.startswith("module.") for k in b)
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-4), (name, (a[name] - b[name]).abs().max())
    assert ddp["test_accuracy"] == single["test_accuracy"]

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "two"))
    runs = RunRegistry().list_runs()  # one ordinary run, written by rank 0 only
    assert len(runs) == 1 and runs[0].status == "finished" and len(runs[0].metrics) == 2
    history_single = json.loads((Path(single["run_dir"]) / "history.json").read_text())
    assert abs(runs[0].metrics[-1]["train_loss"] - history_single[-1]["train_loss"]) < 1e-4
