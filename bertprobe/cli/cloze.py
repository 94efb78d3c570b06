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
    from bertprobe.api import cloze_items, note_special_tokens

    items, name = cloze_items(data, cloze_set)
    lm = common.load("mlm")
    result = note_special_tokens(cloze.evaluate(lm, items, top_k=top_k, cloze_set=name), lm, [i["text"] for i in items])
    for notice in result.notices:
        if notice not in lm.notices:  # the loader's own were printed when it loaded
            render.notice(notice)
    render.show(result, json=common.json, seed=common.seed)
