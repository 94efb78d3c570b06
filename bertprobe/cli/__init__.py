"""The ``bertprobe`` command line. Only this package imports typer.

Each command lives in a module of its own that registers itself on ``app`` through
``bertprobe.cli.app.command``; every module of this package is imported here so that
``bertprobe --help`` lists them all. Command modules import torch and the core only
inside their functions, which keeps ``--help`` fast.
"""

import importlib
import pkgutil

from bertprobe.cli.app import app, main

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in {"app", "options"}:
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["app", "main"]
