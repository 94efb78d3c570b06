"""Views of fill-mask results: masks and their predictions, corruption plans, pseudo-log-likelihood."""

from __future__ import annotations

from rich.columns import Columns
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.fillmask import (
    CorruptionResult,
    FillMaskResult,
    JointFill,
    MaskPrediction,
    Prediction,
    PseudoLikelihoodResult,
)
from bertprobe.render import bar, header

ACTION_STYLE = {"mask": "bold magenta", "random": "bold red", "keep": "bold yellow"}
ACTION_LABEL = {"mask": "[MASK]", "random": "random", "keep": "kept"}


def _prediction_table(title: Text, predictions: list[Prediction]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("rank", justify="right", style="dim")
    table.add_column("token")
    table.add_column("probability", justify="right")
    table.add_column("", no_wrap=True)
    top = predictions[0].score if predictions else 1.0
    for rank, pred in enumerate(predictions, start=1):
        table.add_row(
            str(rank),
            Text(pred.token_str, style="bold" if rank == 1 else ""),
            f"{pred.score:.4f}",
            Text(bar(pred.score / top if top else 0.0), style="cyan"),
        )
    return table


def _mask_title(number: int, total: int, mask: MaskPrediction) -> Text:
    title = Text(f"mask {number} of {total}  (word piece {mask.position})")
    if mask.original is not None:
        title.append("  original: ")
        title.append(mask.original.token, style="bold")
        title.append(f"  rank {mask.original.rank}, p={mask.original.score:.3g}")
    return title


def fillmask_table(result: FillMaskResult, console: Console) -> None:
    title = "fill-mask" if result.mode == "single" else f"fill-mask --mode {result.mode}"
    header(console, title, result)
    for word in result.masked_words:
        line = Text("masked word: ", style="dim")
        line.append(word.word, style="bold")
        line.append(f"  word pieces {', '.join(map(str, word.positions))}", style="dim")
        console.print(line)
    tables = [
        _prediction_table(_mask_title(number, len(result.masks), mask), mask.predictions)
        for number, mask in enumerate(result.masks, start=1)
    ]
    if result.cls_predictions is not None:
        cls_title = Text("[CLS] position (the MLM head read off [CLS]; not what predicts a mask)")
        tables.append(_prediction_table(cls_title, result.cls_predictions))
        console.print(Columns(tables))
    else:
        for table in tables:
            console.print(table)
    filled = Text("top-1 fill: ", style="dim")
    cursor = 0
    for mask in sorted(result.masks, key=lambda m: m.char_start):
        filled.append(result.text_normalised[cursor : mask.char_start])
        filled.append(mask.predictions[0].token_str.removeprefix("##"), style="bold green")
        cursor = mask.char_end
    filled.append(result.text_normalised[cursor:])
    console.print(filled)
    if result.joint is not None:
        _joint_table(result, console)
    if result.targets is not None:
        _targets_tables(result, console)


def _fill_text(result: FillMaskResult, fill: JointFill) -> Text:
    spans = sorted((m.char_start, m.char_end, token) for m, token in zip(result.masks, fill.tokens, strict=True))
    text, cursor = Text(), 0
    for start, end, token in spans:
        text.append(result.text_normalised[cursor:start])
        text.append(token.removeprefix("##"), style="bold green")
        cursor = end
    text.append(result.text_normalised[cursor:])
    return text


def _joint_table(result: FillMaskResult, console: Console) -> None:
    joint = result.joint
    table = Table(
        title=Text("joint completions  (joint score = Σ ln P(token | every other mask filled); higher is better)"),
        title_justify="left",
    )
    table.add_column("rank", justify="right", style="dim")
    table.add_column("completion")
    table.add_column("joint score", justify="right")
    table.add_column("per mask", style="dim")
    for rank, fill in enumerate(joint.completions, start=1):
        table.add_row(
            str(rank),
            _fill_text(result, fill),
            f"{fill.joint_score:.3f}",
            Text(" ".join(f"{lp:.2f}" for lp in fill.log_probs)),
        )
    console.print(table)
    line = Text("independent top-1: ", style="dim")
    line.append_text(_fill_text(result, joint.independent))
    line.append(f"  joint score {joint.independent.joint_score:.3f}", style="dim")
    console.print(line)


def _targets_tables(result: FillMaskResult, console: Console) -> None:
    for slot in result.targets or []:
        where = result.text_normalised[slot.char_start : slot.char_end]
        title = Text(f"targets in slot {slot.slot}  (")
        title.append(where)
        title.append(")  score = Π P(piece | earlier pieces filled, later ones masked)")
        table = Table(title=title, title_justify="left")
        table.add_column("rank", justify="right", style="dim")
        table.add_column("target")
        table.add_column("word pieces: P(piece | earlier)")
        table.add_column("score", justify="right")
        table.add_column("ln score", justify="right")
        for target in slot.targets:
            pieces = Text()
            for j, piece in enumerate(target.pieces):
                if j:
                    pieces.append("  ")
                pieces.append(piece.token)
                pieces.append(f" {piece.probability:.3g}", style="dim")
            table.add_row(
                str(target.rank),
                Text(target.word, style="bold" if target.rank == 1 else ""),
                pieces,
                f"{target.score:.3g}",
                f"{target.log_prob:.3f}",
            )
        console.print(table)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def corruption_table(result: CorruptionResult, console: Console) -> None:
    header(console, f"fill-mask --mode {result.mode}", result)
    if result.replace == "bert":
        how = (
            f"then {100 * result.mask_prob:.0f}% [MASK] / {100 * result.random_prob:.0f}% random token / "
            f"{100 * (1 - result.mask_prob - result.random_prob):.0f}% kept, drawn per "
            + ("token" if result.scheme == "token" else "word" if result.scheme == "whole-word" else "span")
            + f"; random tokens come from {result.replacement_vocabulary:,} ordinary vocabulary ids"
        )
    else:
        how = "then every selected token becomes [MASK]"
    unit = {"token": "single tokens", "whole-word": "whole words", "span": "spans of whole words"}[result.scheme]
    console.print(Text(f"selects {100 * result.rate:g}% of the tokens as {unit}, {how}", style="dim"))
    first = result.samples[0]
    chosen = [m for m in result.masks if m.sample == first.sample]
    by_position = {m.position: m for m in chosen}
    seen = Text("model saw: ", style="dim")
    for position, token in enumerate(first.seen_tokens):
        if position:
            seen.append(" ")
        mark = by_position.get(position)
        seen.append(token, style=ACTION_STYLE[mark.action] if mark else "")
    console.print(seen)
    title = "selected positions" if len(result.samples) == 1 else f"sample 1 of {len(result.samples)}"
    table = Table(title=Text(title), title_justify="left")
    table.add_column("pos", justify="right", style="dim")
    table.add_column("original")
    table.add_column("action")
    table.add_column("saw")
    table.add_column(f"top-{result.top_k} predictions")
    table.add_column("rank", justify="right")
    table.add_column("p(orig.)", justify="right")
    for mark in chosen:
        predictions = Text()
        for j, pred in enumerate(mark.predictions):
            if j:
                predictions.append(", ")
            style = "bold green" if pred.token_id == mark.original_id else ""
            predictions.append(pred.token_str, style=style)
            predictions.append(f" {pred.score:.2f}", style="dim")
        table.add_row(
            str(mark.position),
            Text(mark.original, style="bold"),
            Text(ACTION_LABEL[mark.action], style=ACTION_STYLE[mark.action]),
            Text(mark.seen),
            predictions,
            Text(str(mark.original_rank), style="bold green" if mark.original_rank == 1 else ""),
            f"{mark.original_score:.3g}",
        )
    console.print(table)
    if first.cls_predictions is not None:
        console.print(_prediction_table(Text("[CLS] position (sample 1)"), first.cls_predictions))
    selected = sum(row.count for row in result.summary if row.action == "all")
    scope = "" if len(result.samples) == 1 else f" over {len(result.samples)} samples"
    summary = Table(title=Text(f"recovery of the original token{scope} ({selected} positions)"), title_justify="left")
    summary.add_column("action")
    summary.add_column("positions", justify="right")
    summary.add_column("top-1", justify="right")
    summary.add_column("top-5", justify="right")
    summary.add_column("mean p(original)", justify="right")
    for row in result.summary:
        label = Text("all", style="bold") if row.action == "all" else Text(ACTION_LABEL[row.action])
        mean = "–" if row.mean_original_score is None else f"{row.mean_original_score:.3g}"
        summary.add_row(label, str(row.count), _percent(row.top1), _percent(row.top5), mean)
    console.print(summary)


def pll_table(result: PseudoLikelihoodResult, console: Console) -> None:
    header(console, "fill-mask --mode each (pseudo-log-likelihood)", result)
    table = Table()
    table.add_column("pos", justify="right", style="dim")
    table.add_column("token")
    table.add_column("ln P(token)", justify="right")
    table.add_column("rank", justify="right")
    table.add_column("top-1 prediction")
    table.add_column("", no_wrap=True)
    worst = min(s.log_prob for s in result.masks)
    for score in result.masks:
        top = score.predictions[0]
        flag = Text("◀ surprising", style="bold red") if score.surprising else Text("")
        table.add_row(
            str(score.position),
            Text(score.token, style="bold red" if score.surprising else "bold"),
            f"{score.log_prob:.3f}",
            str(score.rank),
            Text(f"{top.token_str} {top.score:.2f}"),
            Text(bar(score.log_prob / worst if worst < 0 else 0.0, 12), style="red").append_text(flag),
        )
    console.print(table)
    line = Text(f"PLL {result.pll:.3f} over {result.scored_tokens} tokens   pseudo-perplexity ")
    line.append(f"{result.pseudo_perplexity:.2f}", style="bold")
    console.print(line)


RENDERERS = {
    "FillMaskResult": fillmask_table,
    "CorruptionResult": corruption_table,
    "PseudoLikelihoodResult": pll_table,
}
