"""The cloze evaluation table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.cloze import ClozeResult
from bertprobe.render import header


def cloze_table(result: ClozeResult, console: Console) -> None:
    header(console, "cloze", result)
    table = Table(title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("sentence")
    table.add_column(f"top {result.top_k} predictions")
    table.add_column("hit", justify="right")
    table.add_column("copy", justify="center")
    for number, item in enumerate(result.items, start=1):
        tops = Text()
        for rank, word in enumerate(item.top, start=1):
            tops.append(word, style="bold green" if word.lower() in item.answers else "")
            if rank < len(item.top):
                tops.append("  ")
        hit = "–" if item.hit_rank is None else str(item.hit_rank)
        table.add_row(str(number), Text(item.text), tops, hit, Text("copy", style="red") if item.copies else "")
    console.print(table)
    console.print(
        Text.assemble(
            ("precision@1 ", "bold"),
            f"{result.precision_at_1:.3f}   ",
            (f"precision@{result.top_k} ", "bold"),
            f"{result.precision_at_k:.3f}   ",
            ("copies ", "bold"),
            f"{result.copy_rate:.3f}   ",
            (
                f"over {len(result.items)} sentences ({result.cloze_set}); green: an acceptable answer; "
                "copies: a wrong top-1 word that already stands in its sentence",
                "dim",
            ),
        )
    )


RENDERERS = {"ClozeResult": cloze_table}
