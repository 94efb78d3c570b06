"""``bertprobe attribute``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

# The registry lives in the core module, which imports nothing heavy at the top: the choices
# below come from it without --help importing torch.
from bertprobe.attribute import (
    BASELINES,
    DEFAULT_MAX_STEPS,
    DEFAULT_RANDOM_ORDERS,
    DEFAULT_STEPS,
    DELTA_TOLERANCE,
    MAX_STEPS,
    METHODS,
)
from bertprobe.cli.app import command
from bertprobe.cli.learner import ExplainOpt
from bertprobe.cli.options import Common, count
from bertprobe.cli.texts import InputOpt, OnBad, OnBadOpt, OutOpt, ShowOpt, TextColumnOpt, refuse_table_options

MethodChoice = Enum("MethodChoice", {name: name for name in METHODS}, type=str)
BaselineChoice = Enum("BaselineChoice", {name: name for name in BASELINES}, type=str)


@command("attribute")
def attribute_cli(
    text: Annotated[
        str | None,
        typer.Argument(
            help="The text to explain; with a [MASK] to explain a fill-mask prediction. Or many with --input.",
            show_default=False,
        ),
    ] = None,
    probe: Annotated[
        Path | None,
        typer.Option(
            "--probe", help="Directory of a probe saved by `cls-train --out`: explain its class.", show_default=False
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option("--label", help="Probe class to explain (default: the predicted one).", show_default=False),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", "-t", help="Word to explain at the [MASK] (default: the top-1 prediction).", show_default=False
        ),
    ] = None,
    mask: Annotated[
        int | None,
        typer.Option(
            "--mask", help="Which [MASK] to explain when there are several (default 1).", show_default=False, **count(1)
        ),
    ] = None,
    method: Annotated[
        MethodChoice, typer.Option("--method", help="; ".join(f"{n}: {m.summary}" for n, m in METHODS.items()) + ".")
    ] = MethodChoice.ig,
    baseline: Annotated[
        BaselineChoice,
        typer.Option("--baseline", help="What stands for an absent word piece: [PAD] or [MASK] embedding, or zeros."),
    ] = BaselineChoice.pad,
    steps: Annotated[
        int, typer.Option("--steps", help="Integration steps (ig).", **count(1, MAX_STEPS))
    ] = DEFAULT_STEPS,
    auto_steps: Annotated[
        bool,
        typer.Option(
            "--auto-steps",
            help=f"Double --steps until the convergence delta is within {DELTA_TOLERANCE:.0%} (up to --max-steps).",
        ),
    ] = False,
    max_steps: Annotated[
        int, typer.Option("--max-steps", help="Cap for --auto-steps.", **count(1, MAX_STEPS))
    ] = DEFAULT_MAX_STEPS,
    internal_batch_size: Annotated[
        int | None,
        typer.Option(
            "--internal-batch-size",
            **count(1),
            help="Integration steps (or occluded copies) per forward pass; default: as many as fit ~2048 word pieces.",
            show_default=False,
        ),
    ] = None,
    faithfulness: Annotated[
        bool,
        typer.Option(
            "--faithfulness/--no-faithfulness", help="ERASER comprehensiveness / sufficiency against random orders."
        ),
    ] = True,
    random_orders: Annotated[
        int,
        typer.Option(
            "--random-orders",
            help="Random word-piece orders the attribution is compared with.",
            **count(1, 1000),
        ),
    ] = DEFAULT_RANDOM_ORDERS,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html", help="Also write a standalone HTML page (no scripts, no fonts) to FILE.", show_default=False
        ),
    ] = None,
    input_file: InputOpt = None,
    text_column: TextColumnOpt = None,
    on_bad: OnBadOpt = OnBad.stop,
    out: OutOpt = None,
    show: ShowOpt = 20,
    explain: ExplainOpt = False,
    *,
    common: Common,
) -> None:
    """Show which input tokens drive a fill-mask prediction or a saved probe's class (Captum).

    Example: bertprobe attribute "The cat sat on the [MASK]." --target mat
    """
    from bertprobe import render
    from bertprobe.api import check_attribute_question, note_special_tokens, probe_model
    from bertprobe.attribute import AttributionSettings, attribute_fill_mask, attribute_probe, check_settings
    from bertprobe.errors import InputError

    check_attribute_question(probe, target, label, mask)
    settings = AttributionSettings(
        method=method.value,
        baseline=baseline.value,
        steps=steps,
        auto_steps=auto_steps,
        max_steps=max_steps,
        internal_batch_size=internal_batch_size,
        faithfulness=faithfulness,
        random_orders=random_orders,
        seed=common.seed,
    )
    check_settings(settings)  # before any model work, and once for --input rather than as each line's fault
    # A progress bar only on a terminal: piped stderr keeps to notices and errors.
    show_progress = not common.json and render.err().is_terminal
    if input_file is not None or out is not None or text is None:
        if html is not None:
            raise InputError("--html draws one text; with --input use --out FILE (JSON Lines)", hint="Drop --html.")
        refuse_table_options(explain=explain)
        _many(common, text, input_file, text_column, on_bad.value, out, show, probe, label, target, mask, settings)
        return
    if probe is not None:
        from bertprobe.probe import load_probe

        saved = load_probe(probe)
        common.model, common.revision = probe_model(common.model, common.revision, saved)
        lm = common.load("encoder")
        with render.progress_bar("attributing", enabled=show_progress) as progress:
            result = attribute_probe(lm, text, saved, label=label, settings=settings, progress=progress)
    else:
        lm = common.load("mlm")
        with render.progress_bar("attributing", enabled=show_progress) as progress:
            result = attribute_fill_mask(lm, text, target=target, mask=mask or 1, settings=settings, progress=progress)
    note_special_tokens(result, lm, [text])
    for notice in result.notices:
        render.notice(notice)
    if html is not None:
        from bertprobe.render.attribute import write_html

        write_html(result, html)
        if not common.json:
            render.notice(f"wrote {html}")
    render.show(result, json=common.json, seed=common.seed, explain=explain)


def _many(
    common: Common,
    text: str | None,
    input_file: str | None,
    text_column: str | None,
    on_bad: str,
    out: Path | None,
    show: int,
    probe: Path | None,
    label: str | None,
    target: str | None,
    mask: int | None,
    settings: Any,
) -> None:
    """``--input FILE``: each text explained as a one-text run would, as JSON Lines and a summary table."""
    from bertprobe import inputs
    from bertprobe.cli.texts import one_by_one, run_many

    source = inputs.source_for(
        [text] if text is not None else [],
        input_file,
        text_column,
        example='bertprobe attribute "The cat sat on the [MASK]." --target mat',
    )
    saved = None
    if probe is not None:
        from bertprobe.api import probe_model
        from bertprobe.probe import load_probe

        saved = load_probe(probe)
        common.model, common.revision = probe_model(common.model, common.revision, saved)

    def problem(lm: Any) -> inputs.Problem:
        from bertprobe.attribute import text_problem

        return text_problem(lm, saved)

    def run_one(lm: Any, text: str) -> Any:
        from bertprobe.attribute import attribute_fill_mask, attribute_probe

        if saved is not None:
            return attribute_probe(lm, text, saved, label=label, settings=settings)
        return attribute_fill_mask(lm, text, target=target, mask=mask or 1, settings=settings)

    compute = one_by_one(run_one)

    head = "encoder" if saved is not None else "mlm"
    run_many(common, head, source, compute, problem, on_bad=on_bad, out=out, show=show, title="attribute")
