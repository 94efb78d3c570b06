"""``bertprobe nsp``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import Common, count


@command("nsp")
def nsp_cli(
    first: Annotated[str | None, typer.Argument(help="Sentence A.", show_default=False)] = None,
    second: Annotated[str | None, typer.Argument(help="Sentence B: does it follow A?", show_default=False)] = None,
    pairs: Annotated[
        Path | None,
        typer.Option("--pairs", help="csv / tsv / jsonl with sentence_a, sentence_b and optional is_next (1/0)."),
    ] = None,
    shuffle: Annotated[
        Path | None,
        typer.Option(
            "--shuffle",
            help="Text file of consecutive sentences (one per line): score true next sentences against random "
            "ones, 50/50 and seeded, as BERT was trained.",
        ),
    ] = None,
    show: Annotated[int, typer.Option("--show", help="Pairs listed in the table (0: all).", **count(0))] = 20,
    *,
    common: Common,
) -> None:
    """Next Sentence Prediction: the probability BERT's NSP head gives that B follows A.

    Example: bertprobe nsp "I was hungry." "So I made a sandwich."
    """
    from bertprobe import nsp, render
    from bertprobe.errors import InputError

    given = sum(x is not None for x in (pairs, shuffle)) + (first is not None)
    if given != 1 or (first is not None and second is None):
        raise InputError(
            "give two sentences, or --pairs FILE, or --shuffle FILE (exactly one of them)",
            hint='e.g. bertprobe nsp "I was hungry." "So I made a sandwich."',
        )
    if pairs is not None:
        pair_list, truth, lines = nsp.read_pairs(pairs)
        source, mode = str(pairs), "pairs"
    elif shuffle is not None:
        pair_list, truth = nsp.shuffled_pairs(nsp.read_sentences(shuffle), common.seed)
        lines, source, mode = None, str(shuffle), "shuffle"
    else:
        pair_list, truth, lines, source, mode = [(first, second)], None, None, "arguments", "pairs"
    lm = common.load("nsp")
    with render.progress_bar("NSP", enabled=not common.json and len(pair_list) > 64) as progress:
        result = nsp.score(lm, pair_list, truth, lines, source=source, mode=mode, progress=progress)
    if common.json:
        render.show(result, json=True, seed=common.seed)
    else:
        from bertprobe.render.nsp import nsp_table

        nsp_table(result, render.out(), show=show)
