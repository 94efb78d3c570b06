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
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", help="Predictions that count for precision@k.", **count(1, MAX_TOP_K))
    ] = 5,
    *,
    common: Common,
) -> None:
    """How often the masked-LM puts an acceptable word first (precision@1) or in its top k.

    Example: bertprobe cloze --model bert-base-uncased
    """
    from bertprobe import cloze, render

    items = cloze.read_items(data) if data else cloze.builtin_items()
    lm = common.load("mlm")
    render.show(cloze.evaluate(lm, items, top_k=top_k), json=common.json, seed=common.seed)
