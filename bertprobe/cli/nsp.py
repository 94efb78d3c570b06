"""``bertprobe nsp``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bertprobe.cli.app import command
from bertprobe.cli.learner import ExplainOpt
from bertprobe.cli.options import Common, count
from bertprobe.cli.texts import OnBad, OnBadOpt, OutOpt, refuse_table_options


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
    input_file: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            help="csv / tsv / jsonl with sentence_a and sentence_b (-.jsonl, -.csv, -.tsv: stdin as that table): "
            "each pair scored as `nsp A B` would score it (JSON Lines with --json or --out), batched.",
            show_default=False,
        ),
    ] = None,
    on_bad: OnBadOpt = OnBad.stop,
    out: OutOpt = None,
    show: Annotated[int, typer.Option("--show", help="Pairs listed in the table (0: all).", **count(0))] = 20,
    explain: ExplainOpt = False,
    *,
    common: Common,
) -> None:
    """Next Sentence Prediction: the probability BERT's NSP head gives that B follows A.

    Example: bertprobe nsp "I was hungry." "So I made a sandwich."
    """
    from bertprobe import nsp, render
    from bertprobe.api import check_nsp_sources, note_special_tokens, nsp_pairs
    from bertprobe.errors import InputError

    check_nsp_sources(first, second, pairs, shuffle, input_file)
    if input_file is not None or out is not None:
        if pairs is not None or shuffle is not None:
            raise InputError(
                "--out writes the pairs of --input FILE", hint="e.g. nsp --input pairs.csv --out nsp.jsonl"
            )
        refuse_table_options(explain=explain)
        _many(common, first, second, input_file, on_bad.value, out, show)
        return
    pair_list, truth, lines, source, mode = nsp_pairs(first, second, pairs, shuffle, common.seed)
    lm = common.load("nsp")
    with render.progress_bar("NSP", enabled=not common.json and len(pair_list) > 64) as progress:
        result = nsp.score(lm, pair_list, truth, lines, source=source, mode=mode, progress=progress)
    for notice in note_special_tokens(result, lm, pair_list).notices:
        if notice not in lm.notices:  # the loader's own were printed when it loaded
            render.notice(notice)
    if common.json:
        render.show(result, json=True, seed=common.seed)
    else:
        from bertprobe.render.nsp import nsp_table

        nsp_table(result, render.out(), show=show, explain=explain)


def _many(
    common: Common,
    first: str | None,
    second: str | None,
    input_file: str | None,
    on_bad: str,
    out: Path | None,
    show: int,
) -> None:
    """``--input FILE``: every pair as ``nsp A B`` would score it, batched, as JSON Lines and a summary."""
    from bertprobe import inputs
    from bertprobe.cli.texts import run_many

    columns = inputs.Columns(text=("sentence_a",), pair=("sentence_b",), option="--input")
    if input_file is not None:
        source = inputs.TextSource(path=input_file, columns=columns)
    else:
        source = inputs.TextSource([first or ""], pairs=[second or ""])

    def compute(lm: Any, items: list[inputs.InputText], progress: Any) -> list[Any]:
        from bertprobe import nsp

        pair_list = [(item.text, item.pair or "") for item in items]
        chance = nsp.is_next_probabilities(lm, pair_list, progress=progress)
        # Each record names where its pair came from, as `nsp --pairs FILE` names it (not "arguments", line null).
        where = str(input_file) if input_file is not None else "arguments"
        return [
            nsp.score(lm, [pair], lines=[item.line], source=where, probabilities=[p])
            for pair, item, p in zip(pair_list, items, chance, strict=True)
        ]

    def problem(lm: Any) -> inputs.Problem:
        from bertprobe.nsp import pair_problem

        too_long = inputs.length_problem(lm, pair=True)

        def check(item: inputs.InputText) -> tuple[str | None, int]:
            reason, work = too_long(item)
            return (reason or pair_problem(lm, item.text, item.pair or "")), work

        return check

    run_many(
        common,
        "nsp",
        source,
        compute,
        problem,
        on_bad=on_bad,
        out=out,
        show=show,
        title="nsp",
        summarise=lambda result: [f"{result.pairs[0].second}", _probability(result.pairs[0].is_next_probability)],
        columns=[("sentence B", "left"), ("P(B follows A)", "right")],
        closing=lambda: ["P(B follows A) is what the NSP head gives; at 0.5 or above it predicts that B follows A."],
    )


def _probability(value: float) -> str:
    """P(B follows A) for the summary table: never "0.500" for 0.4996 beside "at 0.5 or above it predicts ..."."""
    from bertprobe.render import probability

    return probability(value, 3, cuts=(0.5,))
