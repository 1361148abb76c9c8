"""How a run ended is stored with the options it names, so each client says them its own way: the CLI's
`workbench runs` as flags (`--img-size 32`), the app's Runs tab as controls ("Image size 32")."""

from __future__ import annotations

from workbench.app.qt.wording import app_message
from workbench.app.runs.table import COLUMNS
from workbench.app.runs.view import RunsView
from workbench.cli.main import main
from workbench.engine.errors import Mention, Text, WorkbenchError, stored_text, text_from_stored
from workbench.engine.runs import RunRegistry
from workbench.engine.training import trainer
from workbench.engine.training.config import TrainConfig


def test_a_failed_runs_reason_names_its_option_in_each_clients_words(
    fmnist_folder, tmp_path, monkeypatch, capsys, qtbot
):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    # A real run that fails at its first step with an error naming an option, as an out-of-memory one does.
    def fail(*args, **kwargs):
        raise WorkbenchError("the step needs more memory than is free: lower ", Mention("batch_size", 8))

    monkeypatch.setattr(trainer, "train_step", fail)
    config = TrainConfig(data=str(fmnist_folder), model="course_cnn", epochs=1)
    finished = list(trainer.Trainer(config).run())[-1]
    assert finished.status == "failed" and finished.run_id, finished
    stored = RunRegistry().get(finished.run_id).reason  # read back from registry.sqlite
    assert "needs more memory" in stored
    said = app_message(stored)
    assert said.endswith("lower Batch size 8") and "--batch-size" not in said, said
    assert main(["runs"]) == 0
    listed = capsys.readouterr().out
    assert finished.run_id in listed and "lower --batch-size 8" in listed, listed

    view = RunsView()  # the Runs tab: the status cell's tip and the run's details
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.runs_listed, timeout=10_000):
        view.refresh()
    status = view.table.item(view.row_of(finished.run_id), COLUMNS.index("status"))
    assert status.text() == "failed" and status.toolTip().endswith("lower Batch size 8")
    view.open_run(finished.run_id)
    assert "(the step needs more memory than is free: lower Batch size 8)" in view.details.text()


def test_stored_text_round_trips_and_anything_else_reads_as_it_is():
    text = Text("use ", Mention("img_size", 32), " or ", Mention("amp", False), ' in "C:\\x"')
    back = text_from_stored(stored_text(text))
    assert isinstance(back, Text) and back.parts == text.parts and back == text
    assert stored_text("plain words") == "plain words" == text_from_stored("plain words")
    for damaged in ('{"cnn-workbench-text": 5}', '{"cnn-workbench-text": [{"option": 3}]}', '{"cnn-workbench-text'):
        assert text_from_stored(damaged) == damaged
