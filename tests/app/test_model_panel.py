"""The model picker lists the real zoo, searches it, and shows the engine's summary at the dataset's size."""

from __future__ import annotations

import contextlib
import threading
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QPushButton

from workbench.app.dataset.scan import DatasetSummary
from workbench.app.model.panel import SOURCE_PRETRAINED, SOURCE_SCRATCH, ModelPanel
from workbench.app.model.zoo_info import DownloadCancelled
from workbench.app.model.zoo_table import INPUT_COLUMN
from workbench.app.qt.dialogs import ERROR_DIALOG_NAME


def _summary(size: int, channels: int, classes: int, train: int) -> DatasetSummary:
    names = [f"c{i}" for i in range(classes)]
    return DatasetSummary(
        folders=["/data/x"],
        classes=names,
        counts={"train": dict.fromkeys(names, train // classes)},
        items=[],
        problems=[],
        typical_size=size,
        channels=channels,
    )


def _panel_on(qtbot, dataset: DatasetSummary, preferred: str | None = None) -> ModelPanel:
    """A model panel with the zoo loaded (`preferred` selected) and `dataset` set, as after a folder is opened."""
    panel = ModelPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo(preferred=preferred)
    panel.set_dataset(dataset)
    return panel


def test_zoo_search_and_lenet_summary(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000) as loaded:
        panel.load_zoo(preferred="lenet5")
    assert loaded.args[0] >= 10
    names = panel.model_names()
    assert {"course_cnn", "lenet5", "resnet18_small", "vgg16"} <= set(names)

    qtbot.waitUntil(lambda: panel.selected_model() == "lenet5", timeout=10_000)
    # The course's LeNet-5 at 28×28×1: 61,706 parameters, from the engine's summary.
    qtbot.waitUntil(lambda: "61,706" in panel.totals.text(), timeout=30_000)
    assert "input 1×28×28" in panel.totals.text()
    assert panel.summary_layer_names()[0].startswith("conv") or panel.summary_table.rowCount() >= 5

    # Parameters and MACs at the dataset's size fill in for every model (the table is on screen).
    qtbot.waitUntil(lambda: panel.sizes_known() == loaded.args[0], timeout=120_000)
    lenet_row = panel.model_names().index("lenet5")
    assert panel.zoo_filter.index(lenet_row, 3).data() == "61.7 K"

    panel.search.setText("vgg")
    assert panel.model_names() and all("vgg" in name for name in panel.model_names())
    panel.search.setText("2014")  # the year, as the search box's placeholder suggests: VGG and GoogLeNet
    assert {"vgg16", "googlenet"} <= set(panel.model_names()) and "lenet5" not in panel.model_names()
    panel.search.setText("")
    panel.pretrained_only.setChecked(True)
    assert "lenet5" not in panel.model_names() and "resnet18" in panel.model_names()
    panel.pretrained_only.setChecked(False)
    panel.shutdown()


def test_transfer_options_follow_the_weights_source_and_advisor(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo(preferred="resnet18")
    panel.set_dataset(_summary(64, 3, 5, 500))
    assert panel.transfer_options() == {"pretrained": False, "weights": None, "strategy": "fine-tune-all"}

    panel.pretrained_radio.setChecked(True)
    qtbot.waitUntil(lambda: panel.advice_label.text().startswith("Advisor:"), timeout=30_000)
    options = panel.transfer_options()
    # 500 images like ImageNet's: the course's scenario 1, a feature extractor.
    assert options["pretrained"] is True
    assert options["strategy"] == "feature-extractor"
    assert "few" in panel.advice_label.text()
    panel.shutdown()


def test_weights_already_on_disk_are_not_offered_for_download(qtbot):
    """efficientnet_lite0's ImageNet weights ship in a pip package: nothing to download, and the button says so."""
    panel = ModelPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo(preferred="efficientnet_lite0")
    qtbot.waitUntil(lambda: panel.selected_model() == "efficientnet_lite0", timeout=10_000)
    assert panel.automatic.isChecked() and not panel.start_from.isEnabled()  # the engine chooses weights
    # The greyed radios are the user's settings for later, not the run's: the box's title says so.
    assert "yours, used once you untick" in panel.start_from.title()
    panel.automatic.click()  # the user takes over
    assert panel.start_from.isEnabled() and panel.chosen_model() == "efficientnet_lite0"
    assert panel.start_from.title() == "Starting weights and transfer learning"
    panel.pretrained_radio.setChecked(True)
    qtbot.waitUntil(lambda: panel.download_button.text() == "Weights on disk", timeout=30_000)
    assert not panel.download_button.isEnabled()
    assert "efficientnet-lite0" in panel.download_button.toolTip()
    assert panel.findChild(QProgressDialog) is None
    panel.shutdown()


def test_by_default_the_workbench_chooses_until_the_user_picks_a_model(qtbot):
    panel = ModelPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo()
    assert panel.selected_model() is None  # no dataset: nothing to choose for yet
    panel.set_dataset(_summary(28, 1, 10, 60_000))
    qtbot.waitUntil(lambda: panel.selected_model() == "compact_vgg", timeout=30_000)  # the engine's pick
    assert panel.automatic.isChecked() and panel.chosen_model() is None  # TrainConfig(model=None)
    row = panel.table.visualRect(panel.zoo_filter.index(2, 0)).center()
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=row)
    assert not panel.automatic.isChecked()
    assert panel.chosen_model() == panel.selected_model() is not None
    panel.shutdown()


def test_the_summary_of_the_engines_few_image_choice_is_the_network_it_will_build(qtbot):
    """200 small gray images: the engine picks EfficientNet-Lite0 with stage 1's taps, whose head reads
    1280 + 13,856 features. The summary shows that network, as the parameter split beside it counts it."""
    panel = _panel_on(qtbot, _summary(28, 1, 10, 200))
    qtbot.waitUntil(lambda: panel.engine_choice() == "efficientnet_lite0", timeout=30_000)
    # 3,383,242 without the taps; the split beside it (151,370 train in stage 1) counts the tapped network too.
    qtbot.waitUntil(lambda: "151,370" in panel.totals.text(), timeout=60_000)
    assert panel.totals.text().startswith("<b>3,521,802</b> parameters (<b>151,370</b> trainable")
    panel.shutdown()


def test_a_remembered_pick_comes_back_unless_it_is_what_the_engine_chooses(qtbot):
    """The window remembers the last selected model; the engine's own choice must not turn into a user's pick."""
    user = ModelPanel()
    qtbot.addWidget(user)
    with qtbot.waitSignal(user.zoo_loaded, timeout=60_000):
        user.load_zoo(preferred="lenet5")
    user.set_dataset(_summary(28, 1, 10, 60_000))  # the engine would train compact_vgg
    qtbot.waitUntil(lambda: not user.automatic.isChecked(), timeout=30_000)
    assert user.chosen_model() == "lenet5"
    user.shutdown()

    engine = _panel_on(qtbot, _summary(28, 1, 10, 60_000), preferred="compact_vgg")
    qtbot.waitUntil(lambda: engine.engine_choice() == "compact_vgg", timeout=30_000)
    assert engine.automatic.isChecked() and engine.chosen_model() is None
    assert engine.selected_model() == "compact_vgg"
    engine.shutdown()


# ---- the weights download as a background job: progress dialog, Cancel, errors -----------------------------


def _download_panel(qtbot, monkeypatch, fake_download):
    """A model panel with efficientnet_lite0 picked by the user, whose downloads run `fake_download(name,
    progress, should_stop)` in the engine's place (no network in tests)."""
    import workbench.app.model.zoo_info as zoo_info

    monkeypatch.setattr(zoo_info, "download_weights", fake_download)
    panel = ModelPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo(preferred="efficientnet_lite0")
    qtbot.waitUntil(lambda: panel.selected_model() == "efficientnet_lite0", timeout=10_000)
    panel.automatic.click()
    return panel


def test_cancelling_a_download_stops_it_closes_the_dialog_and_reports_nothing(qtbot, monkeypatch):
    stopped = threading.Event()

    def endless_download(name, progress, should_stop):
        done = 0
        while True:
            done += 1 << 20
            progress(done, 100 << 20)  # the engine raises from here once should_stop() says so
            if should_stop():
                stopped.set()
                raise DownloadCancelled(f"download of {name}'s weights cancelled")
            time.sleep(0.01)

    panel = _download_panel(qtbot, monkeypatch, endless_download)
    messages: list[str] = []
    panel.status_message.connect(messages.append)
    panel.download_selected_weights()
    dialog = panel.findChild(QProgressDialog)
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.value() >= 2, timeout=10_000)  # the worker's progress reaches the dialog
    panel.download_selected_weights()
    assert len(panel.findChildren(QProgressDialog)) == 1  # one download at a time
    qtbot.mouseClick(dialog.findChild(QPushButton), Qt.MouseButton.LeftButton)  # its Cancel button
    assert stopped.wait(5)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    qtbot.wait(100)
    assert panel.findChild(QMessageBox, ERROR_DIALOG_NAME) is None
    assert not any("ready" in message for message in messages)
    panel.shutdown()


def test_a_failed_download_is_reported_and_the_download_can_be_tried_again(qtbot, monkeypatch):
    from workbench.engine.errors import WeightsError

    def offline(name, progress, should_stop):
        raise WeightsError("cannot download the weights: no network")

    def visible(kind: type) -> list:
        return [w for w in panel.findChildren(kind) if w.isVisible()]

    panel = _download_panel(qtbot, monkeypatch, offline)
    for attempt in (1, 2):  # the failure leaves the panel ready to try again
        panel.download_selected_weights()
        qtbot.waitUntil(lambda attempt=attempt: len(visible(QMessageBox)) == attempt, timeout=10_000)
        box = visible(QMessageBox)[-1]
        assert box.objectName() == ERROR_DIALOG_NAME and box.windowTitle() == "Download failed"
        assert box.text() == "cannot download the weights: no network"
        assert not box.detailedText()  # the user's problem to fix, not a bug: no traceback
        qtbot.waitUntil(lambda: not visible(QProgressDialog), timeout=10_000)
    panel.shutdown()


def test_every_zoo_column_is_readable_at_the_default_window_size(qtbot):
    """#14: the Input column (and Pretrained after it) used to be cut at the table's right edge."""
    from workbench.app.model.panel import SUMMARY_MIN_WIDTH
    from workbench.app.model.zoo_table import INPUT_COLUMN
    from workbench.app.window.main_window import DEFAULT_SIZE, MainWindow
    from workbench.app.window.settings import AppSettings

    win = MainWindow(AppSettings(), offer_sample=False)
    qtbot.addWidget(win)
    win.resize(*DEFAULT_SIZE)
    win.show()
    qtbot.waitExposed(win)
    qtbot.waitUntil(lambda: win.started, timeout=10_000)
    panel = win.model_panel
    qtbot.mouseClick(win.tabs.tabBar(), Qt.MouseButton.LeftButton, pos=win.tabs.tabBar().tabRect(1).center())
    assert win.tabs.currentWidget() is panel
    qtbot.waitUntil(lambda: panel.zoo.rowCount() >= 10, timeout=60_000)
    table, header = panel.table, panel.table.horizontalHeader()
    qtbot.waitUntil(lambda: table.viewport().width() > 300, timeout=5_000)
    visible = table.viewport().width()
    for column in range(header.count()):
        name = panel.zoo.headerData(column, Qt.Orientation.Horizontal)
        assert table.columnViewportPosition(column) + table.columnWidth(column) <= visible, name
        assert table.columnWidth(column) >= table.sizeHintForColumn(column), name
    assert table.columnWidth(INPUT_COLUMN) >= header.sectionSizeHint(INPUT_COLUMN)
    assert panel.layer_summary.width() >= SUMMARY_MIN_WIDTH  # the layer summary beside it keeps its room
    win.shutdown_workers()


def test_a_bug_in_the_model_summary_shows_a_dialog_named_after_it(qtbot, monkeypatch):
    """#14: a failing background job's dialog names the job ("Model summary failed"), not "Unexpected error"."""
    from workbench.app.model import zoo_info

    def broken_summary(*args, **kwargs):
        raise RuntimeError("summary hook failed")

    monkeypatch.setattr(zoo_info, "summary_for", broken_summary)
    panel = ModelPanel()
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.zoo_loaded, timeout=60_000):
        panel.load_zoo()
    row = panel.model_names().index("lenet5")
    rect = panel.table.visualRect(panel.zoo_filter.index(row, 0))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.selected_model() == "lenet5"
    qtbot.waitUntil(lambda: panel.findChild(QMessageBox, ERROR_DIALOG_NAME) is not None, timeout=30_000)
    box = panel.findChild(QMessageBox, ERROR_DIALOG_NAME)
    assert box.windowTitle() == "Model summary failed"
    assert "summary hook failed" in box.text() and "Traceback" in box.detailedText()
    box.close()
    panel.shutdown()


def test_the_summary_of_the_users_own_pick_is_at_the_side_the_engine_will_train_it(qtbot):
    """The user picks EfficientNet-Lite0 for 200 small gray images. From ImageNet weights the engine trains it
    at a pretrained side (96–224 px by its time budget) with stage 1's taps; from scratch at its minimum,
    32 px. The summary follows the weights source, as the run will."""
    from workbench.engine.models import get_spec
    from workbench.engine.models.catalog import default_choice

    panel = _panel_on(qtbot, _summary(28, 1, 10, 200), preferred="efficientnet_lite0")
    qtbot.waitUntil(lambda: panel.selected_model() == "efficientnet_lite0", timeout=30_000)
    qtbot.waitUntil(lambda: "input 1×224×224" in panel.totals.text(), timeout=60_000)  # the engine's choice
    panel.set_weights_source(SOURCE_SCRATCH)
    panel.automatic.click()  # the user takes over, from scratch: the summary follows at once
    qtbot.waitUntil(lambda: "input 1×32×32" in panel.totals.text(), timeout=60_000)
    panel.set_weights_source(SOURCE_PRETRAINED)
    planned = default_choice(28, 1, 200, model="efficientnet_lite0", pretrained=True)
    assert planned.img_size >= 96 and planned.model_args.get("taps")
    side = planned.img_size
    qtbot.waitUntil(lambda: f"input 1×{side}×{side}" in panel.totals.text(), timeout=60_000)
    assert panel.totals.text().startswith("<b>3,521,802</b> parameters")  # the tapped head: 15,136 → 10
    # Beside it, the split the run will have: stage 1 trains the head, stage 2 the strategy's share.
    qtbot.waitUntil(lambda: "stage 1 trains only the new head" in panel.totals.text(), timeout=60_000)
    assert "<b>151,370</b> trainable, <b>3,370,432</b> frozen" in panel.totals.text()

    panel.set_weights_source(SOURCE_SCRATCH)
    scratch = get_spec("efficientnet_lite0").input_size_for(28)
    assert scratch == 32
    qtbot.waitUntil(lambda: "input 1×32×32" in panel.totals.text(), timeout=60_000)
    assert panel.totals.text().startswith("<b>3,383,242</b> parameters")  # no taps without a stage 1
    # The zoo table's Input column gives that side too.
    row = panel.model_names().index("efficientnet_lite0")
    assert panel.zoo_filter.index(row, INPUT_COLUMN).data() == "32px"
    panel.shutdown()


def test_a_saved_starting_point_comes_back_only_where_it_still_holds(qtbot):
    """An earlier run is chosen once the runs are listed (they load in the background) and only if it still
    exists; ImageNet weights only for a model that has them."""
    from types import SimpleNamespace

    from workbench.app.model.start_from import SOURCE_FILE, SOURCE_RUN, StartFromBox

    def runs(*ids: str) -> list[SimpleNamespace]:
        return [SimpleNamespace(run_id=i, model="course_cnn", status="finished", best_val_acc=0.9) for i in ids]

    box = StartFromBox()
    qtbot.addWidget(box)
    saved = {"source": SOURCE_RUN, "weights_file": "/data/w.pth", "run": "run-b"}
    box.restore(saved)
    assert box.source() == SOURCE_SCRATCH and box.weights_path.text() == "/data/w.pth"
    assert box.state()["run"] == "run-b"  # still wanted: saving now must not forget it
    box.set_runs(runs("run-a", "run-b"))
    assert box.source() == SOURCE_RUN and box.run_combo.currentData() == "run-b" and box.state() == saved

    gone = StartFromBox()
    qtbot.addWidget(gone)
    gone.restore(saved)
    gone.set_runs(runs("run-a"))  # the run was deleted since
    assert gone.source() == SOURCE_SCRATCH

    gone.pretrained_radio.setEnabled(False)  # a model without ImageNet weights
    gone.restore({"source": SOURCE_PRETRAINED})
    assert gone.source() == SOURCE_SCRATCH
    gone.restore({"source": SOURCE_FILE})
    assert gone.source() == SOURCE_FILE
    gone.restore("not a dict")  # a damaged settings file changes nothing
    assert gone.source() == SOURCE_FILE


def test_the_numbers_the_clients_quote_are_the_engines(qtbot, capsys):
    """The crossover to pretrained weights, the pretrained input sides and the run length from which shifts
    are used are the engine's (training/policy.py), in the app's tooltips and in the CLI's help alike."""
    from workbench.app.model.zoo_table import COLUMN_TIPS
    from workbench.app.training.hyperparameters import HyperparameterForm
    from workbench.cli import main
    from workbench.engine.training.config import TrainConfig
    from workbench.engine.training.defaults import resolve_defaults
    from workbench.engine.training.policy import FEW_IMAGES, PRETRAINED_SIZES, SHIFT_FROM_EPOCHS

    panel, form = ModelPanel(), HyperparameterForm()
    qtbot.addWidget(panel)
    qtbot.addWidget(form)
    assert f"below {FEW_IMAGES:,} training images an ImageNet-pretrained" in panel.automatic.toolTip()
    assert f"({min(PRETRAINED_SIZES)}–{max(PRETRAINED_SIZES)} px)" in COLUMN_TIPS["Input"]
    assert f"small shifts for runs of {SHIFT_FROM_EPOCHS} epochs or more" in form.augment_auto.toolTip()
    with contextlib.suppress(SystemExit):
        main(["train", "--help"])
    assert f"frozen below {FEW_IMAGES:,} images" in " ".join(capsys.readouterr().out.split())
    # …and the engine acts on the same numbers.
    chosen = {
        n: resolve_defaults(TrainConfig(data="x"), typical_size=28, channels=1, num_train_images=n)[0]
        for n in (FEW_IMAGES - 1, FEW_IMAGES)
    }
    assert chosen[FEW_IMAGES - 1].pretrained and chosen[FEW_IMAGES - 1].freeze_bn_stats
    assert not chosen[FEW_IMAGES].pretrained and chosen[FEW_IMAGES].img_size not in PRETRAINED_SIZES


def test_no_model_is_timed_while_the_app_trains_and_the_untimed_ones_are_timed_after(qtbot, monkeypatch):
    """Timed beside a training run, resnet18 came out 24× slower than resnet50, and the figure was kept."""
    from PySide6.QtWidgets import QWidget

    from workbench.app.model.zoo_size_sweep import ZooSizeSweep
    from workbench.engine.models import catalog, get_spec

    timed: list[str] = []
    monkeypatch.setattr(catalog, "ms_per_image", lambda name, size, channels: timed.append(name) or 1.5)
    owner = QWidget()
    qtbot.addWidget(owner)
    owner.show()
    rows: dict[str, object] = {}
    sweep = ZooSizeSweep(owner, lambda row: rows.__setitem__(row.name, row))
    specs = {name: get_spec(name) for name in ("lenet5", "course_cnn")}
    sweep.set_training(True)
    sweep.start(specs, (28, 1, 10))
    qtbot.waitUntil(lambda: sweep.known((28, 1, 10)) == 2 and not sweep._job.busy, timeout=60_000)
    assert timed == [] and all(row.ms_per_image is None and row.macs for row in rows.values())
    sweep.set_training(False)  # the run ended: the two rows are timed, their sizes not computed again
    qtbot.waitUntil(lambda: all(row.ms_per_image == 1.5 for row in rows.values()), timeout=60_000)
    assert sorted(timed) == ["course_cnn", "lenet5"]
    sweep.stop()
