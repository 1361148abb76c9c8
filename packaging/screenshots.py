"""Screenshots of the real window for the README and the AppStream page (developer tooling, not shipped).

Run from the repository root under a real X server:
    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python packaging/screenshots.py [OUT_DIR] [DATASET]

It uses a throw-away WORKBENCH_HOME, opens the bundled sample dataset (or DATASET), and saves one picture per
view into OUT_DIR (resources/screenshots by default): the dataset browser, its map and review pages, the model
picker with a summary, the training panel after a short run, then the evaluation view, predictions for a few
test images, the feature-map inspector (maps and Grad-CAM) and the run history for that run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.app.inspector.view import InspectorView
    from workbench.app.model.panel import ModelPanel
    from workbench.app.window.main_window import MainWindow

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "resources" / "screenshots"


def _wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QApplication.processEvents()
        if condition():
            return True
        time.sleep(0.02)
    return False


def _settle(seconds: float) -> None:
    _wait_until(lambda: False, seconds)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else DEFAULT_OUT
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="workbench-screens-")
    from PySide6.QtWidgets import QApplication

    from workbench.app.qt.style import apply_style
    from workbench.app.window.main_window import MainWindow
    from workbench.app.window.settings import sample_dataset_path

    dataset = Path(args[1]) if len(args) > 1 else sample_dataset_path()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    window = MainWindow(offer_sample=False, initial_folders=[str(dataset)])
    window.resize(1500, 920)
    window.show()
    out.mkdir(parents=True, exist_ok=True)

    def save(name: str) -> None:
        _settle(0.5)
        path = out / f"{name}.png"
        window.grab().save(str(path))
        print(f"saved {path}")

    panel = window.dataset_panel
    if not _wait_until(lambda: panel.summary is not None, 60):
        print(f"the dataset {dataset} did not load: {panel.error_label.text()}", file=sys.stderr)
        return 1
    _wait_until(lambda: window.model_panel.selected_model() is not None, 60)
    panel.class_filter.setCurrentText(
        "Ankle_boot" if "Ankle_boot" in panel.summary.classes else panel.summary.classes[0]
    )
    panel.class_filter.setCurrentIndex(0)
    panel.select_row(7)
    _wait_until(lambda: "px" in panel.preview_text(), 10)
    _wait_until(lambda: panel.thumbnails.cached_count() >= min(100, panel.thumbnails.rowCount()), 20)
    save("dataset-browser")
    _map_and_review(window, panel, save)

    models = window.model_panel
    window.tabs.setCurrentWidget(models)
    models.select_model("lenet5")
    _wait_until(lambda: "parameters" in models.totals.text(), 30)
    _wait_until(lambda: models.sizes_known() == models.zoo.rowCount(), 120)
    _wait_until(lambda: _speeds_known(models) == models.zoo.rowCount(), 180)  # ms/image, measured here
    save("model-picker")

    models.select_model("course_cnn")
    training = window.training_panel
    training.form.epochs.setValue(20)  # long enough that "live" is caught mid-run (curves arrive at 2 Hz)
    training.form.batch_size.setValue(32)
    window.tabs.setCurrentWidget(training)
    training.start()
    _wait_until(lambda: len(training.plots.series("val_acc")[1]) >= 5, 300)
    save("training-live")
    _wait_until(lambda: training.state in ("finished", "stopped", "failed"), 300)
    save("training-finished")
    if training.last_run_id:
        _result_views(window, training.last_run_id, save)
    window.close()
    return 0


def _map_and_review(window: MainWindow, panel: Any, save: Callable[[str], None]) -> None:
    """The dataset map coloured by class with one point's hover card, and the review list (issue 15)."""
    from PySide6.QtCore import QPointF

    panel.centre_tabs.setCurrentIndex(1)
    panel.start_analysis()
    if not _wait_until(lambda: panel.analysis is not None, 600):
        print("the dataset map did not finish in 10 minutes", file=sys.stderr)
        return
    view, analysis = panel.dataset_map, panel.analysis
    _settle(0.5)
    x, y = (float(v) for v in analysis.xy[len(analysis.xy) // 3])
    view.hover_at(view.view_box.mapViewToScene(QPointF(x, y)))
    _settle(1.0)  # the hover thumbnail decodes in the background
    view.hover_at(view.view_box.mapViewToScene(QPointF(x, y)))
    save("dataset-map")
    panel.centre_tabs.setCurrentIndex(2)
    _settle(1.0)
    save("dataset-review")
    panel.centre_tabs.setCurrentIndex(0)


def _result_views(window: MainWindow, run_id: str, save: Callable[[str], None]) -> None:
    """The evaluation view with a confusion cell open, the inspector on a mid-level convolution, the runs."""
    evaluation = window.evaluation_view
    window.tabs.setCurrentWidget(evaluation)
    evaluation.set_run(run_id)
    _wait_until(lambda: evaluation.runs.current_run_id() == run_id, 30)
    evaluation.evaluate(run_id)
    _wait_until(lambda: evaluation.interpretation is not None and not evaluation.busy, 300)
    interpretation = evaluation.interpretation
    if interpretation is None:
        print(f"the evaluation of {run_id} failed: {evaluation.summary.text()}", file=sys.stderr)
        return
    confused = interpretation.most_confused()
    if confused:
        classes = interpretation.classes
        evaluation.show_cell(
            classes.index(confused[0].true_class), classes.index(confused[0].predicted_class)
        )
    save("evaluation")

    predictions = window.predictions_view  # one test image of each of the first six classes
    window.tabs.setCurrentWidget(predictions)
    predictions.set_run(run_id)
    _wait_until(lambda: predictions.runs.current_run_id() == run_id, 30)
    firsts: dict[str, str] = {}
    for outcome in interpretation.top_losses(largest=False):
        firsts.setdefault(outcome.true_class, outcome.path)
    predictions.predict(list(firsts.values())[:6])
    _wait_until(lambda: predictions.table.rowCount() > 0 and not predictions.busy, 120)
    save("predictions")

    inspector = window.inspector_view
    window.tabs.setCurrentWidget(inspector)
    inspector.set_run(run_id)
    _wait_until(lambda: inspector.inspector is not None, 60)
    outcomes = interpretation.top_losses(largest=False)  # an image the model is sure about
    inspector.set_image(outcomes[0].path)
    convolutions = [name for name in inspector.layer_names() if name in _conv_names(inspector)]
    layer = convolutions[min(1, len(convolutions) - 1)]
    inspector.select_layer(layer)
    _wait_until(lambda: inspector.pictures is not None and inspector.pictures.layer == layer, 60)
    inspector.grid.setCurrentRow(0)
    save("inspector")

    inspector.pages.setCurrentIndex(2)
    _wait_until(lambda: inspector.cam is not None, 60)
    save("inspector-gradcam")

    window.tabs.setCurrentWidget(window.runs_view)
    _wait_until(lambda: window.runs_view.table.rowCount() > 0, 30)
    window.runs_view.open_run(window.runs_view.run_ids()[0])
    save("runs")


def _speeds_known(models: ModelPanel) -> int:
    """How many zoo rows show their measured milliseconds per image (not yet: "…")."""
    from workbench.app.model.zoo_table import SPEED_COLUMN

    return sum(models.zoo.value(name, SPEED_COLUMN) not in ("…", "") for name in models.model_names())


def _conv_names(inspector: InspectorView) -> set[str]:
    return {node.name for node in inspector.inspector.layer_tree().walk() if node.kind == "conv"}


if __name__ == "__main__":
    sys.exit(main())
