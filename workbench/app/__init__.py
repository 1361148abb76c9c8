"""The desktop client: a PySide6 window over the headless engine (panels, workers, settings).

Importing this package imports no Qt and no torch; `workbench.app.launch.main` starts the window.
"""

from workbench.app import none_guard

none_guard.top_up()  # before any Qt call: see none_guard for the PySide6 6.12 / Python 3.11 bug
