"""``bertprobe fillmask``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from bertprobe.cli.app import command
from bertprobe.cli.learner import DetailsOpt, ExplainOpt
from bertprobe.cli.options import MAX_TOP_K, Common, count, real
from bertprobe.cli.texts import InputOpt, OnBad, OnBadOpt, OutOpt, ShowOpt, TextColumnOpt, refuse_table_options

# Spelled out here (not imported from bertprobe.fillmask) so `--help` stays light; a test checks they agree.
Mode = Enum("Mode", {m: m for m in ("single", "word", "bert", "random", "whole-word", "span", "each")}, type=str)
Decode = Enum("Decode", {d: d for d in ("independent", "joint")}, type=str)
Replace = Enum("Replace", {r: r for r in ("bert", "mask")}, type=str)

MODE_HELP = (
    "single: the masks written in TEXT. word: mask every piece of --mask-word. "
    "bert: BERT's pretraining corruption of an unmasked TEXT (select --rate of the tokens, then 80% [MASK], "
    "10% random token, 10% kept). random: the same selection, all [MASK]. whole-word: select whole words. "
    "span: SpanBERT spans (geometric lengths, p=0.2, at most 10 words). each: mask every token in turn and "
    "score the text (pseudo-log-likelihood). Default: single, or word when --mask-word is given."
)


@command("fillmask")
def fillmask_cli(
    text: Annotated[
        str | None,
        typer.Argument(
            help="Text with one or more [MASK] (or the model's own mask token); unmasked for "
            "--mode word/bert/random/whole-word/span/each. Or many texts with --input.",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[Mode | None, typer.Option("--mode", help=MODE_HELP, show_default=False)] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Predictions shown per mask.", **count(1, MAX_TOP_K))] = 5,
    mask_word: Annotated[
        str | None,
        typer.Option("--mask-word", help="(word) The word whose pieces are masked.", show_default=False),
    ] = None,
    occurrence: Annotated[
        int | None,
        typer.Option(
            "--occurrence", help="(word) Mask only the N-th occurrence (1-based).", show_default=False, **count(1)
        ),
    ] = None,
    decode: Annotated[
        Decode,
        typer.Option(
            "--decode",
            help="(single, word) independent: each mask on its own, as the transformers pipeline does. joint: "
            "also fill all masks together (beam search, most confident first) and rank completions by their "
            "joint score = sum over masks of ln P(token | every other mask filled by the completion).",
        ),
    ] = Decode.independent,
    beam: Annotated[
        int | None,
        typer.Option(
            "--beam", help="(joint) Beam width and completions shown (default 5).", show_default=False, **count(1, 50)
        ),
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(
            "--targets",
            help="(single, word) Comma-separated candidate words to score in each mask, of any number of word "
            "pieces: score = product of each piece's probability with all the word's pieces masked and the "
            "earlier ones filled in, left to right.",
            show_default=False,
        ),
    ] = None,
    show_cls: Annotated[
        bool, typer.Option("--show-cls", help="Also show what the MLM head predicts from the [CLS] position.")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            help="(bert, random, whole-word, span) Share of the non-special tokens selected (default 0.15, as "
            "BERT); the draws follow --seed.",
            show_default=False,
            **real(0, 1, low_open=True),
        ),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(
            "--samples",
            **count(1, 1000),
            help="(bert, random, whole-word, span) Independent draws of the masking, all in one forward "
            "pass; the summary counts them all (default 1).",
        ),
    ] = None,
    replace: Annotated[
        Replace | None,
        typer.Option(
            "--replace",
            help="(bert, random, whole-word, span) bert: 80/10/10 [MASK]/random/keep per selected token, word or "
            "span; mask: every selected token becomes [MASK]. Default: bert for --mode bert, else mask.",
            show_default=False,
        ),
    ] = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = None,
    on_bad: OnBadOpt = OnBad.stop,
    out: OutOpt = None,
    show: ShowOpt = 20,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            metavar="left|right|both|all",
            help="(single, word) Predict the one mask from the words on its left only (what a left-to-right model "
            "sees), its right only, and/or both, side by side: a comma list, or all. A one-sided view REMOVES the "
            "other side rather than masking it (masks would still tell the model how many words follow); the left "
            "view also drops the closing [SEP], which would tell the model the text ends at the mask. The table "
            "follows the probability of the original word (--mask-word), of --targets, or else of the top-1 with "
            "both sides (the first prediction that, written there, is read as that same piece).",
            show_default=False,
        ),
    ] = None,
    explain: ExplainOpt = False,
    details: DetailsOpt = False,
    *,
    common: Common,
) -> None:
    """Predict the words behind each [MASK], or watch BERT's pretraining masking on a sentence.

    Example: bertprobe fillmask "The cat sat on the mat." --mode bert --samples 20
    """
    from bertprobe import render
    from bertprobe.api import fill_mode, fill_targets, note_special_tokens
    from bertprobe.fillmask import fill

    chosen = fill_mode(mode.value if mode is not None else None, mask_word)
    options = dict(
        mask_word=mask_word,
        occurrence=occurrence,
        decode=decode.value,
        beam=beam,
        targets=fill_targets(targets),
        show_cls=show_cls,
        rate=rate,
        samples=samples,
        replace=replace.value if replace is not None else None,
        seed=common.seed,
        context=context,
    )
    many = input_file is not None or out is not None or text is None
    if many:
        refuse_table_options(explain=explain, details=details)
    if context is not None:
        from bertprobe.fillmask import parse_contexts

        parse_contexts(context)  # a misspelt view is refused before the model loads
    if many:
        _many(common, text, input_file, text_column, on_bad.value, out, show, chosen, top_k, options)
        return
    lm = common.load("mlm")
    with render.progress_bar(f"fillmask --mode {chosen}", enabled=not common.json) as progress:
        result = fill(lm, text, chosen, top_k, progress=progress, **options)
    note_special_tokens(result, lm, [text])
    for notice in result.notices:
        if notice not in lm.notices:  # the loader's own were printed when it loaded
            render.notice(notice)
    render.show(result, json=common.json, seed=common.seed, explain=explain, details=details)


def _many(
    common: Common,
    text: str | None,
    input_file: str | None,
    text_column: str | None,
    on_bad: str,
    out: Path | None,
    show: int,
    chosen: str,
    top_k: int,
    options: dict[str, Any],
) -> None:
    """``--input FILE`` / ``--out FILE``: every text as a one-text run would do it, as JSON Lines and a summary."""
    from bertprobe import inputs
    from bertprobe.cli.texts import run_many

    source = inputs.source_for(
        [text] if text is not None else [],
        input_file,
        text_column,
        example='bertprobe fillmask "The cat sat on the [MASK]."',
    )

    def problem(lm: Any) -> inputs.Problem:
        from bertprobe.api import fill_problem

        return fill_problem(lm, chosen, options["mask_word"])

    def compute(lm: Any, items: list[Any], progress: Any) -> list[Any]:
        from bertprobe.fillmask import fill_many

        return fill_many(lm, [item.text for item in items], chosen, top_k, progress=progress, **options)

    run_many(
        common, "mlm", source, compute, problem, on_bad=on_bad, out=out, show=show, title=f"fillmask --mode {chosen}"
    )
