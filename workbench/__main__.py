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
    if args and not opens_folders and _looks_like_folders(args):
        missing = next(a for a in args if not os.path.isdir(a))
        why = "is a file, not a folder" if os.path.exists(missing) else "no such folder"
        print(
            f"workbench: {missing}: {why}. Give dataset folders to open them in the app, or a command: "
            f"{', '.join(sorted(SUBCOMMANDS))} (workbench --help)",
            file=sys.stderr,
        )
        return 2
    if not args or args[0] in ("app", "gui") or opens_folders:
        from workbench.app.window.launch import main as launch_app

        return launch_app(args if opens_folders else args[1:])
    from workbench.cli import main as cli_main

    return cli_main(args)


def _looks_like_folders(args: list[str]) -> bool:
    """`workbench ~/photoz` (a typo) deserves "no such folder", not argparse's "invalid choice"."""
    first = args[0]
    if first in SUBCOMMANDS or first in ("app", "gui") or first.startswith("-"):
        return False
    return any(sep in first for sep in ("/", os.sep, ".")) or os.path.exists(first) or any(
        os.path.isdir(a) for a in args
    )


if __name__ == "__main__":
    sys.exit(main())
