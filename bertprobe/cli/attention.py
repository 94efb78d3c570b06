"""``bertprobe attention``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import ATTENTION_LAYER_HELP, Common, count, layer_option


@command("attention")
def attention_cli(
    text: Annotated[str, typer.Argument(help="The text to look at.")],
    layer: Annotated[int | None, layer_option(ATTENTION_LAYER_HELP, "-l")] = None,
    head: Annotated[
        int | None,
        typer.Option(
            "--head", help="One attention head (1-based) instead of the mean.", show_default=False, **count(1, 10_000)
        ),
    ] = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Write a layer x token heatmap (PNG).")] = None,
    *,
    common: Common,
) -> None:
    """Where attention goes, layer by layer: [CLS] to each token, each token to [CLS] and [SEP].

    Example: bertprobe attention "The cat sat on the mat." --layer 6
    """
    from bertprobe import attention, render
    from bertprobe.render.attention import plot as plot_attention

    if plot is not None:
        render.check_plot_path(plot)  # before the model work, not after
    lm = common.load("encoder")
    result = attention.attention(lm, text, layer=layer, head=head)
    if plot is not None:
        render.notice(f"Wrote {plot_attention(result, plot)}")
    render.show(result, json=common.json, seed=common.seed)
