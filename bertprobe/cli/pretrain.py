"""``bertprobe pretrain``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from bertprobe.cli.app import command
from bertprobe.cli.options import Common, count, real

MAX_PRETRAIN_STEPS = 100_000_000  # a budget past this never ends on any machine: a typo
MAX_MINUTES = 60 * 24 * 30  # 30 days
NspNegatives = Enum(
    "NspNegatives", {name.replace("-", "_"): name for name in ("other-document", "same-document", "mixed")}, type=str
)
SaveDtype = Enum("SaveDtype", {name: name for name in ("float32", "float16", "bfloat16")}, type=str)


@command("pretrain", shared=("offline", "device", "json", "seed"))
def pretrain_cli(
    source: Annotated[
        str,
        typer.Option(
            "--from",
            help="Masked LM to continue (BERT, RoBERTa, XLM-R, DistilBERT, ALBERT, ELECTRA generator): hub id, "
            "directory, or a bundled name.",
        ),
    ] = "tiny-mlm",
    corpus: Annotated[
        list[Path] | None, typer.Option("--corpus", help="Text file, one sentence or paragraph per line (repeatable).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory to write (and resume from).")] = Path(
        "runs/pretrain"
    ),
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="Budget in optimizer steps.", show_default=False, **count(1, MAX_PRETRAIN_STEPS)),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            "--minutes", help="Budget in wall-clock minutes.", show_default=False, **real(0, MAX_MINUTES, low_open=True)
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Text chunks (or sentence pairs) per step.", **count(1, 65_536))
    ] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW).", **real(0, 1, low_open=True))] = 1e-4,
    warmup: Annotated[float, typer.Option("--warmup", help="Warm-up share of the budget.", **real(0, 0.9))] = 0.06,
    rate: Annotated[
        float, typer.Option("--rate", help="Share of tokens selected for prediction.", **real(0, 1, low_open=True))
    ] = 0.15,
    max_length: Annotated[int, typer.Option("--max-length", help="Word pieces per chunk.", **count(8, 100_000))] = 128,
    nsp: Annotated[
        bool,
        typer.Option(
            "--nsp",
            help="Also learn next-sentence prediction, as BERT did: pairs of consecutive lines of a document "
            "(blank lines separate documents) half of the time, a line of another document otherwise.",
        ),
    ] = False,
    nsp_negatives: Annotated[
        NspNegatives,
        typer.Option(
            "--nsp-negatives",
            help="Where --nsp's random second sentences come from: another document (BERT's; a change of topic "
            "gives them away), a non-adjacent sentence of the same document (asks for coherence: the question "
            "`nsp --shuffle` asks of a story), or mixed (half each).",
        ),
    ] = NspNegatives.other_document,
    freeze_layers: Annotated[
        int,
        typer.Option(
            "--freeze-layers",
            help="Keep the embeddings and this many lowest layers fixed (a much cheaper step on a CPU).",
            **count(0, 1000),
        ),
    ] = 0,
    probe: Annotated[
        list[str] | None, typer.Option("--probe", help="A sentence with [MASK] to watch while training (repeatable).")
    ] = None,
    save_minutes: Annotated[
        float,
        typer.Option("--save-minutes", help="Minutes between checkpoints.", **real(0, MAX_MINUTES, low_open=True)),
    ] = 5.0,
    save_steps: Annotated[
        int | None,
        typer.Option(
            "--save-steps",
            help="Also save a checkpoint every N steps.",
            show_default=False,
            **count(1, MAX_PRETRAIN_STEPS),
        ),
    ] = None,
    save_dtype: Annotated[
        SaveDtype, typer.Option("--save-dtype", help="Dtype of the saved weights.")
    ] = SaveDtype.float32,
    restart: Annotated[bool, typer.Option("--restart", help="Ignore a run already in --out and start over.")] = False,
    *,
    common: Common,
) -> None:
    """Continue a BERT-family masked LM's pretraining (BERT, RoBERTa, ALBERT, ...) on your text; watch it learn.

    Example: bertprobe pretrain --corpus notes.txt --steps 500 --probe "The cat sat on the [MASK]."
    """
    from bertprobe import pretrain, render
    from bertprobe.render.pretrain import live_view

    settings = pretrain.PretrainSettings(
        source=source,
        corpus=[str(p) for p in corpus or []],
        out=str(out),
        steps=steps,
        minutes=minutes,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        rate=rate,
        max_length=max_length,
        seed=common.seed,
        save_minutes=save_minutes,
        save_steps=save_steps,
        save_dtype=save_dtype.value,
        probes=list(probe or ["The cat sat on the [MASK]."]),
        nsp=nsp,
        freeze_layers=freeze_layers,
        nsp_negatives=nsp_negatives.value,
    )
    with live_view(enabled=not common.json) as on_status:
        try:
            result = pretrain.pretrain(settings, device=common.device, offline=common.offline,
                                       restart=restart, on_status=on_status)  # fmt: skip
        except pretrain.Interrupted as stop:
            result = stop.result
    for notice in result.notices:
        render.notice(notice)
    render.show(result, json=common.json, seed=common.seed)
    if result.interrupted:
        render.notice(pretrain.rerun_notice(result, restart))
        raise typer.Exit(130)
