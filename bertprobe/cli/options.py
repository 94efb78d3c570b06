"""Options shared by every command, declared once as ``Annotated`` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

import typer

from bertprobe.models import DEVICES, DTYPES

# Typer shows an Enum's values as the option's choices.
Device = Enum("Device", {name: name for name in DEVICES}, type=str)
Dtype = Enum("Dtype", {name: name for name in DTYPES}, type=str)

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Hub id, local checkpoint directory, or bundled name (minilm). "
        "auto: $BERTPROBE_MODEL, else bert-base-uncased, else an offline model.",
    ),
]
RevisionOpt = Annotated[
    str | None, typer.Option("--revision", help="Hub branch, tag or commit of --model.", show_default=False)
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Never touch the network (also set by HF_HUB_OFFLINE=1).")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto: cuda, then mps, then cpu.")]
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="Weights' dtype (auto: float32).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seeds python, numpy, torch and scikit-learn.")]


@dataclass
class Common:
    """The options every command takes, and what they mean together."""

    model: str = "auto"
    revision: str | None = None
    offline: bool = False
    device: str | Enum = "auto"
    dtype: str | Enum = "auto"
    json: bool = False
    seed: int = 0

    def load(self, head: str) -> Any:
        """Seed, load the model for ``head`` and announce any choice made for the user on stderr."""
        from bertprobe import models, render
        from bertprobe.seeding import seed_everything

        seed_everything(self.seed)
        device = getattr(self.device, "value", self.device)
        dtype = getattr(self.dtype, "value", self.dtype)
        lm = models.load(self.model, head, self.revision, device, dtype, self.offline)
        for notice in lm.notices:
            render.notice(notice)
        return lm
