"""The ``bertprobe`` command line. Only this package imports typer.

Each command lives in a module of its own that registers itself on ``app``; the
modules are imported here so that ``bertprobe --help`` lists them all.
"""

from bertprobe.cli import fillmask, models  # noqa: F401  (registers the commands)
from bertprobe.cli.app import app, main

__all__ = ["app", "main"]
