"""bertprobe: see how BERT works from the command line, or from Python.

``bertprobe.load`` loads a model; one function per command runs it and returns the result the command
renders (``.to_dict()`` is its ``--json`` document, ``.show()`` prints its tables, notebooks show them):

    import bertprobe
    result = bertprobe.fill("The cat sat on the [MASK].", model="tiny-mlm")

Importing ``bertprobe`` stays light: torch and transformers load on the first call.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__version__ = "0.1.0"

# Commands whose function shares its name with the core module that implements it (``bertprobe.sense`` is
# both): the module is made callable, so ``bertprobe.sense("bank")`` runs the command and
# ``from bertprobe import sense`` still gives the module every other part of the package uses.
_CALLABLE_MODULES = ("score", "sense", "attribute", "attention", "nsp", "cloze", "pretrain")
_FUNCTIONS = ("fill", "cls_train", "cls_predict")

__all__ = ["__version__", "load", *_FUNCTIONS, *_CALLABLE_MODULES]


def load(spec: str = "auto", head: str = "encoder", *extra: Any, **options: Any) -> Any:
    """Load a model as every command does: ``bertprobe.load("bert-base-uncased", head="mlm")``.

    Options: ``revision``, ``device`` (auto|cpu|cuda|mps), ``dtype``, ``offline``. The result's
    ``backend`` is the contract the commands use; pass it as ``model=`` to any command function.
    Importing ``bertprobe`` stays light: torch and transformers load on the first call.
    """
    from bertprobe import api, render
    from bertprobe.errors import InputError
    from bertprobe.models import HEADS
    from bertprobe.models import load as _load
    from bertprobe.models.spec import DEVICES, DTYPES

    if extra:  # load("tiny-mlm", "mlm", "cpu"): Python's own TypeError would not say which options there are
        raise InputError(
            f"bertprobe.load() takes the model and its head by position, its options by name ({len(extra)} more "
            "given by position)",
            hint='e.g. bertprobe.load("tiny-mlm", "mlm", device="cpu"); its options: revision, device, dtype, offline.',
        )
    if head not in HEADS:
        raise InputError(f"head={head!r} is not one of {', '.join(HEADS)}", hint='e.g. head="mlm" for fill-mask')
    spec = api._spec(spec)
    api._text("spec", spec, optional=False)
    unknown = sorted(set(options) - {"revision", "device", "dtype", "offline"})
    if unknown:
        raise InputError(
            f"bertprobe.load() takes no {', '.join(unknown)}", hint="Its options: revision, device, dtype, offline."
        )
    api._flag("offline", options.get("offline", False))
    api._text("revision", options.get("revision"))
    api._choice("device", options.get("device"), DEVICES)
    api._choice("dtype", options.get("dtype"), DTYPES)
    with api.left_as_found():  # the loader seeds nothing, but transformers' own loading draws and logs
        lm = _load(spec, head, **options, fresh=True)  # the user's own: edits to it never reach a call by name
    for notice in lm.notices:  # announced as every command announces them (e.g. what "auto" chose)
        render.notice(notice)
    return lm


# The arguments pass through as given: bertprobe.api checks them, so a missing or misspelt one is an InputError
# naming the option meant, not this wrapper's TypeError.
def fill(*args: Any, **options: Any) -> Any:
    """``bertprobe fillmask`` in Python: ``fill(text, **options)``; see :func:`bertprobe.api.fill` for the options."""
    from bertprobe import api

    return api.fill(*args, **options)


def cls_train(*args: Any, **options: Any) -> Any:
    """``bertprobe cls-train`` in Python: ``cls_train(**options)``; see :func:`bertprobe.api.cls_train`."""
    from bertprobe import api

    return api.cls_train(*args, **options)


def cls_predict(*args: Any, **options: Any) -> Any:
    """``bertprobe cls-predict`` in Python: ``cls_predict(probe_dir, texts, **options)``; see
    :func:`bertprobe.api.cls_predict` for the options."""
    from bertprobe import api

    return api.cls_predict(*args, **options)


class _CommandModule(types.ModuleType):
    """A core module that, called, runs its command through ``bertprobe.api``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from bertprobe import api

        return getattr(api, self.__name__.rsplit(".", 1)[-1])(*args, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # The import system binds each submodule on its package: make the command modules callable there.
        if name in _CALLABLE_MODULES and type(value) is types.ModuleType:
            value.__class__ = _CommandModule
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_MODULES:  # bertprobe.sense(...) before anything imported bertprobe.sense
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


sys.modules[__name__].__class__ = _Package
