"""The ``bertprobe models`` listing."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from bertprobe.render import emit_json, out


def _size(num: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num < 1024 or unit == "GB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num} B"


def show(infos: list[Any], json: bool) -> None:
    if json:
        emit_json({"models": infos})
        return
    console = out()
    table = Table(title="models available here", title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("source", "left"),
        ("type", "left"),
        ("heads", "left"),
        ("layers", "right"),
        ("hidden", "right"),
        ("size", "right"),
    ):
        table.add_column(column, justify=justify)
    for info in infos:
        table.add_row(
            Text(info.name, style="bold"),
            info.source,
            info.model_type,
            ", ".join(info.heads),
            str(info.layers),
            str(info.hidden_size),
            _size(info.size_bytes),
        )
    console.print(table)
    if not any(i.source == "hub cache" for i in infos):
        console.print(
            Text(
                "No BERT-family models in the Hugging Face cache yet; any hub id given to --model is downloaded there.",
                style="dim",
            )
        )
