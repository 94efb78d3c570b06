"""Options that shape what a learner sees: ``--explain`` and ``--details``, declared once for every command."""

from __future__ import annotations

from typing import Annotated

import typer

ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Add a short guide to each column of the tables (what it measures).")
]
DetailsOpt = Annotated[
    bool,
    typer.Option(
        "--details",
        help="Show the expert columns and statistics too (raw cosines beside the centred ones, anisotropy, "
        "adjusted Rand, ...). --json always has everything.",
    ),
]
