"""``bertprobe cloze``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import MAX_TOP_K, Common, count


@command("cloze")
def cloze_cli(
    data: Annotated[
        Path | None,
        typer.Option("--data", help='jsonl of {"text": "... [MASK] ...", "answers": [...]} (default: built-in set).'),
    ] = None,
    cloze_set: Annotated[
        str,
        typer.Option(
            "--set",
            help="Built-in sentences: builtin (60) or heldout (112, never trained or tuned on).",
        ),
    ] = "builtin",
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", help="Predictions that count for precision@k.", **count(1, MAX_TOP_K))
    ] = 5,
    *,
    common: Common,
) -> None:
    """How often the masked-LM puts an acceptable word first (precision@1) or in its top k.

    Example: bertprobe cloze --set heldout --model bert-base-uncased
    """
    from bertprobe import cloze, render
    from bertprobe.errors import InputError

    if cloze_set not in cloze.SETS:
        raise InputError(f"--set {cloze_set!r} is not one of {', '.join(cloze.SETS)}", hint="e.g. --set heldout")
    if data is not None and cloze_set != "builtin":
        raise InputError("give --data or --set, not both", hint="--data FILE scores your own sentences.")
    items = cloze.read_items(data) if data else cloze.builtin_items(cloze_set)
    lm = common.load("mlm")
    result = cloze.evaluate(lm, items, top_k=top_k, cloze_set=str(data) if data else cloze_set)
    render.show(result, json=common.json, seed=common.seed)
