"""``bertprobe fillmask``."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import MAX_TOP_K, Common, count, real

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
        str,
        typer.Argument(
            help="Text with one or more [MASK] (or the model's own mask token); unmasked for "
            "--mode word/bert/random/whole-word/span/each."
        ),
    ],
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
    beam: Annotated[int, typer.Option("--beam", help="(joint) Beam width and completions shown.", **count(1, 50))] = 5,
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
    *,
    common: Common,
) -> None:
    """Predict the words behind each [MASK], or watch BERT's pretraining masking on a sentence.

    Example: bertprobe fillmask "The cat sat on the mat." --mode bert --samples 20
    """
    from bertprobe import render
    from bertprobe.fillmask import fill

    chosen = mode.value if mode is not None else ("word" if mask_word is not None else "single")
    lm = common.load("mlm")
    with render.progress_bar(f"fillmask --mode {chosen}", enabled=not common.json) as progress:
        result = fill(
            lm,
            text,
            chosen,
            top_k,
            mask_word=mask_word,
            occurrence=occurrence,
            decode=decode.value,
            beam=beam,
            targets=[targets] if targets is not None else None,
            show_cls=show_cls,
            rate=rate,
            samples=samples,
            replace=replace.value if replace is not None else None,
            seed=common.seed,
            progress=progress,
        )
    for notice in result.notices:
        if notice not in lm.notices:  # the loader's own were printed when it loaded
            render.notice(notice)
    render.show(result, json=common.json, seed=common.seed)
