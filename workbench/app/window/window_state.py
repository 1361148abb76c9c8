"""What the main window keeps between launches (through AppSettings): its geometry and dock state, the
current tab, the training form's hyperparameters and the last model picked.

The functions are handed the settings and the widgets they save or restore, never the whole window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget

    from workbench.app.training.hyperparameters import HyperparameterForm
    from workbench.app.window.settings import AppSettings

LAST_RESTORED_TAB = 2  # dataset, model or training: the result tabs need a run first
MIN_PANE = 40  # a restored pane smaller than this (pixels) was collapsed by accident: the defaults instead


def restore_window_settings(
    settings: AppSettings, window: QMainWindow, tabs: QTabWidget, form: HyperparameterForm
) -> None:
    geometry = settings.geometry()
    if geometry is not None:
        window.restoreGeometry(geometry)
    state = settings.window_state()
    if state is not None:
        window.restoreState(state)
    form.set_values(settings.hyperparameters())
    tabs.setCurrentIndex(min(settings.current_tab(), LAST_RESTORED_TAB))


def save_hyperparameters(settings: AppSettings, form: HyperparameterForm) -> None:
    settings.set_hyperparameters(form.to_settings())


def save_window_settings(
    settings: AppSettings,
    window: QMainWindow,
    tabs: QTabWidget,
    form: HyperparameterForm,
    model: str | None,
) -> None:
    """Everything at once, as the window closes; `model` is the one selected in the Model tab (if any)."""
    settings.set_geometry(window.saveGeometry())
    settings.set_window_state(window.saveState())
    settings.set_current_tab(min(tabs.currentIndex(), LAST_RESTORED_TAB))
    save_hyperparameters(settings, form)
    if model:
        settings.set_last_model(model)
    settings.sync()


def restore_splitter(settings: AppSettings, name: str, splitter: QSplitter) -> bool:
    """The sizes the user left `splitter` at, if they are sensible: one per pane, every pane visible and each
    at least its minimum (a curves pane squeezed to a sliver is not restored); else the defaults stay."""
    sizes = settings.splitter_sizes(name)
    if len(sizes) != splitter.count():
        return False
    vertical = splitter.orientation().name == "Vertical"
    for index, size in enumerate(sizes):
        pane = splitter.widget(index)
        minimum = pane.minimumHeight() if vertical else pane.minimumWidth()
        if size < max(MIN_PANE, minimum):
            return False
    splitter.setSizes(sizes)
    return True


def save_splitter(settings: AppSettings, name: str, splitter: QSplitter) -> None:
    sizes = splitter.sizes()
    if sizes and all(size > 0 for size in sizes):  # not yet laid out, or collapsed: keep what was saved
        settings.set_splitter_sizes(name, sizes)
