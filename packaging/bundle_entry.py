"""PyInstaller entry point of the one-folder bundle: the same `main` as the `workbench` console script.

No arguments opens the desktop app; a subcommand (`train`, `app --quit-after-show`, …) runs it headless.
"""

from __future__ import annotations

import multiprocessing
import sys

from workbench.__main__ import main

if __name__ == "__main__":
    # A frozen program must let multiprocessing children (spawned DataLoader workers) run their task
    # instead of starting the app again.
    multiprocessing.freeze_support()
    sys.exit(main())
