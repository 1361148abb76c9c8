"""`workbench` with no arguments (or with dataset folders) opens the desktop app; with a subcommand it runs
headless."""

from __future__ import annotations

import os
import sys

SUBCOMMANDS = {"train", "eval", "predict", "runs", "lr-find", "data", "models", "summary", "export", "feature-maps",
               "filters", "gradcam"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # `workbench ~/photos` opens the app on that folder; a subcommand always wins over a folder of its name.
    opens_folders = bool(args) and args[0] not in SUBCOMMANDS and all(os.path.isdir(a) for a in args)
    if not args or args[0] in ("app", "gui") or opens_folders:
        from workbench.app.launch import main as launch_app

        return launch_app(args if opens_folders else args[1:])
    from workbench.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
