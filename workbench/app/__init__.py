"""The desktop client: a PySide6 window over the headless engine, one sub-package per tab of the window.

`window/` builds the main window and composes the tabs: `dataset/`, `model/`, `training/`, `evaluation/`,
`predictions/`, `inspector/` and `runs/`, one each, in the window's order. The tabs never import one another:
whatever passes between them (a run to evaluate, an image to inspect, settings to clone) is wired by the
window. `qt/` holds what several tabs share (background workers, dialogs, plots, the run picker, lazy
widgets) and imports nothing else of the app. tests/app/test_app_structure.py keeps it so.

Importing this package imports no Qt and no torch; `workbench.app.window.launch.main` starts the window.
"""
