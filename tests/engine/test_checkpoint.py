import pickle

import pytest
import torch

from workbench.engine.errors import WeightsError, WorkbenchError
from workbench.engine.training import checkpoint as ckpt


def _payload():
    model = torch.nn.Linear(4, 3)
    return {
        "model": "tiny",
        "classes": ["a", "b", "c"],
        "epoch": 2,
        "model_state": model.state_dict(),
        "rng": ckpt.capture_rng_state(),
    }


def test_round_trip_keeps_weights_and_rng(tmp_path):
    payload = _payload()
    path = ckpt.save_checkpoint(tmp_path / "last.pt", payload)
    loaded = ckpt.load_checkpoint(path)
    assert loaded["classes"] == ["a", "b", "c"] and loaded["epoch"] == 2
    assert torch.equal(loaded["model_state"]["weight"], payload["model_state"]["weight"])
    # Restoring the saved RNG state replays the same random numbers.
    ckpt.restore_rng_state(payload["rng"])
    first = torch.rand(3)
    torch.rand(10)  # move the generator on
    ckpt.restore_rng_state(loaded["rng"])
    assert torch.equal(torch.rand(3), first)


class _CreatesFile:
    """Unpickling this runs `open(target, 'w')`: the classic malicious-checkpoint payload."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    victim = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    torch.save(
        {"format": ckpt.FORMAT, "model_state": {}, "payload": _CreatesFile(str(victim))},
        evil,
        pickle_module=pickle,
    )
    assert not victim.exists()
    with pytest.raises(WeightsError, match="refused"):
        ckpt.load_checkpoint(evil)
    assert not victim.exists()


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt"):
        ckpt.load_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(2)}, plain)
    with pytest.raises(WeightsError, match="not a CNN Workbench checkpoint"):
        ckpt.load_checkpoint(plain)
    with pytest.raises(WeightsError, match="no such file"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint(tmp_path / "last.pt", _payload())
    before = path.read_bytes()

    real_write_atomic = ckpt.write_atomic

    def disk_full(target, write):  # the file write fails half-way, as Python's I/O would on ENOSPC
        def half_then_fail(f):
            f.write(b"partial")
            raise OSError(28, "No space left on device")

        real_write_atomic(target, half_then_fail)

    monkeypatch.setattr(ckpt, "write_atomic", disk_full)
    with pytest.raises(WorkbenchError, match="No space left on device.*previous checkpoint is untouched"):
        ckpt.save_checkpoint(path, {**_payload(), "epoch": 3})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind
