"""The Model tab's choice, kept with each dataset's settings: a model's name, or "" for "Let the workbench
choose" (the row then shows the engine's pick, which must not come back as the user's own), and the
starting weights of the user's own model. A saved choice waits until the zoo is listed, then is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.app.model.panel import ModelPanel

CHOSEN_MODEL = "chosen_model"
STARTING_POINT = "starting_point"  # the Model tab's starting weights for the user's own model


class ModelChoiceMemory:
    def __init__(self, panel: ModelPanel) -> None:
        self._panel = panel
        self._model: str | None = None  # a saved choice not yet shown (None: what the panel shows stands)
        self._start: Any = None  # the starting weights saved with it

    @property
    def pending(self) -> bool:
        return self._model is not None

    def choice(self) -> str:
        """The user's model, or "" when the workbench chooses; a saved one still waiting counts."""
        if self._model is not None:
            return self._model
        return self._panel.chosen_model() or ""

    def fields(self) -> dict[str, Any]:
        """What goes into the dataset's settings."""
        start = self._start if self.pending else self._panel.start_from.state()
        return {CHOSEN_MODEL: self.choice(), STARTING_POINT: start}

    def hold(self, stored: Mapping[str, Any]) -> bool:
        """Keep the choice saved in `stored` until `show_pending`; False when it saved none (older files)."""
        if CHOSEN_MODEL not in stored:
            return False
        self._model = stored[CHOSEN_MODEL] if isinstance(stored[CHOSEN_MODEL], str) else ""
        self._start = stored.get(STARTING_POINT)
        return True

    def restore(self, stored: Mapping[str, Any]) -> bool:
        """`hold`, then show it at once if the zoo is already listed."""
        held = self.hold(stored)
        self.show_pending()
        return held

    def show_pending(self) -> None:
        """The held choice: the user's model (box unticked) with its starting weights, or the box ticked."""
        choice, panel = self._model, self._panel
        if choice is None:
            return
        if choice == "":
            self._model = None
            panel.automatic.setChecked(True)
        # select_model is the user's pick (it unticks the box); a listed zoo without the model (renamed,
        # removed) leaves the panel's default
        elif panel.select_model(choice):
            self._model = None
            panel.start_from.restore(self._start)  # after the model: it says if ImageNet weights exist
        elif panel.model_names():
            self._model = None
