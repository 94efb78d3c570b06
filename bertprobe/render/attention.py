"""Views of attention summaries."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.attention import AttentionResult
from bertprobe.render import bar, header


def _shade(value: float, top: float) -> Text:
    """A number on a background whose strength follows its share of the row's maximum."""
    level = 0 if top <= 0 else min(int(5 * value / top + 0.5), 5)
    styles = ["dim", "", "on grey23", "on grey35", "bold on dark_green", "bold on green4"]
    return Text(f"{value:.2f}", style=styles[level])


def attention_table(result: AttentionResult, console: Console) -> None:
    header(console, "attention", result)
    scope = f"head {result.head}" if result.head else f"mean over {result.num_heads} heads"
    summary = Table(
        title=f"per layer ({scope}; entropy in bits; mean attention on [CLS], [SEP], all special tokens)",
        title_justify="left",
    )
    for column, justify in (
        ("layer", "right"),
        ("entropy", "right"),
        ("→[CLS]", "right"),
        ("→[SEP]", "right"),
        ("special", "right"),
        ("", "left"),
        ("[CLS] looks at", "left"),
    ):
        summary.add_column(column, justify=justify, no_wrap=column == "")
    for row in result.layers:
        summary.add_row(
            str(row.layer),
            f"{row.entropy_bits:.2f}",
            f"{row.to_cls:.2f}",
            f"{row.to_sep:.2f}",
            f"{row.special_share:.2f}",
            Text(bar(row.special_share, 12), style="magenta"),
            Text(f"{row.cls_top_token} ({row.cls_top_weight:.2f})"),
        )
    console.print(summary)

    layers = [result.layer - 1] if result.layer else range(result.num_layers)
    grid = Table(title="[CLS] attends to each token (rows: layers)", title_justify="left")
    grid.add_column("layer", justify="right", style="dim")
    for token in result.tokens:
        grid.add_column(Text(token), justify="right")
    for index in layers:
        values = result.cls_to_token[index]
        top = max(values)
        grid.add_row(str(index + 1), *[_shade(v, top) for v in values])
    console.print(grid)

    if result.layer:
        index = result.layer - 1
        detail = Table(title=f"layer {result.layer}, {scope}", title_justify="left")
        for column in ("token", "[CLS] → token", "token → [CLS]", "token → [SEP]"):
            detail.add_column(column, justify="left" if column == "token" else "right")
        for position, token in enumerate(result.tokens):
            detail.add_row(
                Text(token, style="bold" if result.special[position] else ""),
                f"{result.cls_to_token[index][position]:.3f}",
                f"{result.token_to_cls[index][position]:.3f}",
                f"{result.token_to_sep[index][position]:.3f}",
            )
        console.print(detail)
    console.print(
        Text(
            "Attention to [CLS]/[SEP] often acts as a no-op sink (Clark et al. 2019); attention weights "
            "show where information may flow, not what the prediction depends on.",
            style="dim",
        )
    )


RENDERERS = {"AttentionResult": attention_table}
