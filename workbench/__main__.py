"""`workbench` with no arguments opens the desktop app; with a subcommand it runs headless."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("app", "gui"):
        from workbench.app.launch import main as launch_app

        return launch_app(args[1:])
    from workbench.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
