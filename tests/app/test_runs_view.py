"""The runs view on real runs: the history lists them with their numbers, opening one draws its curves and
points the other views at it, several runs overlay on one plot, settings clone into the training panel, and
a run is deleted only after confirmation."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import Qt

from workbench.app.qt import dialogs
from workbench.app.runs.table import COLUMNS
from workbench.app.runs.view import RunsView
from workbench.app.window.main_window import MainWindow
from workbench.app.window.settings import AppSettings
from workbench.engine.runs import RunRegistry
from workbench.engine.training.config import TrainConfig
from workbench.engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def trained(fmnist_folder, tmp_path_factory) -> dict[str, object]:
    """Two real runs of course_cnn (1 epoch each) with different settings, in their own WORKBENCH_HOME."""
    home = tmp_path_factory.mktemp("runs-home")
    run_ids = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        for batch_size, lr in ((32, None), (64, 0.05)):
            config = TrainConfig(
                data=str(fmnist_folder), model="course_cnn", epochs=1, batch_size=batch_size, lr=lr, seed=0
            )
            finished = list(Trainer(config).run())[-1]
            assert finished.status == "finished", finished
            run_ids.append(finished.run_id)
    return {"home": str(home), "run_ids": run_ids}


@pytest.fixture(autouse=True)
def trained_home(trained, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", trained["home"])


def _listed(qtbot, view: RunsView, count: int) -> None:
    with qtbot.waitSignal(view.runs_listed, timeout=10_000):
        view.refresh()
    assert view.table.rowCount() == count


def test_history_lists_the_runs_and_opens_one_with_its_curves(qtbot, trained):
    view = RunsView()
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    _listed(qtbot, view, 2)
    first, second = trained["run_ids"]
    assert sorted(view.run_ids()) == sorted([first, second])
    record = RunRegistry().get(first)
    row = view.row_of(first)
    cells = {name: view.table.item(row, column).text() for column, name in enumerate(COLUMNS)}
    assert cells["model"] == "course_cnn" and cells["status"] == "finished"
    assert cells["best val acc"] == f"{record.best_val_acc:.1%}"
    assert cells["dataset"] == record.dataset

    rect = view.table.visualItemRect(view.table.item(row, 0))
    with qtbot.waitSignal(view.run_opened) as opened:
        # Qt opens on a double-click only after a press on the same cell, as a real double-click has
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened.args[0].run_id == first
    epochs, accuracy = view.plots.series("val_acc")
    assert list(accuracy) == pytest.approx([row["val_acc"] for row in record.metrics])
    assert first in view.details.text() and "course_cnn" in view.details.text()

    view.table.selectAll()
    view.compare_selected()
    assert sorted(view.comparison.run_ids()) == sorted([first, second])
    x, y = view.comparison.curves[second][0].getData()
    assert list(y) == pytest.approx([row["val_acc"] for row in RunRegistry().get(second).metrics])


def test_delete_asks_first_and_removes_the_run(qtbot, trained, monkeypatch):
    # a third, throw-away run so the other tests keep theirs
    config = TrainConfig(
        data=RunRegistry().get(trained["run_ids"][0]).config["data"],
        model="course_cnn",
        epochs=1,
        batch_size=64,
    )
    doomed = list(Trainer(config).run())[-1].run_id
    view = RunsView()
    qtbot.addWidget(view)
    _listed(qtbot, view, 3)
    answers = iter([False, True])
    monkeypatch.setattr(dialogs, "confirm", lambda *_args, **_kwargs: next(answers))
    view.table.selectRow(view.row_of(doomed))
    run_dir = RunRegistry().get(doomed).run_dir

    view.delete_selected()  # No
    assert doomed in [r.run_id for r in RunRegistry().list_runs()]
    with qtbot.waitSignal(view.run_deleted, timeout=10_000):
        view.delete_selected()  # Yes
    qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=10_000)
    assert doomed not in view.run_ids()
    assert doomed not in [r.run_id for r in RunRegistry().list_runs()]
    assert not os.path.exists(run_dir)


def test_opening_a_run_in_the_window_points_the_views_at_it_and_clone_copies_settings(qtbot, trained):
    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    second = trained["run_ids"][1]
    with qtbot.waitSignal(win.runs_view.runs_listed, timeout=10_000):
        win.tabs.setCurrentWidget(win.runs_view)
    win.runs_view.open_run(second)
    for view in (win.evaluation_view, win.predictions_view, win.inspector_view):
        qtbot.waitUntil(lambda view=view: view.runs.current_run_id() == second, timeout=10_000)

    win.runs_view.table.selectRow(win.runs_view.row_of(second))
    win.training_panel.form.batch_size.setValue(16)
    win.runs_view.buttons["clone"].click()
    assert win.tabs.currentWidget() is win.training_panel
    # the run's dataset is reopened first; its settings land once it has loaded
    qtbot.waitUntil(lambda: win.training_panel.form.values()["batch_size"] == 64, timeout=20_000)
    values = win.training_panel.form.values()
    assert values["batch_size"] == 64 and values["lr"] == pytest.approx(0.05)
    win.shutdown_workers()


# ---- #14: readable at the default window size, legends beside the data ---------------------------------------
def _columns_on_screen(table) -> list[str]:
    """The names of the columns that are cut at the table's right edge (or pushed past it)."""
    visible = table.viewport().width()
    return [
        COLUMNS[column]
        for column in range(table.columnCount())
        if table.columnViewportPosition(column) + table.columnWidth(column) > visible
        or table.columnViewportPosition(column) < 0
    ]


def test_every_column_is_readable_at_the_default_window_size_and_legends_sit_off_the_data(qtbot, trained):
    from workbench.app.runs.table import ELASTIC
    from workbench.app.window.main_window import DEFAULT_SIZE

    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.resize(*DEFAULT_SIZE)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    runs = win.runs_view
    with qtbot.waitSignal(runs.runs_listed, timeout=10_000):
        qtbot.mouseClick(win.tabs.tabBar(), Qt.MouseButton.LeftButton, pos=win.tabs.tabBar().tabRect(6).center())
    table = runs.table
    qtbot.waitUntil(lambda: table.rowCount() == 2 and table.viewport().width() > 500, timeout=10_000)
    assert not _columns_on_screen(table), _columns_on_screen(table)
    header = table.horizontalHeader()
    for column, name in enumerate(COLUMNS):
        if name not in ELASTIC:  # whole: as wide as its contents and its header (the elastic ones elide)
            wanted = max(table.sizeHintForColumn(column), header.sectionSizeHint(column))
            assert table.columnWidth(column) >= wanted, name
    test_acc = table.item(0, COLUMNS.index("test acc (best.pt)")).text()
    assert test_acc.endswith(")")  # "79.0% (single view)": shown whole

    # The run's curves: each legend sits beside its plot's title, never on the plot's data area.
    row = runs.row_of(trained["run_ids"][0])
    rect = table.visualItemRect(table.item(row, 0))
    with qtbot.waitSignal(runs.run_opened):
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    plots = runs.plots
    for plot in (plots.loss_plot, plots.acc_plot):
        qtbot.waitUntil(lambda plot=plot: plot.legend.sceneBoundingRect().width() > 0, timeout=5_000)
        assert len(plot.legend.items) >= 2
        assert not plot.legend.sceneBoundingRect().intersects(plot.vb.sceneBoundingRect())
    win.shutdown_workers()


def test_elastic_columns_give_up_exactly_the_excess_in_whole_pixels():
    from workbench.app.qt.column_fit import shares

    for total, room in ((10, {0: 3, 1: 3, 2: 3}), (7, {0: 100, 1: 1, 2: 50}), (1000, {0: 5, 1: 6}), (0, {0: 9})):
        cuts = shares(total, room)
        assert sum(cuts.values()) == min(total, sum(room.values()))  # never a pixel short of the edge
        assert all(0 <= cuts[c] <= room[c] for c in cuts)


def test_a_saved_two_stage_history_is_drawn_as_the_live_view_draws_it(qtbot):
    """Stage 1's training loss (its head's, near 0) is not the start of the training-loss curve, and the
    legend names no per-step curve when none is drawn (the steps are not saved)."""
    from workbench.app.qt.plots import TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 600)
    plots.show()
    qtbot.waitExposed(plots)  # drawn on screen: the curves give back what they draw
    history = [
        {"epoch": 0, "stage": "linear probe", "train_loss": 0.05, "train_acc": 1.0, "val_loss": 0.6, "val_acc": 0.8},
        {"epoch": 1, "train_loss": 0.71, "train_acc": 0.8, "val_loss": 0.65, "val_acc": 0.8, "lr": 0.003},
        {"epoch": 2, "train_loss": 0.55, "train_acc": 0.9, "val_loss": 0.6, "val_acc": 0.85, "lr": 0.001},
    ]
    plots.load_history(history)
    x, y = plots.series("smooth_loss")
    assert list(x) == [1, 2] and list(y) == pytest.approx([0.71, 0.55])
    assert 0 in plots.series("val_acc")[0]  # stage 1's validation point is drawn, as live
    names = [label.text for _sample, label in plots.loss_plot.legend.items]
    assert "train (per step)" not in names and "train (smoothed)" in names
    plots.clear()  # a live run next: its per-step curve is named again
    assert "train (per step)" in [label.text for _sample, label in plots.loss_plot.legend.items]


def test_a_refitted_instant_models_validation_figure_is_marked_and_explained(qtbot, tmp_path):
    """Its best val acc is the held-out head's (probe_stage.py); the saved model has seen those images."""
    from workbench.app.runs.table import row_cells
    from workbench.engine.evaluation.figures import HEAD_REFIT_ON_VAL
    from workbench.engine.runs.rows import RunRecord

    def record(metrics):
        return RunRecord("r1", "a run", "finished", "efficientnet_lite0", "data", {}, metrics, 0.0, 1.0,
                         str(tmp_path), None, 0.875)  # fmt: skip

    column = COLUMNS.index("best val acc")
    refitted = row_cells(record([{"epoch": 0, "best": True, HEAD_REFIT_ON_VAL: True}]), True)[column]
    assert refitted.text() == "87.5%*" and "the saved model has seen the validation images" in refitted.toolTip()
    # fine-tuning kept: the figure is its own
    tuned = row_cells(record([{"epoch": 0, "best": True, HEAD_REFIT_ON_VAL: True}, {"epoch": 1, "best": True}]), True)
    assert tuned[column].text() == "87.5%" and "best.pt" in tuned[column].toolTip()
