"""Views of sentence scores: one text's per-token table, many texts' summary, minimal-pair accuracy."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.render import bar, closing, header, percent
from bertprobe.render.jsonl import Summary
from bertprobe.score import PairsResult, SentenceScore

PLAIN_WORDS = (
    "PLL = sum over the tokens of ln P(token | the rest of the text), each token masked in turn: closer to 0 "
    "means the model finds the text more expected; pseudo-perplexity (PPPL) = exp(-PLL / tokens), lower is more "
    "expected."
)
# within-word-l2r masks a piece with the later pieces of its word; the earlier ones stay visible.
L2R_WORDS = PLAIN_WORDS.replace(
    "the rest of the text), each token masked in turn",
    "the text with it and the later pieces of its word masked), each token in turn",
)


def sentence_table(result: SentenceScore, console: Console) -> None:
    header(console, f"score --metric {result.metric}", result)
    console.print(Text(result.text))
    table = Table()
    table.add_column("pos", justify="right", style="dim")
    table.add_column("token")
    table.add_column("ln P(token)", justify="right")
    table.add_column("P", justify="right")
    table.add_column("", no_wrap=True)
    worst = min(s.log_prob for s in result.scores)
    for score in result.scores:
        table.add_row(
            str(score.position),
            Text(score.token, style="bold"),
            _ln(score.log_prob),
            _p(math.exp(score.log_prob)),
            Text(bar(score.log_prob / worst if worst < 0 else 0.0, 12), style="red"),
        )
    console.print(table)
    line = Text(f"PLL {_ln(result.pll)} over {result.scored_tokens} tokens   pseudo-perplexity ")
    line.append(f"{result.pseudo_perplexity:.2f}", style="bold")
    console.print(line)
    words = PLAIN_WORDS if result.metric == "original" else L2R_WORDS
    console.print(Text(words + " The bar shows how surprising each token is.", style="dim"))
    closing(console, sentence_readings(result))


def sentence_readings(result: SentenceScore) -> list[str]:
    """What this text's numbers say, in plain words."""
    if not result.scores:
        return []
    perplexity = result.pseudo_perplexity
    among = f"{perplexity:.1f}" if perplexity < 10 else f"{perplexity:,.0f}"
    masked = "masked one at a time" if result.metric == "original" else "masked with the later pieces of its word"
    line = (
        f"Pseudo-perplexity {perplexity:.2f}: {masked}, each token was on average as hard for the "
        f"model to guess as a pick among {among} equally likely tokens"
    )
    if result.vocab_size and perplexity > result.vocab_size:
        # A uniform guess over the vocabulary gives exactly its size: above it, the model does worse than blind.
        line += f" (more than the {result.vocab_size:,} word pieces of its vocabulary: worse than a blind guess)"
    worst = min(result.scores, key=lambda s: s.log_prob)
    best = max(result.scores, key=lambda s: s.log_prob)
    if len(result.scores) == 1:
        return [line + "."]
    if worst.log_prob == best.log_prob:
        return [line + "; every token was exactly as expected as the others."]
    # Enough digits that the least and the most expected token do not read as equally likely.
    digits = 3
    low, high = _p(math.exp(worst.log_prob)), _p(math.exp(best.log_prob))
    while low == high and digits < 8:
        digits += 1
        low, high = _p(math.exp(worst.log_prob), digits), _p(math.exp(best.log_prob), digits)
    return [
        line + f". Least expected: {worst.token!r} (position {worst.position}, P={low}); "
        f"most expected: {best.token!r} (P={high})."
    ]


def _ln(value: float) -> str:
    """ln P (or a sum or difference of them) to three decimals; a tiny negative value in scientific form, never
    "-0.000"."""
    text = f"{value:.3f}"
    return f"{value:.1e}" if value < 0 and float(text) == 0 else text


def _p(value: float, digits: int = 3) -> str:
    """P to ``digits`` significant digits, with more where that would read 1 but the token was not certain (0.9996)."""
    text = f"{value:.{digits}g}"
    while value < 1 and float(text) >= 1 and digits < 8:
        digits += 1
        text = f"{value:.{digits}g}"
    return text


def summary(show: int) -> Summary:
    return Summary(
        "score",
        [("tokens", "right"), ("PLL", "right"), ("PLL/token", "right"), ("PPPL", "right")],
        show,
    )


def summary_cells(result: SentenceScore) -> list[str]:
    return [
        str(result.scored_tokens),
        _ln(result.pll),
        _ln(result.pll / result.scored_tokens),
        f"{result.pseudo_perplexity:.2f}",
    ]


def corpus_lines(texts: int, tokens: int, pll: float, metric: str) -> list[str]:
    if not texts:
        return []
    return [
        f"{texts} text(s), {tokens} scored tokens (--metric {metric}): total PLL {_ln(pll)}, "
        f"mean PLL per token {_ln(pll / tokens)}, corpus pseudo-perplexity {math.exp(-pll / tokens):.2f}.",
        PLAIN_WORDS if metric == "original" else L2R_WORDS,
    ]


def pairs_table(result: PairsResult, console: Console, show: int = 10) -> None:
    header(console, f"minimal pairs --metric {result.metric}", result)
    table = Table()
    table.add_column(Text(result.group_column or "group"))
    table.add_column("pairs", justify="right")
    table.add_column("accuracy", justify="right")
    table.add_column("ties", justify="right")
    table.add_column("", no_wrap=True)
    for group, acc in result.by_group.items():
        table.add_row(Text(group), str(acc.n), percent(acc.accuracy, 1), str(acc.ties), Text(bar(acc.accuracy, 16)))
    if len(result.by_group) > 1:
        # Named so that no group of the user's ("all", "total") can be taken for it.
        table.add_row(
            Text(f"all {len(result.by_group)} groups", style="bold"),
            str(result.n),
            Text(percent(result.accuracy, 1), style="bold"),
            str(result.ties),
            Text(bar(result.accuracy, 16), style="bold"),
        )
    console.print(table)
    wrong = [p for p in result.pairs if not p.correct]
    if wrong and show:
        listed = sorted(wrong, key=lambda p: p.difference)[:show]
        # Ties count as wrong and are listed here too, but they are not the wrong way round.
        title = "pairs scored the wrong way round" + (" or tied" if any(p.tie for p in listed) else "")
        shown = f"{len(listed)} of {len(wrong)}; --show N for more" if len(listed) < len(wrong) else f"all {len(wrong)}"
        errors = Table(title=f"{title} (largest gap first; {shown})", title_justify="left")
        errors.add_column("#", justify="right", style="dim")
        # Wrapped, never cut: a minimal pair may differ only in its last words.
        errors.add_column("good", overflow="fold", max_width=40)
        errors.add_column("bad", overflow="fold", max_width=40)
        errors.add_column("PLL good - bad", justify="right")
        for pair in listed:
            # A wrong pair by 0.0002 must not read "-0.000" beside a tie's "0.000".
            errors.add_row(str(pair.index), Text(pair.good), Text(pair.bad), _ln(pair.difference))
        console.print(errors)
    console.print(
        Text(
            f"{result.correct} of {result.n} pairs ({percent(result.accuracy, 1)}) have the good sentence scored above "
            f"the bad one (PLL, higher = more expected); ties ({result.ties}) count as wrong; 50% is chance.",
        )
    )


RENDERERS = {"SentenceScore": sentence_table, "PairsResult": pairs_table}
