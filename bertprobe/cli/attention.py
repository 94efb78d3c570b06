"""``bertprobe attention``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bertprobe.cli.app import command
from bertprobe.cli.learner import ExplainOpt
from bertprobe.cli.options import ATTENTION_LAYER_HELP, Common, count, layer_option
from bertprobe.cli.texts import InputOpt, OnBad, OnBadOpt, OutOpt, ShowOpt, TextColumnOpt, refuse_table_options


@command("attention")
def attention_cli(
    text: Annotated[
        str | None, typer.Argument(help="The text to look at (or many with --input).", show_default=False)
    ] = None,
    layer: Annotated[int | None, layer_option(ATTENTION_LAYER_HELP, "-l")] = None,
    head: Annotated[
        int | None,
        typer.Option(
            "--head", help="One attention head (1-based) instead of the mean.", show_default=False, **count(1, 10_000)
        ),
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a layer x token heatmap (PNG).")] = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = None,
    on_bad: OnBadOpt = OnBad.stop,
    out: OutOpt = None,
    show: ShowOpt = 20,
    explain: ExplainOpt = False,
    *,
    common: Common,
) -> None:
    """Where attention goes, layer by layer: [CLS] to each token, each token to [CLS] and [SEP].

    Example: bertprobe attention "The cat sat on the mat." --layer 6
    """
    from bertprobe import attention, render
    from bertprobe.api import note_special_tokens
    from bertprobe.render.attention import plot as plot_attention

    if input_file is not None or out is not None or text is None:
        refuse_table_options(explain=explain)
        _many(common, text, input_file, text_column, on_bad.value, out, show, layer, head, plot)
        return
    if plot is not None:
        render.check_plot_path(plot)  # before the model work, not after
    lm = common.load("encoder")
    result = note_special_tokens(attention.attention(lm, text, layer=layer, head=head), lm, [text])
    for notice in result.notices:
        if notice not in lm.notices:  # the loader's own were printed when it loaded
            render.notice(notice)
    if plot is not None:
        render.notice(f"Wrote {plot_attention(result, plot)}")
    render.show(result, json=common.json, seed=common.seed, explain=explain)


def _many(
    common: Common,
    text: str | None,
    input_file: str | None,
    text_column: str | None,
    on_bad: str,
    out: Path | None,
    show: int,
    layer: int | None,
    head: int | None,
    plot: Path | None,
) -> None:
    """``--input FILE``: each text as a one-text run would show it, as JSON Lines and a summary table."""
    from bertprobe import inputs
    from bertprobe.cli.texts import run_many
    from bertprobe.errors import InputError

    if plot is not None:
        raise InputError("--plot draws one text; with --input use --out FILE (JSON Lines)", hint="Drop --plot.")
    source = inputs.source_for(
        [text] if text is not None else [],
        input_file,
        text_column,
        example='bertprobe attention "The cat sat on the mat."',
    )

    def compute(lm: Any, items: list[Any], progress: Any) -> list[Any]:
        from bertprobe.attention import attention_many

        return attention_many(lm, [item.text for item in items], layer=layer, head=head, progress=progress)

    def problem(lm: Any) -> inputs.Problem:
        from bertprobe.attention import text_problem
        from bertprobe.layers import resolve_head, resolve_layer

        # Checked once against the model, before any work: found per text, it would be blamed on every line.
        if layer is not None and lm.num_layers:
            resolve_layer(layer, lm.num_layers, lm.name, embeddings=False)
        heads = lm.config.get("num_attention_heads") or lm.config.get("n_heads")
        if head is not None and isinstance(heads, int) and heads > 0:
            resolve_head(head, heads, lm.name)
        return text_problem(lm)

    run_many(common, "encoder", source, compute, problem, on_bad=on_bad, out=out, show=show, title="attention")
