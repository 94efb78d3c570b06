"""``bertprobe fillmask``."""

from __future__ import annotations

from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import (
    Common,
    Device,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    JsonOpt,
    ModelOpt,
    OfflineOpt,
    RevisionOpt,
    SeedOpt,
)


@command("fillmask")
def fillmask_cli(
    text: Annotated[str, typer.Argument(help="Text with one or more [MASK] (or the model's own mask token).")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Predictions shown per mask.")] = 5,
    model: ModelOpt = "auto",
    revision: RevisionOpt = None,
    offline: OfflineOpt = False,
    device: DeviceOpt = Device.auto,
    dtype: DtypeOpt = Dtype.auto,
    json: JsonOpt = False,
    seed: SeedOpt = 0,
) -> None:
    """Predict the words behind each [MASK], as BERT's masked-LM head sees them.

    Example: bertprobe fillmask "The cat sat on the [MASK]."
    """
    from bertprobe import render
    from bertprobe.fillmask import fill_mask

    common = Common(model, revision, offline, device, dtype, json, seed)
    lm = common.load("mlm")
    result = fill_mask(lm, text, top_k=top_k)
    render.show(result, json=json, seed=seed)
