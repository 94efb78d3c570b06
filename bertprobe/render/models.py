"""The ``bertprobe models`` listing."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from bertprobe.render import emit_json, out


def _size(num: float) -> str:
    # Decimal units, as the README, RECIPE and pip write sizes: 1 MB = 1,000,000 bytes.
    for unit in ("B", "kB", "MB", "GB"):
        if num < 1000 or unit == "GB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1000
    return f"{num} B"


def _reading(infos: list[Any]) -> str:
    """What the heads column means for the commands this user can run."""
    with_mlm = [i.name for i in infos if "MLM" in i.heads]
    with_nsp = [i.name for i in infos if "NSP" in i.heads]

    def names(found: list[str]) -> str:
        return ", ".join(found) if found else "none listed here"

    return (
        "Every model listed gives contextual vectors (sense, cls-train, attention, attribute); "
        f"fillmask, score and cloze need an MLM head ({names(with_mlm)}); "
        f"nsp needs an NSP head ({names(with_nsp)}). Sizes are files on disk, 1 MB = 1,000,000 bytes."
    )


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
    console.print(Text(_reading(infos)))
    if not any(i.source == "hub cache" for i in infos):
        console.print(
            Text(
                "No BERT-family models in the Hugging Face cache yet; any hub id given to --model is downloaded there.",
                style="dim",
            )
        )
