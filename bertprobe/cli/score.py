"""``bertprobe score``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import Common
from bertprobe.cli.texts import BatchSizeOpt, InputOpt, OnBad, OnBadOpt, ShowOpt, TextColumnOpt

# Spelled out here (not imported from bertprobe.score) so `--help` stays light; a test checks they agree.
Metric = Enum("Metric", {m: m for m in ("original", "within-word-l2r")}, type=str)
Unk = Enum("Unk", {u: u for u in ("skip", "score")}, type=str)

METRIC_HELP = (
    "original: each token masked on its own (Salazar et al. 2020). within-word-l2r: when scoring a word piece, "
    "also mask the later pieces of the same word (Kauf & Ivanova 2023). Prefer within-word-l2r to compare "
    "sentences: with only one piece masked, the other pieces of a long word give it away, so rare words split "
    "into many pieces score far too well under original; use original to match older published numbers."
)
UNK_HELP = (
    "skip: leave [UNK] tokens out of the PLL, like [CLS] and [SEP] and like fillmask --mode each (the probability "
    "of 'unknown' says nothing about the word that was there). score: score them like any token, as minicons does."
)


@command("score")
def score_cli(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts to score (or --input FILE / --pairs FILE).", show_default=False)
    ] = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="Minimal pairs: BLiMP jsonl (sentence_good, sentence_bad, UID / linguistics_term) or csv / tsv / "
            "jsonl with good and bad columns (-.jsonl, -.csv, -.tsv: stdin). Accuracy = share of pairs whose good "
            "sentence scores higher.",
            show_default=False,
        ),
    ] = None,
    group_column: Annotated[
        str | None,
        typer.Option(
            "--group-column",
            help="(--pairs) Column that groups the pairs; default phenomenon, else UID, else linguistics_term, "
            "when present.",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[Metric, typer.Option("--metric", help=METRIC_HELP)] = Metric.original,
    unk: Annotated[Unk, typer.Option("--unk", help=UNK_HELP)] = Unk.skip,
    batch_size: BatchSizeOpt = 4096,
    on_bad: OnBadOpt = OnBad.stop,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the results to this file, atomically: all of it or nothing. JSON Lines, one object per "
            "text (a run stopped part-way keeps its finished chunks beside it: the same command again resumes "
            "after them); with --pairs, one JSON document (the accuracy and every pair).",
            show_default=False,
        ),
    ] = None,
    show: ShowOpt = 20,
    *,
    common: Common,
) -> None:
    """Score sentences: pseudo-log-likelihood, pseudo-perplexity and per-token scores; or minimal-pair accuracy.

    Example: bertprobe score "The cat sat on the mat." "The cat sat on the mats."
    """
    from bertprobe import inputs
    from bertprobe.cli.texts import run_many
    from bertprobe.errors import InputError
    from bertprobe.score import check_options

    check_options(metric.value, unk.value, batch_size)
    if pairs is not None:
        if texts or input_file is not None or text_column is not None:
            raise InputError(
                "--pairs reads its own sentences: leave out TEXT, --input and --text-column",
                hint="e.g. bertprobe score --pairs blimp.jsonl",
            )
        _pairs(common, pairs, group_column, metric.value, unk.value, batch_size, on_bad.value, out, show)
        return
    if group_column is not None:
        raise InputError(
            "--group-column applies to --pairs", hint="e.g. bertprobe score --pairs pairs.csv --group-column phenomenon"
        )
    source = inputs.source_for(texts or [], input_file, text_column)

    def compute(lm: Any, items: list[Any], progress: Any) -> list[Any]:
        from bertprobe.score import score_texts

        labels = [f"{source.label}, line {i.line}" if i.line is not None else f"text {i.index}" for i in items]
        return score_texts(lm, [i.text for i in items], metric.value, unk.value, batch_size, progress, labels)

    def problem(lm: Any) -> Any:
        from bertprobe.score import text_problem

        return text_problem(lm, metric.value, unk.value)

    totals = {"texts": 0, "tokens": 0, "pll": 0.0}

    def summarise(result: Any) -> list[str]:
        from bertprobe.render.score import summary_cells

        totals["texts"] += 1
        totals["tokens"] += result.scored_tokens
        totals["pll"] += result.pll
        return summary_cells(result)

    def closing() -> list[str]:
        from bertprobe.render.score import corpus_lines

        return corpus_lines(totals["texts"], totals["tokens"], totals["pll"], metric.value)

    run_many(
        common,
        "mlm",
        source,
        compute,
        problem,
        on_bad=on_bad.value,
        out=out,
        show=show,
        title="score",
        summarise=summarise,
        closing=closing,
        columns=[("tokens", "right"), ("PLL", "right"), ("PLL/token", "right"), ("PPPL", "right")],
    )


def _pairs(
    common: Common,
    path: Path,
    group_column: str | None,
    metric: str,
    unk: str,
    batch_size: int,
    on_bad: str,
    out: Path | None,
    show: int,
) -> None:
    from bertprobe import distributed, inputs, render
    from bertprobe.api import note_special_tokens
    from bertprobe.errors import InputError
    from bertprobe.render.jsonl import check_out_path
    from bertprobe.score import MinimalPair, pair_problem, pairs_columns, pairs_result, score_pair_chunk

    if inputs.stdin_kind(path) is not None and distributed.launched():
        raise InputError(
            "--pairs - under torchrun: every process would read its own part of stdin",
            hint="Save the pairs to a file and pass --pairs FILE.",
        )
    place = distributed.world(getattr(common.device, "value", common.device))
    with inputs.TextSource(path=path, columns=pairs_columns(group_column)) as source:
        out = check_out_path(out, source.path)
        lm = common.load("mlm")
        problem = pair_problem(lm, metric, unk)
        checked = source.check(problem, on_bad)
        skipped = [f"{b.where(source.label)}: {b.reason}" for b in checked.bad]
        for line in skipped[: inputs.LISTED_BAD]:
            render.notice(f"skipped {line}")
        pair_list: list[MinimalPair] = []
        scores: list[Any] = []

        def compute(items: list[inputs.InputText]) -> list[Any]:
            return score_pair_chunk(lm, items, source.label, metric, unk, batch_size)

        with render.progress_bar("minimal pairs", enabled=not common.json and place.main) as progress:
            merged = distributed.ordered(source.chunks(checked), compute, place)
            for done, (item, (good, bad)) in enumerate(merged, start=1):
                pair_list.append(MinimalPair(item.text, item.pair or "", item.group, item.index, item.line))
                scores.extend((good, bad))
                progress(done, checked.good)
    distributed.finish(place)
    if not place.main:
        return
    found = source.found[2] if source.found else None
    result = pairs_result(lm, pair_list, scores, metric, unk, str(path), found, skipped)
    note_special_tokens(result, lm, [text for pair in pair_list for text in (pair.good, pair.bad)])
    for notice in result.notices:
        if notice not in lm.notices:
            render.notice(notice)
    if out is not None:
        from bertprobe.atomic import atomic_write

        atomic_write(out, render.dumps(render.to_document(result, common.seed)) + "\n")
        render.notice(f"Wrote the accuracy and {result.n} scored pairs to {out}")
        if common.json:
            return
    if common.json:
        render.show(result, json=True, seed=common.seed)
        return
    from bertprobe.render.score import pairs_table

    pairs_table(result, render.out(), show=show)
