"""The engine's messages in the app's words: its hints name command-line flags (`--img-size 32`), the app
names the control that sets the same option (Image size 32) instead.

The option → control names come from the form's labels (`hyperparameters.GROUPS`) and the Model tab's
controls; an OptionError (`.option`, `.value`, `.allowed`) becomes "<label> <value>: <what is allowed>".
"""

from __future__ import annotations

import re

from workbench.app.training.hyperparameters import GROUPS
from workbench.engine.errors import OptionError

CONTROLS: dict[str, str] = {name: label for rows in GROUPS.values() for name, label in rows}
CONTROLS.update(
    {
        "model": "the model (Model tab)",
        "weights": "Start from (Model tab)",
        "strategy": "the strategy (Model tab)",
        "unfreeze": "the unfrozen blocks (Model tab)",
        "domain": "'images look like ImageNet photos' (Model tab)",
        "tta": "Test on image + mirror",
        "amp": "Mixed precision",
        "grad_clip": "gradient clipping",
        "data": "the dataset (Dataset tab)",
    }
)
COMMANDS = (  # whole commands first: what the app does instead
    (re.compile(r"`?workbench train (?:\S+ )?--resume[^`]*`?"), "Continue training (Train tab)"),
    (re.compile(r"`?workbench train DATA --weights \S+?`?(?= |$)"), "a new run that starts from it (Model tab: Start from)"),
    (re.compile(r"`?workbench runs --delete [^`\s]+`?"), "Delete in the Runs tab"),
)
FLAG = re.compile(r"`?--([a-z][a-z0-9-]*)(?:[ =]((?!or\b|and\b|to\b)[^\s,;:)`]+))?`?")


def control_label(option: str) -> str:
    return CONTROLS.get(option, option.replace("_", " ").capitalize())


def _flag(match: re.Match[str]) -> str:
    option = match.group(1).removeprefix("no-").replace("-", "_")
    label = control_label(option)
    value = match.group(2)
    return f"{label} {value}" if value and not value.isupper() else label


def app_message(text: str) -> str:
    """`text` with every command-line hint replaced by the app control that does the same."""
    for pattern, words in COMMANDS:
        text = pattern.sub(words, text)
    return FLAG.sub(_flag, text)


def error_message(exc: Exception) -> str:
    if isinstance(exc, OptionError) and not exc.option.startswith("augment."):
        return f"{control_label(exc.option)} ({exc.value!r}): {exc.allowed}"
    return app_message(str(exc))
