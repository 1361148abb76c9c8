"""The headless client: `workbench train | eval | predict | runs | lr-find | data | models | summary`."""

from workbench.cli.main import main

__all__ = ["main"]
