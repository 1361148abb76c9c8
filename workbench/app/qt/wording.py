"""The engine's messages in the app's words. The engine names an option inside a message as a `Mention`
(`errors.Text`); the CLI says it as a flag (`--img-size 32`), the app as the control that sets it ("Image size
32"), labelled as the option's declaration says (`config.label`) and placed on its tab. Nothing here reads the
CLI's wording back: a message is said from its parts, and plain text (a message that names no option) is shown
as it is.
"""

from __future__ import annotations

from workbench.engine.errors import Action, Mention, worded
from workbench.engine.training import config

# Options set outside the Train tab's form: the tab that holds their control.
TABS = {
    "model": "Model tab",
    "weights": "Model tab",
    "pretrained": "Model tab",
    "strategy": "Model tab",
    "unfreeze": "Model tab",
    "similar_to_imagenet": "Model tab",
    "data": "Dataset tab",
}


def control_label(option: str) -> str:
    """The control's label, with its tab where it is not on the Train tab: "Strategy (Model tab)"."""
    where = TABS.get(option)
    return config.label(option) + (f" ({where})" if where else "")


# What the app offers for each of the engine's suggested actions (errors.ACTIONS: the CLI's commands).
ACTION_CONTROLS = {
    "continue": "Continue training (Train tab)",
    "start_from": "a new run that starts from it (Model tab: Starting weights)",
    "delete": "Delete in the Runs tab",
}


def control_name(mention: Mention | Action) -> str:
    """One option named in a message, as the app's control: "Image size 32", "unticking “mixed precision”";
    an action as the button that does it."""
    if isinstance(mention, Action):
        return ACTION_CONTROLS[mention.kind]
    label = control_label(mention.option)
    if isinstance(mention.value, bool) and not mention.as_given:  # a switch: the box ticked or not
        return f"{'ticking' if mention.value else 'unticking'} “{label}”"
    return f"{label} {mention.shown()}" if mention.has_value else label


def app_message(message: object) -> str:
    """An engine message (an exception, an event's text or reason) with every option said as its control."""
    return worded(message, control_name)


def said(message: object) -> str:
    """A message in the app's words where it names options as Mentions; plain text as it is."""
    return worded(message, control_name)


def error_message(exc: BaseException) -> str:
    return app_message(exc)

