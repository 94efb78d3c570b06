"""Views of next-sentence-prediction results."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.nsp import NspResult, ScoredPair
from bertprobe.render import bar, blind_luck, closing, header, percent, probability


def nsp_table(
    result: NspResult, console: Console, show: int = 20, explain: bool = False, details: bool = False
) -> None:
    header(console, "next sentence prediction", result)
    listed = result.pairs if show == 0 else result.pairs[:show]
    table = Table(title_justify="left")
    if any(p.line for p in listed):
        table.add_column("line", justify="right", style="dim")
    table.add_column("sentence A")
    table.add_column("sentence B")
    table.add_column("P(B follows A)", justify="right")
    table.add_column("", no_wrap=True)
    known = any(p.is_next is not None for p in listed)
    if known:
        table.add_column("truth")
    for pair in listed:
        cells = [str(pair.line)] if any(p.line for p in listed) else []
        # 0.4996 is no "0.500" beside a red bar, and 0.99996 no certain "1.000".
        # Whole sentences, wrapped by the table: two cut to their first words could read as the same pair.
        cells += [Text(pair.first), Text(pair.second), probability(pair.is_next_probability, 3, (0.5,))]
        cells.append(Text(bar(pair.is_next_probability, 12), style="green" if pair.predicted_next else "red"))
        if known:
            if pair.is_next is None:
                cells.append("")
            else:
                label = "next" if pair.is_next else "random"
                cells.append(Text(label + (" ✓" if pair.correct else " ✗"), style="green" if pair.correct else "red"))
        table.add_row(*cells)
    console.print(table)
    if len(listed) < len(result.pairs):
        console.print(Text(f"({len(result.pairs) - len(listed)} more pairs; --show 0 lists all)", style="dim"))
    if result.accuracy is not None:
        summary = Table(title="NSP accuracy", title_justify="left")
        for column in ("pairs", "count", "accuracy", "mean P(next)"):
            summary.add_column(column, justify="left" if column == "pairs" else "right")
        nexts = [p for p in result.pairs if p.is_next]
        randoms = [p for p in result.pairs if p.is_next is False]
        for name, group, accuracy, mean in (
            ("true next", nexts, result.accuracy_next, result.mean_probability_next),
            ("random", randoms, result.accuracy_random, result.mean_probability_random),
        ):
            summary.add_row(name, str(len(group)), _pct(accuracy), _num(mean))
        summary.add_row(Text("all", style="bold"), str(len(nexts) + len(randoms)), _pct(result.accuracy), "")
        console.print(summary)
        if nexts and randoms:
            footer = "chance level is 50% on each kind of pair: BERT trained on a 50/50 mix of true and random pairs"
        else:
            kind, answer = ("true next", "next") if nexts else ("random", "random")
            footer = f"every pair here is a {kind} pair: a head that always answers {answer!r} scores 100%"
        console.print(Text(footer, style="dim"))
    closing(console, readings(result), EXPLAIN if explain else None)


EXPLAIN = (
    "P(B follows A): the NSP head's probability, read from [CLS], that B is the sentence that really came "
    "after A; 0.5 or above counts as 'next' (green bar), below as 'random' (red). truth: what the pair "
    "really is, when known; ✓ when the head agrees."
)


def readings(result: NspResult) -> list[str]:
    """What this run's NSP numbers mean, in plain words."""
    lines = []
    if result.accuracy is not None:
        known = [p for p in result.pairs if p.is_next is not None]
        lines.append(_verdict(result, known))
    elif len(result.pairs) == 1:
        pair = result.pairs[0]
        p = pair.is_next_probability
        lines.append(
            f"P = {probability(p, 2, cuts=(0.5,))}: the NSP head, reading only [CLS], "
            + (
                "takes B for the sentence that follows A."
                if p >= 0.5
                else "takes B for a random sentence, not A's next."
            )
        )
    else:
        judged = sum(p.predicted_next for p in result.pairs)
        lines.append(
            f"The NSP head, reading only [CLS], takes B for A's next sentence in {judged} of {len(result.pairs)} "
            "pairs (P of 0.5 or above); add an is_next column to score it against the truth."
        )
    if result.cls_origin is not None:
        lines.append(result.cls_origin.note)
    return lines


# A verdict needs the head to tell the kinds apart by more than luck would, whatever the mix: Fisher's exact test,
# one-sided, on the head's answers against the truth. Its blind rival says "next" exactly as often as the head did
# but to pairs picked without looking, so a head that mostly says "next" gains nothing from a mix of mostly true
# next pairs (a binomial test of all right answers against 50% would credit it with the mix).
SIGNIFICANCE = 0.05


def _pairs(count: int, kind: str = "") -> str:
    return f"{count} {kind + ' ' if kind else ''}pair{'s' if count != 1 else ''}"


def _ones(count: int, kind: str) -> str:
    return f"the {count} {kind} one{'s' if count != 1 else ''}"


def _verdict(result: NspResult, known: list[ScoredPair]) -> str:
    """Accuracy against the truth, judged on the mean of both kinds' accuracies: always saying "next" gets 50%."""
    accuracy = result.accuracy or 0.0
    nexts = [p for p in known if p.is_next]
    randoms = [p for p in known if not p.is_next]
    majority = max(len(nexts), len(randoms)) / len(known)  # always giving the answer most pairs here want
    digits = 0  # enough to show the head's accuracy and the constant answer's apart, where both are shown
    unequal = bool(nexts) and bool(randoms) and len(nexts) != len(randoms)
    while unequal and accuracy != majority and percent(accuracy, digits) == percent(majority, digits) and digits < 4:
        digits += 1
    said = f"The NSP head was right on {percent(accuracy, digits)} of {_pairs(len(known))}"
    if result.accuracy_next is None or result.accuracy_random is None:
        kind, answer = ("true next", "next") if result.accuracy_random is None else ("random", "random")
        return (
            f"{said}, but every pair is a {kind} pair, so a head that always answers {answer!r} scores 100% too: "
            "add pairs of the other kind (--shuffle FILE builds both) to judge it."
        )
    # Per-kind accuracies: guessing, or always giving the same answer, gets 50% on their mean whatever the mix.
    balanced = (result.accuracy_next + result.accuracy_random) / 2
    if not unequal:  # the mean is the accuracy itself
        counts, more = _pairs(len(known)), "score more pairs"
        said += (
            f" ({percent(result.accuracy_next)} of the true next ones, {percent(result.accuracy_random)} of the "
            "random ones; guessing gets 50% of each)"
        )
    else:
        counts = f"{len(nexts)} true next and {_pairs(len(randoms), 'random')}"
        common, rare = ("next", "random") if len(nexts) > len(randoms) else ("random", "true next")
        more = f"score more {rare} pairs"
        said += (
            f" ({percent(result.accuracy_next)} of {_ones(len(nexts), 'true next')}, {percent(result.accuracy_random)} "
            f"of {_ones(len(randoms), 'random')}; guessing gets 50% of each, and their mean, {_mean(balanced)}, is "
            f"what the verdict judges: always answering {common!r} would get {percent(majority, digits)} of these "
            "pairs but only 50% on the mean)"
        )
    if result.mean_probability_next is not None and result.mean_probability_random is not None:
        said += (
            f"; true next sentences get P={result.mean_probability_next:.2f} on average, random ones "
            f"{result.mean_probability_random:.2f}"
        )
    said_next = sum(p.predicted_next for p in known)
    by_luck = blind_luck(sum(p.predicted_next for p in nexts), len(known), len(nexts), said_next)
    # A head right on every pair says "next" to exactly the true next ones: blind answers do that 1 time in
    # C(pairs, true next ones), which with one random pair among 20 is 1 in 20.
    if blind_luck(len(nexts), len(known), len(nexts), len(nexts)) >= SIGNIFICANCE:
        verdict = f"{counts} are too few to judge the head: even all right could be luck; {more}"
    elif balanced <= 0.5:
        verdict = "no better than guessing: this head does not tell true next sentences from random ones"
    elif by_luck >= SIGNIFICANCE:
        verdict = (
            f"{counts} are too few to tell that from lucky guessing (answers that ignore the sentences, saying "
            f"'next' as often as this head does, do as well {percent(by_luck)} of the time); {more}"
        )
    elif balanced <= 0.6:  # beyond luck, so "no better" would be false (60% of each kind over 1,000 pairs)
        verdict = "little better than guessing: this head hardly tells true next sentences from random ones"
    elif balanced >= 0.7:
        verdict = "so [CLS] carries what next-sentence prediction trained it for"
    else:
        verdict = "somewhat better than guessing"
    return f"{said}: {verdict}."


def _mean(balanced: float) -> str:
    """The mean of both kinds' accuracies, with decimals where rounding would carry it across a verdict's cut
    (69.7% shown as "70%" beside "somewhat better")."""

    def misleading(text: str) -> bool:
        shown = float(text[:-1]) / 100
        return any((shown <= cut) != (balanced <= cut) for cut in (0.5, 0.6)) or (shown >= 0.7) != (balanced >= 0.7)

    digits = 0
    while misleading(percent(balanced, digits)) and digits < 4:
        digits += 1
    return percent(balanced, digits)


def _pct(value: float | None) -> str:
    return "–" if value is None else percent(value, 1)


def _num(value: float | None) -> str:
    return "–" if value is None else probability(value, 3)  # a mean of 0.99996 is no certain "1.000"


RENDERERS = {"NspResult": nsp_table}
