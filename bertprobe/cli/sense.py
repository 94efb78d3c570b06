"""``bertprobe sense``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.learner import DetailsOpt, ExplainOpt
from bertprobe.cli.options import LAYER_HELP, Common, count, layer_option


class Pool(str, Enum):
    mean = "mean"
    first = "first"
    last = "last"


@command("sense")
def sense_cli(
    word: Annotated[
        str | None,
        typer.Argument(help="The ambiguous word (built-in sets: see --list).", metavar="WORD", show_default=False),
    ] = None,
    sentence: Annotated[
        list[str] | None,
        typer.Option(
            "--sentence", "-s", help="A sentence containing the word (repeat; unlabelled).", show_default=False
        ),
    ] = None,
    sentences: Annotated[
        Path | None,
        typer.Option(
            "--sentences",
            metavar="FILE",
            help="csv / tsv / jsonl file: a 'sentence' column, optional 'sense' and 'word' columns.",
            show_default=False,
        ),
    ] = None,
    pool: Annotated[Pool, typer.Option("--pool", help="How the word's word pieces become one vector.")] = Pool.mean,
    occurrence: Annotated[
        int | None,
        typer.Option(
            "--occurrence",
            help="Which occurrence of the word to use (default: the first).",
            show_default=False,
            **count(1),
        ),
    ] = None,
    layer: Annotated[
        int | None, layer_option("Layer of the similarity matrix and clusters (default: the best). " + LAYER_HELP)
    ] = None,
    clusters: Annotated[
        int | None,
        typer.Option(
            "--clusters",
            help="k of k-means (default: 2, or the number of senses).",
            show_default=False,
            **count(2, 10_000),
        ),
    ] = None,
    centred: Annotated[
        bool,
        typer.Option(
            "--centred",
            help="Show the similarity matrix in mean-centred cosines, the figure the table, 1-NN and the clusters "
            "use (default: raw cosine).",
        ),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE.png",
            help="Write the heatmap and the per-layer curves to FILE.png.",
            show_default=False,
        ),
    ] = None,
    list_sets: Annotated[bool, typer.Option("--list", help="List the built-in sense sets and exit.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Sentences per forward pass.", **count(1))] = 32,
    explain: ExplainOpt = False,
    details: DetailsOpt = False,
    *,
    common: Common,
) -> None:
    """Show how one word's contextual vectors separate by sense, layer by layer, against static embeddings.

    Example: bertprobe sense bank --model minilm
    """
    from bertprobe import render, sense
    from bertprobe.api import note_special_tokens

    if list_sets:
        render.show(sense.catalog(common.model, common.revision), json=common.json, seed=common.seed)
        return
    from bertprobe.render import sense as sense_render

    if plot is not None:
        render.check_plot_path(plot)
    word, labelled_sentences, origin = sense.collect(word, sentence or (), sentences)
    lm = common.load("encoder")
    with render.progress_bar(f"sense: {word}", enabled=not common.json) as progress:
        result = sense.probe(
            lm,
            word,
            labelled_sentences,
            pool=pool.value,
            occurrence=occurrence,
            layer=layer,
            clusters=clusters,
            seed=common.seed,
            origin=origin,
            centred=centred,
            batch_size=batch_size,
            progress=progress,
        )
    note_special_tokens(result, lm, [s.text for s in labelled_sentences])
    for notice in result.notices:
        render.notice(notice)
    render.show(result, json=common.json, seed=common.seed, explain=explain, details=details)
    if plot is not None:
        written = sense_render.plot(result, plot)
        render.notice(f"wrote {written}")
