"""Views of fill-mask results: masks and their predictions, corruption plans, pseudo-log-likelihood."""

from __future__ import annotations

from rich.columns import Columns
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.fillmask import (
    MAX_SAMPLES,
    TARGET_SCORE_DEFINITION,
    ContextResult,
    ContextView,
    CorruptionResult,
    FillMaskResult,
    JointFill,
    MaskPrediction,
    Prediction,
    PseudoLikelihoodResult,
    after_space,
)
from bertprobe.render import bar, closing, header, percent, probability

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
            probability(pred.score, 4),  # never 0.0000 for a word the model still gives a chance
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


def fillmask_table(result: FillMaskResult, console: Console, explain: bool = False, details: bool = False) -> None:
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
    closing(console, (), FILLMASK_EXPLAIN if explain else None)
    filled = Text("top-1 fill: ", style="dim")
    filled.append_text(_styled_fill(result, [m.predictions[0].token_str for m in result.masks], result.filled))
    console.print(filled)
    if result.joint is not None:
        _joint_table(result, console)
    if result.targets is not None:
        _targets_tables(result, console)
    closing(console, fillmask_readings(result))


FILLMASK_EXPLAIN = (
    "rank: the model's order of preference; probability: softmax over the whole vocabulary at the mask "
    "(all words sum to 1); the bar is relative to the top word."
)


def fillmask_readings(result: FillMaskResult) -> list[str]:
    """What this run's predictions mean, in plain words."""
    lines = []
    top = result.masks[0].predictions[0]
    if len(result.masks) == 1:
        confidence = (
            "it is fairly sure"
            if top.score >= 0.5
            else "it is unsure, several words fit"
            if top.score < 0.2
            else "it leans that way, but is far from sure"
        )
        lines.append(
            f"The model's best guess for the mask is {top.token_str.strip()!r} with p={_p(top.score)}, "
            f"so {confidence}. "
            "Each mask is predicted from its own final hidden state, which has read the words on both sides."
        )
    else:
        lines.append(
            f"Each of the {len(result.masks)} masks is predicted on its own, from its own final hidden state, with "
            "the other masks still hidden (--decode joint fills them together)."
        )
    lines.extend(_hidden_word_readings(result))
    if result.cls_predictions is not None:
        cls_top = result.cls_predictions[0]
        lines.append(
            f"Read off [CLS] instead, the same head guesses {cls_top.token_str.strip()!r} (p={_p(cls_top.score)}): "
            "[CLS] was never trained to predict a masked word, so it does not answer the mask."
        )
        if result.cls_origin is not None:
            lines.append(result.cls_origin.note)
    return lines


MAX_OCCURRENCES_SAID = 4


def _hidden_word_readings(result: FillMaskResult) -> list[str]:
    """Where the model ranks the word --mask-word hid: at every occurrence masked, not only the first (each can
    rank differently), and for a word of several pieces, its first piece's rank, said to be that."""
    by_position = {m.position: m for m in result.masks}
    found = [(w, by_position[w.positions[0]].original) for w in result.masked_words if w.positions[0] in by_position]
    found = [(w, original) for w, original in found if original is not None]
    if not found:
        return []
    word, first = found[0]
    ranks = [f"{_ordinal(original.rank)} (p={original.score:.3g})" for _, original in found[:MAX_OCCURRENCES_SAID]]
    if len(found) > MAX_OCCURRENCES_SAID:
        ranks.append(f"{len(found) - MAX_OCCURRENCES_SAID} more (each mask's table has them)")
    ranked = ranks[0] if len(ranks) == 1 else ", ".join(ranks[:-1]) + " and " + ranks[-1]
    lengths = {len(w.positions) for w, _ in found}
    several = f"masked at its {len(found)} occurrences" if len(found) > 1 else ""
    if lengths == {1}:
        subject = f"The hidden word {first.token!r}" + (f" is {several}; it" if several else "")
    else:
        subject = f"The hidden word {word.word!r} is " + (
            f"{lengths.pop()} word pieces" if len(lengths) == 1 else "several word pieces"
        )
        subject += f", {several}" if several else ""
        same = len({original.token for _, original in found}) == 1
        subject += f"; its first, {first.token!r}," if same else "; its first piece"
    return [f"{subject} comes {ranked} in the model's list."]


def _p(value: float) -> str:
    """A probability to two decimals, with more where that would read 1.00 or 0.00 but the value is not (0.9977
    is not certain), or would cross a cut-off of the confidence words (0.4996 is not "fairly sure")."""
    return probability(value, 2, cuts=(0.2, 0.5))


def _ordinal(rank: int) -> str:
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"{rank:,}{suffix}"


def _fill_text(result: FillMaskResult, fill: JointFill) -> Text:
    return _styled_fill(result, fill.words or fill.tokens, fill.filled)


def _styled_fill(result: FillMaskResult, words: list[str], filled: str) -> Text:
    """``filled`` (the core's fill of the masks with ``words``) with the filled words in bold green.

    The core sets a word apart from a fill it directly follows ("new table" for ``[MASK][MASK]``); that
    space is taken from ``filled``, as the renderer cannot tell a word's start from a piece's.
    """
    spans = sorted((m.char_start, m.char_end, word) for m, word in zip(result.masks, words, strict=True))
    text, cursor, at = Text(), 0, 0
    for start, end, word in spans:
        before = result.text_normalised[cursor:start]
        text.append(before)
        at += len(before)
        spaced = after_space(result.text_normalised, start, end, word)
        if spaced is not None:
            text.append(spaced[0])
            at += len(spaced[0])
            word = spaced[1]
        elif filled[at : at + 1] == " " and not before and word[:1] != " ":
            text.append(" ")
            at += 1
        shown = word.removeprefix("##")
        text.append(shown, style="bold green")
        at += len(shown)
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
    # 411 of 412 kept tokens recovered is 99.8%, not "100%": decimals are added where rounding would hide a miss.
    return "–" if value is None else percent(value)


def corruption_table(result: CorruptionResult, console: Console, explain: bool = False, details: bool = False) -> None:
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
    first = result.samples[0]
    chosen = [m for m in result.masks if m.sample == first.sample]
    # --rate is a setting: on a short text the count is rounded (and at least one), so say what was drawn.
    drawn = f" (sample {first.sample}: {len(chosen)} position{'s' if len(chosen) != 1 else ''})"
    console.print(Text(f"selects {100 * result.rate:g}% of the tokens as {unit}{drawn}, {how}", style="dim"))
    by_position = {m.position: m for m in chosen}
    seen = Text("model saw: ", style="dim")
    for position, token in enumerate(first.seen_tokens):
        if position:
            seen.append(" ")
        mark = by_position.get(position)
        seen.append(token, style=ACTION_STYLE[mark.action] if mark else "")
    console.print(seen)
    many = len(result.samples) > 1
    if many and result.examples:
        # Sample 1 alone rarely holds a random or kept token: show each action, drawn from every sample.
        chosen = [result.masks[i] for i in result.examples]
        title = f"examples of each action, from all {len(result.samples)} samples"
    else:
        title = "selected positions" if not many else f"sample 1 of {len(result.samples)}"
    table = Table(title=Text(title), title_justify="left")
    if many and result.examples:
        table.add_column("sample", justify="right", style="dim")
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
            predictions.append(f" {probability(pred.score, 2)}", style="dim")  # never 0.00 for a real chance
        table.add_row(
            *([str(mark.sample)] if many and result.examples else []),
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
        if result.cls_origin is not None:
            console.print(Text(result.cls_origin.note, style="dim"))
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
    closing(console, corruption_readings(result), CORRUPTION_EXPLAIN if explain else None)


CORRUPTION_EXPLAIN = (
    "action: what was done to a selected token ([MASK]: replaced by the mask token; random: replaced by "
    "a random word piece; kept: left as it was, but still predicted). saw: the token the model read "
    "there. rank / p(orig.): where the original token comes in the model's prediction at that position "
    "(1 = its first guess). top-1 / top-5: share of positions whose original is the first / among the "
    "first five guesses."
)


WHY_80_10_10 = (
    "Why not always [MASK]? Fine-tuned and real inputs never contain [MASK], so BERT cannot rely on seeing it: "
    "with 10% random and 10% kept tokens it must predict every word from context, whatever it reads there."
)


def corruption_readings(result: CorruptionResult) -> list[str]:
    """What this run's recovery numbers mean, in plain words."""
    rows = {row.action: row for row in result.summary}
    lines = []
    if result.replace == "bert":
        parts = []
        for action, phrase in (("mask", "[MASK]"), ("random", "random"), ("keep", "kept")):
            row = rows.get(action)
            if row is not None and row.count:
                parts.append(f"{_percent(row.top1)} of the {row.count} {phrase}")
        if parts:
            lines.append(
                "The original word was the model's first guess at "
                + (", ".join(parts[:-1]) + " and " if len(parts) > 1 else "")
                + parts[-1]
                + " positions."
            )
        missing = [ACTION_LABEL[a] for a in ("random", "keep") if not (rows.get(a) and rows[a].count)]
        if missing:
            drawn = len(result.samples)
            # Ask for more draws than were made (20 of 20 is no advice); at the limit, only more tokens help.
            more = min(MAX_SAMPLES, max(20, 5 * drawn))
            advice = (
                f"add --samples {more} to see them"
                if more > drawn
                else "a longer text or a higher --rate selects more tokens to see them in"
            )
            lines.append(f"No {' or '.join(missing)} token was drawn in {drawn} sample(s): {advice}.")
        lines.append(WHY_80_10_10)
    else:
        every = rows.get("all")
        if every is not None and every.count:
            lines.append(
                f"Every selected token became [MASK]; the model put the original first in {_percent(every.top1)} "
                f"of {every.count} positions and among its first five in {_percent(every.top5)}."
            )
    return lines


def pll_table(result: PseudoLikelihoodResult, console: Console, explain: bool = False, details: bool = False) -> None:
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
            Text(f"{top.token_str} {probability(top.score, 2)}"),
            Text(bar(score.log_prob / worst if worst < 0 else 0.0, 12), style="red").append_text(flag),
        )
    console.print(table)
    line = Text(f"PLL {result.pll:.3f} over {result.scored_tokens} tokens   pseudo-perplexity ")
    line.append(f"{result.pseudo_perplexity:.2f}", style="bold")
    console.print(line)
    by_position = {s.position: s for s in result.masks}
    surprising = ", ".join(repr(by_position[p].token) for p in result.surprising if p in by_position)
    reading = (
        f"Masked one at a time, each token of this text gets on average (geometric mean) the probability of a 1-in-"
        f"{result.pseudo_perplexity:,.1f} guess; the model least expected {surprising}."
    )
    closing(console, [reading], PLL_EXPLAIN if explain else None)


PLL_EXPLAIN = (
    "ln P(token): the log-probability of the real token when only it is masked (0 = certain, more "
    "negative = more surprising); rank: where it comes in the model's list; PLL: their sum."
)


CONTEXT_TITLE = {"left": "left context only", "right": "right context only", "both": "both sides (BERT)"}


def _seen(view: ContextView) -> Text:
    """The word pieces the model read, the mask highlighted."""
    line = Text()
    for i, token in enumerate(view.tokens):
        if i:
            line.append(" ")
        line.append(token, style="bold magenta" if i == view.position else "dim")
    return line


def context_probability(value: float) -> str:
    # Probabilities far below 0.001 matter here (a left view can give the word 1e-6): keep 2 significant digits
    # everywhere, or the ratios the reading states cannot be seen in them (0.0014 and 0.0010 both read "0.001").
    return f"{value:.3f}" if value >= 0.01 else f"{value:.4f}" if value >= 0.001 else f"{value:.1e}"


def context_readings(result: ContextResult) -> list[str]:
    """What this run's numbers mean: which side of the mask does the work for the tracked word."""
    by_view = {v.context: v for v in result.views}
    word = result.tracked[0]
    score = {c: v.targets[0].score for c, v in by_view.items()}
    lines = []
    if {"left", "right"} <= score.keys():
        left, right = score["left"], score["right"]
        if max(left, right) > 0 and min(left, right) > 0:
            ratio = max(left, right) / min(left, right)
            times = _times(ratio)
            stronger, weaker = ("right", "left") if right > left else ("left", "right")
            lines.append(
                f"{word!r} gets p={context_probability(left)} from the left context alone and "
                f"p={context_probability(right)} from "
                + (
                    "the right alone: the two sides point to it about equally."
                    if times == "1.0"
                    else f"the right alone: the words to the {stronger} of the mask point to it {times}x as strongly "
                    f"as those to the {weaker}."
                )
            )
    sides = [c for c in ("left", "right") if c in score]
    if "both" in score and sides:
        # With one side computed, both sides are compared with that side only: the other may well do better.
        best = max(sides, key=lambda c: score[c])
        best_one_sided = score[best]
        side = "the better side" if len(sides) == 2 else f"the {best} side"
        one = "one side" if len(sides) == 2 else side
        other = "the other side" if len(sides) == 2 else f"the {'right' if best == 'left' else 'left'} side"
        has = "the left column" if "left" in sides else "the left context"
        if best_one_sided > 0:
            times = _times(score["both"] / best_one_sided)
            lines.append(
                f"With both sides it gets p={context_probability(score['both'])}"
                + (
                    f", {times}x {side} alone: BERT reads both directions "
                    f"at once; a left-to-right model only ever has {has}."
                    if score["both"] > best_one_sided and times != "1.0"
                    else f": here {one} alone already says as much as both."
                    if times == "1.0"
                    else f", less than {one} alone gives it ({context_probability(best_one_sided)}): {other} "
                    "points away from it."
                )
            )
    return lines


def _times(ratio: float) -> str:
    """A ratio as the reading says it: one decimal below 10 ("1.0" means about equal), whole above."""
    return f"{ratio:,.1f}" if ratio < 10 else f"{ratio:,.0f}"


def context_table(result: ContextResult, console: Console, explain: bool = False, details: bool = False) -> None:
    header(console, "fill-mask --context", result)
    if result.masked is not None:
        line = Text("masked word: ", style="dim")
        line.append(result.masked, style="bold")
        console.print(line)
    if explain or details:
        console.print(Text(result.definition, style="dim"))
    tables = []
    for view in result.views:
        title = Text(CONTEXT_TITLE[view.context], style="bold")
        title.append("\n")
        title.append_text(_seen(view))
        tables.append(_prediction_table(title, view.predictions))
    console.print(Columns(tables))
    origin = {
        "original": "the word that was there",
        "targets": "--targets",
    }.get(result.tracked_from, f"the {result.tracked_from}")
    table = Table(title=Text(f"probability of each word in the slot ({origin})"), title_justify="left")
    table.add_column("word")
    for view in result.views:
        table.add_column(CONTEXT_TITLE[view.context], justify="right")
    for index, word in enumerate(result.tracked):
        cells: list[Text | str] = [Text(word, style="bold")]
        for view in result.views:
            cells.append(context_probability(view.targets[index].score))
        table.add_row(*cells)
    console.print(table)
    if any(len(t.pieces) > 1 for v in result.views for t in v.targets):
        console.print(Text("several word pieces: " + TARGET_SCORE_DEFINITION, style="dim"))
    closing(console, context_readings(result), CONTEXT_EXPLAIN if explain else None)


CONTEXT_EXPLAIN = (
    "Each column is one input: the tokens under its title are all the model saw. 'probability' is the "
    "softmax over the whole vocabulary at the mask; a word of several pieces is scored piece by piece."
)


RENDERERS = {
    "FillMaskResult": fillmask_table,
    "CorruptionResult": corruption_table,
    "PseudoLikelihoodResult": pll_table,
    "ContextResult": context_table,
}
