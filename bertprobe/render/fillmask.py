"""Views of fill-mask results."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.fillmask import FillMaskResult
from bertprobe.render import bar, header


def fillmask_table(result: FillMaskResult, console: Console) -> None:
    header(console, "fill-mask", result)
    for number, mask in enumerate(result.masks, start=1):
        table = Table(
            title=Text(f"mask {number} of {len(result.masks)}  (word piece {mask.position})"),
            title_justify="left",
        )
        table.add_column("rank", justify="right", style="dim")
        table.add_column("token")
        table.add_column("probability", justify="right")
        table.add_column("", no_wrap=True)
        top = mask.predictions[0].score if mask.predictions else 1.0
        for rank, pred in enumerate(mask.predictions, start=1):
            table.add_row(
                str(rank),
                Text(pred.token_str, style="bold" if rank == 1 else ""),
                f"{pred.score:.4f}",
                Text(bar(pred.score / top if top else 0.0), style="cyan"),
            )
        console.print(table)
    filled = Text("top-1 fill: ", style="dim")
    cursor = 0
    for mask in sorted(result.masks, key=lambda m: m.char_start):
        filled.append(result.text_normalised[cursor : mask.char_start])
        filled.append(mask.predictions[0].token_str.removeprefix("##"), style="bold green")
        cursor = mask.char_end
    filled.append(result.text_normalised[cursor:])
    console.print(filled)


RENDERERS = {"FillMaskResult": fillmask_table}
