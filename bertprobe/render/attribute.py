"""Views of attribution results: the text coloured by attribution, the top word pieces, the
completeness check and faithfulness against random orders; and a standalone HTML page."""

from __future__ import annotations

import html
from pathlib import Path

from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from bertprobe.atomic import atomic_path
from bertprobe.attribute import METHODS, AttributionResult, Convergence, Faithfulness, TokenScore
from bertprobe.errors import InputError
from bertprobe.render import bar, closing, header, percent

TOP_TOKENS = 10
POSITIVE = (27, 140, 60)  # green: raises F
NEGATIVE = (205, 45, 45)  # red: lowers F
WHITE = (255, 255, 255)


def _blend(value: float) -> tuple[int, int, int]:
    """A background for a score in [-1, 1]: white at 0, full green / red at +-1."""
    strength = min(abs(value), 1.0) * 0.85
    colour = POSITIVE if value >= 0 else NEGATIVE
    return tuple(round(w + (c - w) * strength) for w, c in zip(WHITE, colour, strict=True))  # type: ignore[return-value]


def _word_scale(result: AttributionResult) -> float:
    return max((abs(w.normalised) for w in result.words if not w.fixed), default=0.0) or 1.0


def top_tokens(result: AttributionResult, limit: int = TOP_TOKENS) -> list[TokenScore]:
    """The free word pieces with the largest |attribution|, largest first."""
    free = [t for t in result.tokens if not t.fixed]
    return sorted(free, key=lambda t: (-abs(t.attribution), t.index))[:limit]


def _explains(result: AttributionResult) -> Text:
    target = result.target
    chosen = "the model's top choice" if target.predicted else f"rank {target.rank} of the model's choices"
    line = Text("explains: ", style="dim")
    line.append(result.score, style="bold")
    line.append(f" = {result.output:.4f}")
    line.append(f"  (p = {signif(target.probability, sign=False)}, {chosen})", style="dim")
    return line


def _baseline(result: AttributionResult) -> str | None:
    """The baseline the attributions were measured against, or None for a method that forms none (saliency)."""
    method = METHODS.get(result.method)
    return result.baseline if method is None or method.uses_baseline else None


def _method_line(result: AttributionResult) -> Text:
    line = Text("method: ", style="dim")
    line.append(result.method, style="bold")
    line.append(f" ({result.method_description}); baseline: {_baseline(result) or 'none'}")
    if result.steps is not None:
        line.append(f"; {result.steps} steps, {result.internal_batch_size} per pass")
    line.append(f"; device: {result.device}", style="dim")
    return line


def coloured_text(result: AttributionResult) -> Text:
    """The text with each word's background scaled by its attribution (fixed words underlined)."""
    scale = _word_scale(result)
    text = Text()
    cursor = 0
    for word in result.words:
        text.append(result.text[cursor : word.char_start])
        if word.fixed:
            style = Style(bold=True, underline=True)
        else:
            style = Style(color="black", bgcolor=Color.from_rgb(*_blend(word.normalised / scale)))
        text.append(result.text[word.char_start : word.char_end], style=style)
        cursor = word.char_end
    text.append(result.text[cursor:])
    return text


def _tokens_table(result: AttributionResult) -> Table:
    rows = top_tokens(result)
    table = Table(title=Text(f"top {len(rows)} word pieces by |attribution|"), title_justify="left")
    table.add_column("rank", justify="right", style="dim")
    table.add_column("piece")
    table.add_column("position", justify="right", style="dim")
    table.add_column("attribution", justify="right")
    table.add_column("share", justify="right")
    table.add_column("", no_wrap=True)
    largest = max((abs(t.normalised) for t in rows), default=0.0) or 1.0
    for rank, token in enumerate(rows, start=1):
        colour = "green" if token.attribution >= 0 else "red"
        table.add_row(
            str(rank),
            Text(token.token, style="bold" if rank == 1 else ""),
            str(token.index),
            Text(signif(token.attribution), style=colour),
            f"{token.normalised:+.1%}",
            Text(bar(abs(token.normalised) / largest, width=16), style=colour),
        )
    return table


def _rounding(conv: Convergence) -> str:
    return f"passes: |delta| is at float rounding (at most {conv.rounding:.0e}), F(x) and F(baseline) all but equal"


def _by_rounding(conv: Convergence) -> bool:
    """Passed on the rounding slack alone: the share of a near-zero difference would read as far above 5%."""
    return conv.relative is None or conv.relative > conv.tolerance


def completeness_lines(result: AttributionResult) -> list[Text]:
    if _baseline(result) is None:
        promise = f"({result.method} has no baseline and makes no completeness promise)"
        return [Text(f"F(x) = {result.output:.4f}  {promise}", style="dim")]
    outputs = Text(
        f"F(x) = {result.output:.4f}, F(baseline) = {result.baseline_output:.4f}, "
        f"F(x) - F(baseline) = {result.output - result.baseline_output:+.4f}",
        style="dim",
    )
    conv = result.convergence
    if conv is None:
        outputs.append(f"  ({result.method} makes no completeness promise)")
        return [outputs]
    total = sum(t.attribution for t in result.tokens)
    line = Text("completeness: ", style="dim")
    line.append(f"sum of attributions = {total:+.4f}; convergence delta = {conv.delta:+.2e}")
    share = "undefined (F(x) = F(baseline))" if conv.relative is None else f"{conv.relative:.2%}"
    line.append(f" = {share} of |F(x) - F(baseline)| ")
    if conv.passed and not _by_rounding(conv):
        line.append(f"within {conv.tolerance:.0%}", style="bold green")
    elif conv.passed:
        line.append(_rounding(conv), style="bold green")
    else:
        line.append(f"above {conv.tolerance:.0%}: not trustworthy yet", style="bold red")
    lines = [outputs, line]
    if len(conv.tries) > 1:
        tried = " -> ".join(f"{t.steps} ({'-' if t.relative is None else f'{t.relative:.1%}'})" for t in conv.tries)
        lines.append(Text(f"auto-steps: {tried}", style="dim"))
    return lines


def _faithfulness_table(result: AttributionResult) -> Table | None:
    faith = result.faithfulness
    if faith is None:
        return None
    table = Table(title=Text("faithfulness (ERASER AOPC)"), title_justify="left")
    table.add_column("")
    table.add_column("attribution", justify="right")
    table.add_column(f"{faith.random_orders} random orders", justify="right")
    table.add_column("beats", justify="right")
    table.add_row(
        "comprehensiveness ↑",
        signif(faith.comprehensiveness_aopc),
        f"{signif(faith.random_comprehensiveness_aopc)} ± {signif(faith.random_comprehensiveness_std, sign=False)}",
        _share(faith.beats_random_comprehensiveness),
    )
    table.add_row(
        "sufficiency ↓",
        signif(faith.sufficiency_aopc),
        f"{signif(faith.random_sufficiency_aopc)} ± {signif(faith.random_sufficiency_std, sign=False)}",
        _share(faith.beats_random_sufficiency),
    )
    return table


def signif(value: float, sign: bool = True) -> str:
    """Four decimals, or three significant digits where four decimals would round a nonzero value to 0.0000."""
    plus = "+" if sign else ""
    if value == 0 or abs(value) >= 0.0005:
        return f"{value:{plus}.4f}"
    return f"{value:{plus}.2e}"


def faithfulness_note(result: AttributionResult) -> Text:
    faith = result.faithfulness
    assert faith is not None
    bins = ", ".join(f"{k}% ({n})" for k, n in zip(faith.bins, faith.removed, strict=True))
    return Text(
        f"{faith.quantity} on the whole text = {signif(faith.full, sign=False)}; its drop when the top pieces are "
        f"{faith.removal}, "
        f"averaged over the top {bins} pieces. Comprehensiveness removes them (higher is better), sufficiency "
        "keeps only them (lower is better); beats = share of random orders this attribution does better than.",
        style="dim",
    )


def _share(value: float) -> Text:
    return Text(percent(value), style="green" if value >= 0.9 else "yellow" if value >= 0.5 else "red")


def attribution_view(result: AttributionResult, console: Console, explain: bool = False, details: bool = False) -> None:
    header(console, "attribution", result)
    console.print(_explains(result))
    console.print(_method_line(result))
    console.print()
    console.print(coloured_text(result))
    console.print(
        Text("green raises F, red lowers it (a word: its pieces summed); underlined pieces are held fixed", style="dim")
    )
    console.print(_tokens_table(result))
    for line in completeness_lines(result):
        console.print(line)
    table = _faithfulness_table(result)
    if table is not None:
        console.print(table)
        console.print(faithfulness_note(result))
    closing(console, readings(result), explain_text(result) if explain else None)


EXPLAIN = (
    "attribution: how much a word piece pushes the explained score up (+, green) or down (-, red), "
    "measured against the baseline input; share: its part of all attributions. completeness: for "
    "Integrated Gradients the attributions should add up to F(x) - F(baseline); the delta says how "
    "far off they are."
)
# Saliency forms no baseline input: its attribution is the gradient at the text times the text's own embedding.
EXPLAIN_NO_BASELINE = EXPLAIN.replace(
    "measured against the baseline input", "gradient times input at the text itself (no baseline input)"
)


def explain_text(result: AttributionResult) -> str:
    return EXPLAIN if _baseline(result) is not None else EXPLAIN_NO_BASELINE


def readings(result: AttributionResult) -> list[str]:
    """What this run's attributions mean, in plain words."""
    lines = []
    # Only pieces that move the score are named: a 0 neither raises nor lowers it.
    ranked = [t for t in top_tokens(result, limit=2) if t.attribution != 0]
    if ranked:
        named = " and ".join(
            f"{t.token!r} ({'raises' if t.attribution > 0 else 'lowers'} it, {t.normalised:+.0%})" for t in ranked
        )
        lines.append(f"The score leans most on {named}.")
    elif any(not t.fixed for t in result.tokens):
        lines.append(f"Every word piece's attribution is 0: under {result.method}, no word piece moves the score.")
    faith = result.faithfulness
    if faith is not None:
        beats = min(faith.beats_random_comprehensiveness, faith.beats_random_sufficiency)
        if _all_orders_tie(faith):
            free = sum(not t.fixed for t in result.tokens)
            why = (
                "1 word piece to rank, so every order removes the same piece"
                if free == 1
                else f"removing any of the {free} word pieces changes the {faith.quantity} alike"
            )
            lines.append(
                f"Every random order scores the same as the attribution ({why}): "
                "faithfulness cannot judge this ranking."
            )
        elif beats >= 0.9:
            lines.append(
                f"Removing the top pieces changes the score more than at least {percent(beats)} of random orders do: "
                "the ranking points at pieces that matter."
            )
        else:
            lines.append(_short_of_random(result, faith))
    conv = result.convergence
    if conv is not None and not conv.passed:
        lines.append(f"The attributions do not add up to the score's change yet: {conv.advice()}.")
    return lines


def _short_of_random(result: AttributionResult, faith: Faithfulness) -> str:
    """The reading when the ranking beats fewer than 90% of random orders on a check: losses or ties."""
    checks = [
        (faith.beats_random_comprehensiveness, faith.ties_random_comprehensiveness),
        (faith.beats_random_sufficiency, faith.ties_random_sufficiency),
    ]
    # The check with the most random orders doing better; at equal losses, the one it beats least.
    beats, ties = max(checks, key=lambda check: (round(1 - check[0] - check[1], 9), -check[0]))
    if ties == 0:
        return (
            f"The ranking beats only {percent(beats)} of random orders on one of the two checks: "
            "read it as a hint, not as the reason for the score."
        )
    # Orders that score the same are not ones the ranking lost to: on a short text many remove the same pieces.
    lost = max(0.0, 1 - beats - ties)
    said = (
        f"The ranking beats only {percent(beats)} of random orders on one of the two checks, "
        f"ties {percent(ties)} and loses to {percent(lost)}"
    )
    if lost <= 0.1:
        free = sum(not t.fixed for t in result.tokens)
        return f"{said}: with {free} word pieces to rank, too few orders differ to judge it; read it as a hint."
    return f"{said}: read it as a hint, not as the reason for the score."


def _all_orders_tie(faith: Faithfulness) -> bool:
    """Whether no random order differs from the attribution's on either check (nothing to beat)."""
    return all(
        std <= 1e-9 and abs(ours - theirs) <= 1e-9
        for ours, theirs, std in (
            (faith.comprehensiveness_aopc, faith.random_comprehensiveness_aopc, faith.random_comprehensiveness_std),
            (faith.sufficiency_aopc, faith.random_sufficiency_aopc, faith.random_sufficiency_std),
        )
    )


RENDERERS = {"AttributionResult": attribution_view}


# --------------------------------------------------------------------------------------------
# Standalone HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 60rem;
       color: #1b1b1b; line-height: 1.5; padding: 0 1rem; }
h1 { font-size: 1.3rem; margin-bottom: 0.2rem; }
.meta { color: #555; font-size: 0.9rem; }
.text { font-size: 1.4rem; line-height: 2.4rem; margin: 1.5rem 0; }
.w { padding: 0.15rem 0.2rem; border-radius: 0.25rem; }
.fixed { font-weight: bold; text-decoration: underline; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.95rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child, td.piece { text-align: left; }
.pos { color: #1b7a36; } .neg { color: #b42323; }
.ok { color: #1b7a36; font-weight: bold; } .bad { color: #b42323; font-weight: bold; }
.swatch { display: inline-block; width: 1rem; height: 1rem; vertical-align: middle; border: 1px solid #ccc; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rgb(value: float) -> str:
    red, green, blue = _blend(value)
    return f"rgb({red}, {green}, {blue})"


def to_html(result: AttributionResult) -> str:
    """A page that needs nothing else: inline CSS, no scripts, no fonts, every string escaped."""
    scale = _word_scale(result)
    spans, cursor = [], 0
    for word in result.words:
        spans.append(_e(result.text[cursor : word.char_start]))
        piece = _e(result.text[word.char_start : word.char_end])
        if word.fixed:
            spans.append(f'<span class="w fixed" title="held fixed">{piece}</span>')
        else:
            tip = _e(f"attribution {signif(word.attribution)} ({word.normalised:+.1%})")
            spans.append(
                f'<span class="w" style="background: {_rgb(word.normalised / scale)}" title="{tip}">{piece}</span>'
            )
        cursor = word.char_end
    spans.append(_e(result.text[cursor:]))

    rows = []
    for rank, token in enumerate(top_tokens(result, limit=len(result.tokens)), start=1):
        sign = "pos" if token.attribution >= 0 else "neg"
        rows.append(
            f'<tr><td>{rank}</td><td class="piece"><code>{_e(token.token)}</code></td><td>{token.index}</td>'
            f'<td class="{sign}">{signif(token.attribution)}</td><td>{token.normalised:+.1%}</td>'
            f'<td><span class="swatch" style="background: {_rgb(token.normalised / scale)}"></span></td></tr>'
        )
    words = []
    for word in result.words:
        if word.fixed:
            continue
        pieces = " ".join(result.tokens[i].token for i in word.pieces)
        sign = "pos" if word.attribution >= 0 else "neg"
        words.append(
            f'<tr><td class="piece">{_e(word.text)}</td><td><code>{_e(pieces)}</code></td>'
            f'<td class="{sign}">{signif(word.attribution)}</td><td>{word.normalised:+.1%}</td></tr>'
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>bertprobe attribution: {_e(result.text)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>bertprobe attribution</h1>",
        f'<p class="meta">model: <code>{_e(result.model)}</code>'
        + (f" @ <code>{_e(result.revision)}</code>" if result.revision else "")
        + f"; method: <b>{_e(result.method)}</b> ({_e(result.method_description)}); "
        + f"baseline: {_e(_baseline(result) or 'none')}"
        + (f"; {result.steps} steps" if result.steps is not None else "")
        + "</p>",
        f"<p>explains: <b>{_e(result.score)}</b> = {result.output:.4f} "
        f'<span class="meta">(p = {signif(result.target.probability, sign=False)}, '
        f"rank {result.target.rank})</span></p>",
        f'<div class="text">{"".join(spans)}</div>',
        '<p class="meta">green raises F, red lowers it (a word: its pieces summed); underlined pieces are held '
        + ("fixed (the same in the baseline)</p>" if _baseline(result) is not None else "fixed (not attributed)</p>"),
        _completeness_html(result),
        _faithfulness_html(result),
        "<h2>word pieces</h2>",
        "<table><tr><th>rank</th><th>piece</th><th>position</th><th>attribution</th><th>share</th><th></th></tr>",
        *rows,
        "</table>",
        "<h2>words (each its word pieces' attributions summed)</h2>",
        "<table><tr><th>word</th><th>pieces</th><th>attribution</th><th>share</th></tr>",
        *words,
        "</table>",
        # The same plain-words readings that close the terminal view, so the page is never read without them.
        *(f"<p><b>{_e(line)}</b></p>" for line in readings(result)),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _completeness_html(result: AttributionResult) -> str:
    if _baseline(result) is None:
        return (
            f'<p class="meta">F(x) = {result.output:.4f} ({_e(result.method)} has no baseline and makes no '
            "completeness promise)</p>"
        )
    outputs = (
        f"F(x) = {result.output:.4f}, F(baseline) = {result.baseline_output:.4f}, "
        f"F(x) &minus; F(baseline) = {result.output - result.baseline_output:+.4f}"
    )
    conv = result.convergence
    if conv is None:
        return f'<p class="meta">{outputs} ({_e(result.method)} makes no completeness promise)</p>'
    share = "undefined" if conv.relative is None else f"{conv.relative:.2%}"
    verdict = (
        f'<span class="ok">{_rounding(conv) if _by_rounding(conv) else f"within {conv.tolerance:.0%}"}</span>'
        if conv.passed
        else f'<span class="bad">above {conv.tolerance:.0%}: not trustworthy yet</span>'
    )
    total = sum(t.attribution for t in result.tokens)
    return (
        f'<p class="meta">{outputs}</p><p>completeness: sum of attributions = {total:+.4f}; convergence delta = '
        f"{conv.delta:+.2e} = {share} of |F(x) &minus; F(baseline)|, {verdict} ({conv.steps} steps)</p>"
    )


def _faithfulness_html(result: AttributionResult) -> str:
    faith = result.faithfulness
    if faith is None:
        return ""
    return (
        f'<h2>faithfulness</h2><p class="meta">ERASER AOPC over removing the top {_e(", ".join(map(str, faith.bins)))}%'
        f" of pieces ({_e(faith.removal)}); {_e(faith.quantity)} on the whole text = "
        f"{signif(faith.full, sign=False)}</p>"
        f"<table><tr><th></th><th>this attribution</th><th>random orders (n={faith.random_orders})</th>"
        "<th>beats random</th></tr>"
        f"<tr><td>comprehensiveness (higher is better)</td><td>{signif(faith.comprehensiveness_aopc)}</td>"
        f"<td>{signif(faith.random_comprehensiveness_aopc)} &plusmn; "
        f"{signif(faith.random_comprehensiveness_std, sign=False)}</td>"
        f"<td>{percent(faith.beats_random_comprehensiveness)}</td></tr>"
        f"<tr><td>sufficiency (lower is better)</td><td>{signif(faith.sufficiency_aopc)}</td>"
        f"<td>{signif(faith.random_sufficiency_aopc)} &plusmn; {signif(faith.random_sufficiency_std, sign=False)}</td>"
        f"<td>{percent(faith.beats_random_sufficiency)}</td></tr></table>"
    )


def write_html(result: AttributionResult, path: str | Path) -> Path:
    """Write the page atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            temporary.write_text(to_html(result), encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror}", hint="Pick a writable path for --html.") from None
    return path
