"""The live training view and the pretraining summary."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from bertprobe.models.spec import BUNDLED
from bertprobe.pretrain import LOSS_WINDOW, PretrainResult, TrainStatus, perplexity
from bertprobe.render import bar, err, percent, probability


def _probes_table(probes: list[Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("probe")
    table.add_column("top-3 predictions")
    for probe in probes:
        table.add_row(Text(probe.text), Text("  ".join(f"{tok} {probability(p, 2)}" for tok, p in probe.predictions)))
    return table


def _status_view(status: TrainStatus) -> Group:
    total = f"/{status.total_steps}" if status.total_steps else ""
    line = Text()
    line.append(f"step {status.step}{total}  ", style="bold")
    line.append(bar(status.budget_fraction, 20), style="cyan")
    line.append(f" {100 * status.budget_fraction:.0f}%  ")
    line.append(f"loss {status.loss:.3f}  lr {status.lr:.2e}  {status.tokens_per_second:,.0f} tokens/s  ")
    line.append(f"{status.elapsed / 60:.1f} min", style="dim")
    if status.nsp_accuracy is not None:
        line.append(f"  next-sentence right {100 * status.nsp_accuracy:.0f}%")
    if status.saved_step is not None:
        line.append(f"  saved at step {status.saved_step}", style="dim")
    return Group(line, _probes_table(status.probes, "what the model predicts now"))


@contextlib.contextmanager
def live_view(enabled: bool = True) -> Iterator[Any]:
    """A Rich Live view on stderr, updated by the ``TrainStatus`` callback it yields."""
    if not enabled:
        yield None
        return
    with Live(Text("loading the model and the corpus ...", style="dim"), console=err(), transient=True) as live:
        yield lambda status: live.update(_status_view(status))


def pretrain_summary(result: PretrainResult, console: Any) -> None:
    console.print(
        Text.assemble(
            ("pretrain  ", "bold"),
            (f"from {result.source} → {result.out}", "dim"),
        )
    )
    table = Table(show_header=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    idle = result.steps == result.start_step and not result.interrupted
    if result.resumed:
        spent = ": the budget was already spent, nothing trained" if idle else ""
        resumed = f" (resumed at step {result.start_step}{spent})"
    else:
        resumed = " (the budget ran out before the first step: nothing trained)" if idle else ""
    if result.interrupted and result.saved_step != result.steps:  # a second Ctrl-C: the last steps are lost
        kept = "nothing saved" if result.saved_step is None else f"last saved at step {result.saved_step:,}"
        resumed += f" ({kept})"
    table.add_row("corpus", f"{result.corpus_lines:,} lines → {result.chunks:,} examples")
    table.add_row("steps", f"{result.steps:,}{resumed} in {result.seconds / 60:.1f} min, {result.tokens:,} tokens")
    if result.first_loss is not None and result.final_loss is not None:
        window = min(result.steps, LOSS_WINDOW)
        losses = f"{result.first_loss:.3f} (first step) → {result.final_loss:.3f} (mean of the last {window:,} steps)"
        if result.settings.get("nsp"):
            # The NSP loss is added to the masked-LM loss: exp of the sum overstates the masked tokens' perplexity.
            table.add_row(
                "loss",
                f"{losses}  (masked-LM plus next-sentence loss, added together: its exp is not a perplexity of "
                "masked tokens)",
            )
        else:
            # Both at one precision: "5 → 4.9" read a rise from 4.6 as a fall.
            table.add_row(
                "loss",
                f"{losses}  (perplexity of masked tokens {_perplexity(result.first_loss)} → "
                f"{_perplexity(result.final_loss)})",
            )
    if result.nsp_accuracy is not None:
        table.add_row(
            "next sentence",
            # How many pairs the share rests on: a few dozen on a tiny corpus, where 30 points are noise.
            f"{percent(result.nsp_accuracy)} of the last {_recent_pairs(result)} training pairs told right "
            f"(chance 50%), from {result.nsp_pairs:,} lines with a next line",
        )
    console.print(table)
    if result.probes_before and not result.probes_after:
        # Stopped twice: the weights in memory are not the saved ones, so there is no honest "after".
        table = Table(title="probe predictions before this run (none after: a second Ctrl-C stopped it first)",
                      title_justify="left")  # fmt: skip
        table.add_column("probe")
        table.add_column("before")
        for before in result.probes_before:
            table.add_row(Text(before.text), Text("  ".join(f"{t} {probability(p, 2)}" for t, p in before.predictions)))
        console.print(table)
    elif result.probes_before:
        table = Table(title="probe predictions, before → after", title_justify="left")
        table.add_column("probe")
        table.add_column("before")
        table.add_column("after")
        for before, after in zip(result.probes_before, result.probes_after, strict=True):
            table.add_row(
                Text(before.text),
                Text("  ".join(f"{t} {probability(p, 2)}" for t, p in before.predictions), style="dim"),
                Text("  ".join(f"{t} {probability(p, 2)}" for t, p in after.predictions), style="bold"),
            )
        console.print(table)
    if result.exported:
        model = f"./{result.out}" if result.out in BUNDLED else result.out  # the bundled name would win over it
        console.print(Text(f'use it: bertprobe fillmask "...[MASK]..." --model {model}', style="dim"))
    else:
        console.print(Text(f"no model exported: a second Ctrl-C stopped the run before it wrote {result.out}'s "
                           "model files", style="dim"))  # fmt: skip


def _recent_pairs(result: PretrainResult) -> str:
    """The pairs behind the NSP share: a batch of pairs at each of the last steps (at most LOSS_WINDOW)."""
    steps = min(result.steps, LOSS_WINDOW)
    batch = result.settings.get("batch_size")
    return f"{steps * batch:,} ({steps:,} steps)" if isinstance(batch, int) else f"{steps:,} steps'"


RENDERERS = {"PretrainResult": pretrain_summary}


def _perplexity(loss: float) -> str:
    """exp(loss) as a reader can take it in: 1,234.5; 3.20e+26 past ten million; "infinite" past a float."""
    value = perplexity(loss)
    if value is None or math.isinf(value):
        return "infinite"
    return f"{value:,.1f}" if value < 1e7 else f"{value:.2e}"
