"""Options shared by every command, declared once, and one validated type per kind of number.

A command asks for the shared options by taking a parameter named ``common``: ``cli.app.command``
replaces it in the signature with the ``--model ... --seed`` options listed in ``SHARED`` (or the
subset the command names) and hands the command one ``Common`` object built from them.

Numbers are checked when the command line is parsed, before any model is loaded: ``nan``, ``inf``,
values outside an option's range, and counts so large the run would never end are usage errors
(exit 2, one line and a hint).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

import typer

from bertprobe.models import DEVICES, DTYPES

# Typer shows an Enum's values as the option's choices.
Device = Enum("Device", {name: name for name in DEVICES}, type=str)
Dtype = Enum("Dtype", {name: name for name in DTYPES}, type=str)

SEED_MAX = 2**32 - 1  # numpy's and scikit-learn's random_state accept 0 .. 2**32 - 1
MAX_TOP_K = 100_000  # more than any vocabulary shown; a bigger number is a typo


class Count:
    """Parser of a whole number within ``[low, high]`` (``high`` keeps a typo like 10000000 from running for days)."""

    def __init__(self, low: int = 1, high: int | None = None) -> None:
        self.low, self.high = low, high

    def __call__(self, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = int(str(value).strip())
            except ValueError:
                raise typer.BadParameter(f"{value!r} is not a whole number{self.range()}") from None
        if number < self.low or (self.high is not None and number > self.high):
            raise typer.BadParameter(f"{number} is out of range{self.range()}")
        return number

    def range(self) -> str:
        return f" (at least {self.low})" if self.high is None else f" ({self.low} to {self.high})"


class Real:
    """Parser of a finite number in a range; ``nan`` and ``inf`` are always refused."""

    def __init__(
        self, low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False
    ) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def __call__(self, value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise typer.BadParameter(f"{value!r} is not a number{self.range()}") from None
        if not math.isfinite(number):
            raise typer.BadParameter(f"{value!r} is not a finite number{self.range()}")
        low_bad = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        high_bad = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if low_bad or high_bad:
            raise typer.BadParameter(f"{value} is out of range{self.range()}")
        return number

    def range(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f" (in {left}{self.low:g}, {self.high:g}{right})"
        if self.low is not None:
            return f" ({'above' if self.low_open else 'at least'} {self.low:g})"
        if self.high is not None:
            return f" ({'below' if self.high_open else 'at most'} {self.high:g})"
        return ""


MAX_LAYER = 10_000  # no BERT has more; a bigger number is a typo, refused before loading anything


def parse_layer(value: Any) -> int:
    """A layer: 0 = embedding output, 1..L = encoder layers, negative counts from the end (-1 = last).

    Whether it exists is checked once the model is loaded (the range depends on it).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a layer number (0 = embeddings, 1..L = layers, -1 = last)"
            ) from None
    if abs(number) > MAX_LAYER:
        raise typer.BadParameter(f"{number} is not a layer of any BERT model (0 = embeddings, -1 = last)")
    return number


def parse_c(value: Any) -> float | None:
    """``--C``: a positive, finite inverse regularisation strength, or ``auto`` (None: cross-validated)."""
    if value is None or str(value).strip().lower() == "auto":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (number > 0 and math.isfinite(number)):
        raise typer.BadParameter(f"{value!r} is not a positive number or 'auto' (e.g. --C 0.1, or --C auto)")
    return number


def count(low: int = 1, high: int | None = None) -> dict[str, Any]:
    """``typer.Option`` keywords for a whole number within ``[low, high]``."""
    return {"parser": Count(low, high), "metavar": "<int>"}


def real(
    low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False
) -> dict[str, Any]:
    """``typer.Option`` keywords for a finite number in a range."""
    return {"parser": Real(low, high, low_open, high_open), "metavar": "<float>"}


LAYER_HELP = "Layer: 0 = embedding output, 1..L = encoder layers, -1 = last (negative counts from the end)."
ATTENTION_LAYER_HELP = (
    "Drill into one layer: 1..L, -1 = last (negative counts from the end); there is no layer 0, "
    "the embedding output has no attention."
)


def layer_option(help: str = LAYER_HELP, *names: str) -> Any:
    """``typer.Option`` for ``--layer`` with the one meaning every command shares."""
    return typer.Option("--layer", *names, parser=parse_layer, metavar="<layer>", help=help, show_default=False)


LayerOpt = Annotated[int | None, layer_option()]

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Hub id, local checkpoint directory, or bundled name: minilm (encoder only), minilm-mlm (a masked "
        "LM) or tiny-mlm (a smaller, weaker masked LM). auto: $BERTPROBE_MODEL, else bert-base-uncased, else an "
        "offline model.",
    ),
]
RevisionOpt = Annotated[
    str | None, typer.Option("--revision", help="Hub branch, tag or commit of --model.", show_default=False)
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never touch the network (also set by HF_HUB_OFFLINE=1).")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto: cuda, then mps, then cpu.")]
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Weights' dtype (auto: float32).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        help=f"Seeds python, numpy, torch and scikit-learn (0 to {SEED_MAX}).",
        **count(0, SEED_MAX),
    ),
]

# name -> (annotation, default), in the order --help lists them.
SHARED: dict[str, tuple[Any, Any]] = {
    "model": (ModelOpt, "auto"),
    "revision": (RevisionOpt, None),
    "offline": (OfflineOpt, False),
    "device": (DeviceOpt, Device.auto),
    "dtype": (DtypeOpt, Dtype.auto),
    "json": (JsonOpt, False),
    "seed": (SeedOpt, 0),
}


@dataclass
class Common:
    """The options every command takes, and what they mean together."""

    model: str = "auto"
    revision: str | None = None
    offline: bool = False
    device: str | Enum = "auto"
    dtype: str | Enum = "auto"
    json: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.device = getattr(self.device, "value", self.device)
        self.dtype = getattr(self.dtype, "value", self.dtype)

    def load(self, head: str) -> Any:
        """Seed, load the model for ``head`` and announce any choice made for the user on stderr."""
        from bertprobe import models, render
        from bertprobe.seeding import seed_everything

        seed_everything(self.seed)
        lm = models.load(self.model, head, self.revision, self.device, self.dtype, self.offline)
        for notice in lm.notices:
            render.notice(notice)
        return lm


def with_shared_options(func: Any, names: tuple[str, ...] | None = None) -> tuple[inspect.Signature, Any]:
    """The signature ``func`` shows Typer (its ``common`` parameter replaced by the shared options) and
    a function that turns the parsed keyword arguments back into ``func``'s (with ``common=Common(...)``).

    A function without a ``common`` parameter is returned unchanged.
    """
    signature = inspect.signature(func, eval_str=True)
    if "common" not in signature.parameters:
        return signature, lambda kwargs: kwargs
    chosen = tuple(SHARED) if names is None else names
    unknown = [n for n in chosen if n not in SHARED]
    if unknown:
        raise TypeError(f"unknown shared options {unknown}")
    own = [p for p in signature.parameters.values() if p.name != "common"]
    clash = [p.name for p in own if p.name in chosen]
    if clash:
        raise TypeError(f"{func.__name__} declares shared options itself: {clash}")
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=SHARED[name][1], annotation=SHARED[name][0])
        for name in chosen
    ]
    # Typer reads every parameter by keyword; keyword-only keeps the order valid after defaultless arguments.
    own = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in own]
    new_signature = signature.replace(parameters=[*own, *added])

    def regroup(kwargs: dict[str, Any]) -> dict[str, Any]:
        shared = {name: kwargs.pop(name) for name in chosen if name in kwargs}
        kwargs["common"] = Common(**shared)
        return kwargs

    return new_signature, regroup
