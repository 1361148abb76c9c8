"""What the main window keeps between launches (through AppSettings): its geometry and dock state, the
current tab, the training form's hyperparameters and the last model picked."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.app.main_window import MainWindow

LAST_RESTORED_TAB = 2  # dataset, model or training: the result tabs need a run first


def restore_window_settings(window: MainWindow) -> None:
    settings = window.settings
    geometry = settings.geometry()
    if geometry is not None:
        window.restoreGeometry(geometry)
    state = settings.window_state()
    if state is not None:
        window.restoreState(state)
    window.training_panel.form.set_values(settings.hyperparameters())
    window.tabs.setCurrentIndex(min(settings.current_tab(), LAST_RESTORED_TAB))


def save_hyperparameters(window: MainWindow) -> None:
    window.settings.set_hyperparameters(window.training_panel.form.to_settings())


def save_window_settings(window: MainWindow) -> None:
    settings = window.settings
    settings.set_geometry(window.saveGeometry())
    settings.set_window_state(window.saveState())
    settings.set_current_tab(min(window.tabs.currentIndex(), LAST_RESTORED_TAB))
    save_hyperparameters(window)
    model = window.model_panel.selected_model()
    if model:
        settings.set_last_model(model)
    settings.sync()
