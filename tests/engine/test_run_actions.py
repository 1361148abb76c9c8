"""The run actions (continue, resume, train again, clone) on real runs: what each builds, and that the CLI and
the same action taken in code leave the registry in the same state."""

from __future__ import annotations

import json

import pytest

from workbench.cli.main import main
from workbench.engine.runs import RunRegistry
from workbench.engine.training import run_actions
from workbench.engine.training.config import TrainConfig


@pytest.fixture
def data(fmnist_folder_factory):
    return fmnist_folder_factory(6, 2)


def _train(data, epochs: int = 1, **extra) -> str:
    config = TrainConfig(data=str(data), model="course_cnn", epochs=epochs, batch_size=16, seed=0, **extra)
    finished = list(run_actions.new_run(config).trainer().run())[-1]
    assert finished.status == "finished", finished.reason
    return finished.run_id


def _state(run_id: str) -> tuple[str, int, list[int]]:
    record = RunRegistry().get(run_id)
    return record.status, record.config["epochs"], [row["epoch"] for row in record.metrics]


def test_continue_trains_the_same_run_and_matches_the_cli(data, capsys):
    in_code = _train(data)
    finished = list(run_actions.continue_or_resume(in_code, more=1).trainer().run())[-1]
    assert finished.status == "finished" and finished.run_id == in_code

    by_cli = _train(data)
    assert main(["train", "--resume", by_cli, "--epochs", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["run_id"] == by_cli

    assert _state(in_code) == _state(by_cli) == ("finished", 2, [1, 2])
    assert [row["epoch"] for row in run_actions.run_history(in_code, up_to_epoch=1)] == [1]


def test_each_action_builds_what_it_says(data):
    run_id = _train(data)
    record = RunRegistry().get(run_id)

    go_on = run_actions.continue_or_resume(run_id, epochs=5)
    assert (go_on.kind, go_on.resume, go_on.config.epochs) == (run_actions.CONTINUE, run_id, 5)
    assert run_actions.continue_run(run_id).config.epochs == 2  # neither given: as many again

    again = run_actions.train_again(run_id, TrainConfig(data=str(data), model="course_cnn", epochs=3))
    assert again.resume is None and again.config.weights == run_id and not again.config.pretrained

    cloned = run_actions.clone(record)
    assert cloned.resume is None and cloned.config.model == "course_cnn"
    assert cloned.config.img_size == record.config["img_size"] and cloned.config.epochs == 1
    settings = run_actions.clone_settings(record)
    assert settings["model"] == "course_cnn" and "weights" in settings and settings["img_size"]


def test_continue_refusal_is_the_trainers_own_rule_said_before_any_work(data):
    run_id = _train(data)
    record = RunRegistry().get(run_id)
    refused = run_actions.continue_refusal(record)  # finished all its epochs, none asked for: nothing to train
    assert refused is not None and "already finished its 1 epoch; set --epochs to more than 1" in str(refused)
    by_trainer = list(run_actions.continue_or_resume(run_id).trainer().run())[-1]
    assert by_trainer.status == "failed" and str(refused) in by_trainer.reason  # what the trainer would say
    assert "set --epochs to how many more epochs to train" in str(run_actions.continue_refusal(record, more=0))
    assert "already trained 1 epoch(s)" in str(run_actions.continue_refusal(record, epochs=1))
    assert run_actions.continue_refusal(record, more=1) is None
    assert run_actions.continue_refusal(record, epochs=2) is None
    assert RunRegistry().get(run_id).status == "finished"


def test_a_stopped_run_resumes_to_its_own_epochs(data):
    config = TrainConfig(data=str(data), model="course_cnn", epochs=2, batch_size=16, seed=0)
    trainer = run_actions.new_run(config).trainer()
    for event in trainer.run():
        if type(event).__name__ == "StepEnded":
            trainer.stop()
    record = RunRegistry().get("last")
    assert record.status == "stopped"
    action = run_actions.continue_or_resume(record.run_id, more=0)
    assert action.kind == run_actions.RESUME and action.resume == record.run_id
    finished = list(action.trainer().run())[-1]
    assert finished.status == "finished" and finished.run_id == record.run_id
    assert _state(record.run_id) == ("finished", 2, [1, 2])


def test_plan_preview_names_model_size_and_epochs():
    plan = run_actions.preview_plan(
        TrainConfig(data=".", model="course_cnn", epochs=3), typical_size=28, channels=1, num_train_images=120
    )
    assert "course_cnn" in plan.sentence and "3 epochs" in plan.sentence and "28 px" in plan.sentence
    assert any("image size" in note for note in plan.notes)
    assert not plan.instant_model  # from scratch: no stage 1, nothing for "quick" to stop after


def test_plan_preview_says_when_a_run_starts_with_the_instant_model_and_what_quick_leaves_out():
    few = {"typical_size": 28, "channels": 1, "num_train_images": 120}
    full = run_actions.preview_plan(TrainConfig(data="."), **few)  # the default for a few images: LP-FT
    assert full.instant_model and "(stage 1), then" in full.sentence and "(stage 2)" in full.sentence
    quick = run_actions.preview_plan(TrainConfig(data=".", quick=True), **few)
    assert quick.instant_model and "(stage 1)" in quick.sentence and "stage 2" not in quick.sentence


def test_going_on_with_a_quick_run_is_its_first_fine_tuning_and_only_that():
    from workbench.engine.runs.rows import RunRecord

    def record(config: dict, epochs: list[int]) -> RunRecord:
        return RunRecord("r", "", "finished", "efficientnet_lite0", "d", config, [{"epoch": e} for e in epochs],
                         0.0, 0.0, "/nowhere", None, None)  # fmt: skip

    quick = {"quick": True, "linear_probe": True, "epochs": 10}
    assert run_actions.continuing_fine_tunes(record(quick, [0]))  # stage 1 only: going on fine-tunes it
    assert not run_actions.continuing_fine_tunes(record(quick, [0, 1]))  # continued once: it trains more epochs
    assert not run_actions.continuing_fine_tunes(record({**quick, "quick": False}, [0]))  # an LP-FT run stopped
    assert not run_actions.continuing_fine_tunes(record({**quick, "linear_probe": False}, [0]))  # no stage 1
