"""Views of the word-sense probe: the per-layer table, the sentences by cluster, the similarity matrix, a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from bertprobe.atomic import atomic_path
from bertprobe.render import bar, check_plot_path, closing, header, plot_label, plot_warnings
from bertprobe.sense import LayerStats, SenseCatalog, SenseResult, SentenceVector, purity_by_chance


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    # Float noise around zero (the static row) must not print as "-0.000".
    return f"{0.0 if abs(value) < 0.5 * 10**-digits else value:.{digits}f}"


def snippet(sentence: SentenceVector, width: int = 56) -> Text:
    """The sentence cut to ``width`` characters around the word, with the word in bold."""
    text, start, end = sentence.text, sentence.start, sentence.end
    if len(text) > width:
        room = max(width - (end - start), 10)
        left = max(0, start - room // 2)
        right = min(len(text), left + (end - start) + room)
        left = max(0, right - (end - start) - room)
        # Cut at spaces so no word is shown half.
        if left > 0:
            space = text.find(" ", left, start)
            left = space + 1 if space != -1 else left
        if right < len(text):
            space = text.rfind(" ", end, right)
            right = space if space != -1 else right
    else:
        left, right = 0, len(text)
    out = Text("…" if left > 0 else "")
    out.append(text[left:start])
    out.append(text[start:end], style="bold yellow")
    out.append(text[end:right])
    if right < len(text):
        out.append("…")
    return out


def _layer_label(layer: int | None) -> str:
    if layer is None:
        return "static"
    return "embeddings" if layer == 0 else f"layer {layer}"


def _title(result: SenseResult) -> Text:
    line = Text()
    line.append(f"{len(result.sentences)} sentences", style="bold")
    line.append(f" from {result.origin}", style="dim")
    if result.labelled:
        counts = {sense: sum(s.sense == sense for s in result.sentences) for sense in result.senses}
        line.append(" · senses: ", style="dim")
        line.append(", ".join(f"{sense} ({count})" for sense, count in counts.items()))
    else:
        line.append(" · no sense labels", style="dim")
    line.append(f" · {result.pool} of the word's pieces", style="dim")
    return line


SEPARATES = 0.75  # a layer "separates" the senses when 1-NN reaches this and same-sense pairs are closer


def _row_name(stats: LayerStats) -> str:
    if stats.name == "position":
        return "position"
    return "static" if stats.layer is None else "emb" if stats.layer == 0 else str(stats.layer)


def _layer_table(result: SenseResult, details: bool = False) -> Table:
    best = result.best_layer
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("layer")
    # The mean-centred figures by default: the reading, 1-NN, silhouette and the best layer are judged on them,
    # and a raw gap beside a sentence about the centred one can contradict it. --details adds the raw ones.
    if result.labelled:
        columns = ["within°", "across°", "gap°", "1-NN", "silh."]
        if details:
            columns += ["raw gap", "raw within", "raw across", "aniso."]
    else:
        columns = ["mean cos°", "cluster silh."]
        if details:
            columns += ["raw mean cos", "aniso."]
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("", no_wrap=True)
    rows = list(result.layers)
    if result.position_control is not None:
        rows.insert(1, result.position_control)
    strength_of = (lambda s: s.silhouette) if result.labelled else (lambda s: s.cluster_silhouette)
    peak = max((abs(strength_of(s)) for s in rows if strength_of(s) is not None), default=0.0) or 1.0
    for stats in rows:
        is_best = best is not None and stats.layer == best and stats.name != "position"
        control = stats.layer is None  # static and position: no context at all
        if result.labelled:
            values = {
                "within°": stats.within_centred,
                "across°": stats.across_centred,
                "gap°": stats.separation_centred,
                "1-NN": stats.knn_accuracy,
                "silh.": stats.silhouette,
                "raw gap": stats.separation,
                "raw within": stats.within,
                "raw across": stats.across,
                "aniso.": stats.anisotropy,
            }
        else:
            values = {
                "mean cos°": stats.mean_cosine_centred,
                "cluster silh.": stats.cluster_silhouette,
                "raw mean cos": stats.mean_cosine,
                "aniso.": stats.anisotropy,
            }
        strength = strength_of(stats)
        style = "bold green" if is_best else "dim italic" if stats.name == "position" else "dim" if control else ""
        row = [Text(_row_name(stats) + (" ★" if is_best else ""), style=style)]
        row += [Text(_num(values[column], 2 if column == "1-NN" else 3)) for column in columns]
        row.append(Text(bar(max(strength or 0.0, 0.0) / peak, width=10), style="green" if is_best else "cyan"))
        table.add_row(*row, style="bold" if is_best else "dim" if stats.name == "position" else "")
    return table


def _legend(result: SenseResult, details: bool = False) -> Text:
    legend = Text(style="dim")
    if result.labelled:
        legend.append(
            f"within° / across°: mean cosine of {result.word!r} between sentences of the same / a different sense; "
            "gap° = within° - across°; 1-NN: share of sentences whose most similar sentence has the same sense; "
            "silh.: how well the senses form separate groups (-1 to 1). "
        )
    else:
        legend.append(
            f"mean cos°: mean cosine of {result.word!r} over all sentence pairs; cluster silh.: how well k-means' "
            "groups stand apart (-1 to 1). "
        )
    users = "1-NN, silh. and the clusters" if result.labelled else "cluster silh. and the clusters"
    legend.append(
        "° = mean-centred cosine (each layer's mean token vector subtracted first, which removes the direction all "
        f"BERT vectors share); {users} use it too. "
    )
    alike = "every sentence" if result.static_identical else "every sentence where the word is the same word pieces"
    position = (
        "position: the word's position embedding alone (no word, no context); "
        if result.position_control is not None
        else ""
    )
    legend.append(
        f"static: the input word-piece embedding (the same vector in {alike}, like Word2Vec); {position}"
        "emb: word + position, before any attention; 1, 2, ...: after each layer."
    )
    if details:
        legend.append("\nraw: plain cosine, before centring; ")
        if result.labelled:
            legend.append(
                "--json names the centred figures within_centred, across_centred, separation_centred (gap°) and "
                "the raw ones within, across, separation (raw gap). "
            )
        else:
            legend.append("--json names them mean_cosine_centred (mean cos°) and mean_cosine (raw mean cos). ")
        legend.append(
            "aniso.: mean raw cosine between the word and other tokens, the level an unrelated pair reaches "
            "(Ethayarajh, 2019)."
        )
    if result.best_layer is not None:
        legend.append(f"\n★ best layer: highest {result.best_by}.")
    return legend


EXPLAIN_LABELLED = (
    ("layer", "static and position are controls without context; emb is the input to layer 1; then each layer."),
    ("position", "{position}"),
    (
        "within°",
        "how alike the word's vectors are in two sentences of the SAME sense (mean-centred cosine: 1 = same "
        "direction, 0 = unrelated).",
    ),
    ("across°", "the same for two sentences of DIFFERENT senses."),
    (
        "gap°",
        "within° - across°: above 0 when same-sense uses are closer to each other than to the other sense. "
        "The reading judges this figure; --details adds the raw cosines beside it.",
    ),
    (
        "1-NN",
        "take each sentence, find the one whose vector is most similar: how often it has the same sense. "
        "Chance is {chance} here; '–' when every vector is identical, so there is no nearest one. "
        "--json gives it per sense too (knn_by_sense); the reading names a sense that falls short.",
    ),
    ("silh.", "silhouette: +1 tight, well apart groups; 0 overlapping; below 0 mixed up. Picks the best layer ★."),
)
EXPLAIN_UNLABELLED = (
    ("layer", "static and position are controls without context; emb is the input to layer 1; then each layer."),
    (
        "mean cos°",
        "how alike the word's vectors are across all sentence pairs (mean-centred cosine: 1 = same direction, "
        "0 = unrelated).",
    ),
    ("cluster silh.", "how well the k-means groups at that layer stand apart (+1 clear, 0 overlapping)."),
)


def _position_guide(result: SenseResult) -> str:
    """The position row's guide, about the sentences this run checked: the built-in set or the user's own."""
    places = ", ".join(f"{b.sense} {b.mean_position:.1f}" for b in result.balance)
    guide = (
        "the same numbers from the word's position embedding alone. At or below chance means position does not "
        "give the sense away; "
    )
    if result.origin == "built-in":
        return guide + (
            f"the built-in sets are balanced: {result.word!r} sits at the same places, on average, in every sense "
            f"(here at word piece {places})."
        )
    return guide + (
        f"these sentences are not balanced by bertprobe: {result.word!r} sits at word piece {places} on average. "
        "Where those differ, the early layers can tell the senses apart by position alone."
    )


def _explain(result: SenseResult) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for name, text in EXPLAIN_LABELLED if result.labelled else EXPLAIN_UNLABELLED:
        if name == "position":
            if result.position_control is None:  # no absolute position embeddings: the table has no such row
                continue
            text = _position_guide(result)
        if name == "layer" and result.position_control is None:
            text = text.replace("static and position are controls", "static is a control")
        # Chance depends on how many senses there are and how even they are (0.45 for 6 + 6, 0.20 for 2 + 2 + 2).
        table.add_row(name, Text(text.replace("{chance}", f"{_chance(result):.2f}") if result.labelled else text))
    return table


def _chance(result: SenseResult) -> float:
    """1-NN accuracy a random nearest neighbour would reach: same-sense share among the other sentences."""
    n = len(result.sentences)
    counts = {sense: sum(s.sense == sense for s in result.sentences) for sense in result.senses}
    return sum(count * (count - 1) for count in counts.values()) / (n * (n - 1))


def _bar(result: SenseResult) -> float:
    """The 1-NN a layer needs to count as separating: SEPARATES, or halfway from chance to 1 if that is higher.

    Uneven senses raise chance (9 sentences of one sense and 1 of another: 0.80), and a bar below
    chance would pass a layer that separates nothing.
    """
    chance = _chance(result)
    return max(SEPARATES, chance + (1 - chance) / 2)


def _separates(stats: LayerStats, bar: float) -> bool:
    return (
        stats.knn_accuracy is not None
        and stats.knn_accuracy >= bar
        and stats.separation_centred is not None
        and stats.separation_centred > 0
    )


def _short_senses(layers: list[LayerStats], senses: list[str], bar: float) -> list[tuple[str, float, int | None]]:
    """Senses whose own 1-NN falls below ``bar`` at one of ``layers``: (sense, lowest figure, its layer)."""
    short = []
    for sense in senses:
        figures = [(s.knn_by_sense[sense], s.layer) for s in layers if s.knn_by_sense and sense in s.knn_by_sense]
        if figures:
            # The lowest figure, the earliest layer among equals.
            lowest, layer = min(figures, key=lambda figure: (figure[0], figure[1] or 0))
            if lowest < bar:
                short.append((sense, lowest, layer))
    return short


def _shortfall(short: list[tuple[str, float, int | None]]) -> str:
    if not short:
        return ""
    parts = [
        f"{sense} sentences have a {sense} nearest neighbour only {figure:.2f} of the time (layer {layer})"
        for sense, figure, layer in short
    ]
    return f" Not every sense as clearly: {'; '.join(parts)}."


def _spellings(result: SenseResult) -> list[str]:
    return list(dict.fromkeys(" ".join(s.wordpieces) for s in result.sentences))


def readings(result: SenseResult) -> list[str]:
    """One or two plain sentences on what this run's numbers mean."""
    word = repr(result.word)
    if not result.labelled:
        shown = _layer_label(result.shown_layer)
        # Repeated sentences leave k-means fewer distinct vectors than k: count the groups it really made.
        groups = len({s.cluster for s in result.sentences})
        asked = f" (of k = {result.clusters} asked for)" if groups != result.clusters else ""
        line = (
            f"Without sense labels nothing is scored: k-means split the {len(result.sentences)} sentences into "
            f"{groups} groups{asked} by {word}'s vector at {shown}. Read each group's sentences: if they share a "
            "meaning, the model's vectors tell the senses apart."
            if result.clusters
            else f"Without sense labels the table shows only how alike {word}'s vectors are across the sentences."
        )
        return [line]
    lines = []
    spellings = _spellings(result)
    if not result.static_identical:
        lines.append(
            f"Careful: {word} is not the same input in every sentence (word pieces: {' / '.join(spellings[:4])}), "
            "so even the static row differs: every row mixes spelling with context. Write the word alike everywhere."
        )
    single = [sense for sense in result.senses if sum(s.sense == sense for s in result.sentences) < 2]
    if single:
        lines.append(
            f"The sense(s) {', '.join(map(repr, single))} have one sentence only, whose nearest neighbour can never "
            "share its sense: 1-NN cannot show whether the senses separate. Give at least two sentences per sense."
        )
        return lines
    first, second = result.senses[0], result.senses[1] if len(result.senses) > 1 else "other"
    others = "the other senses" if len(result.senses) > 2 else f"{second} ones"
    chance, bar = _chance(result), _bar(result)
    contextual = [s for s in result.layers if s.layer is not None and s.layer >= 1]
    onset = None
    for index in range(len(contextual)):
        if all(_separates(s, bar) for s in contextual[index:]):
            onset = contextual[index].layer
            break
    separating = [s.layer for s in contextual if _separates(s, bar)]
    # The pooled 1-NN can clear the bar with one sense far below it: then only "mostly" is true.
    covered = (
        [s for s in contextual if s.layer >= onset]
        if onset is not None
        else [s for s in contextual if s.layer in separating]
    )
    short = _short_senses(covered, result.senses, bar)
    claim = (
        f"the nearest neighbour of {word} mostly has the same sense"
        if short
        else f"{word} in {first} sentences is closer to other {first} sentences than to {others}"
    )
    if onset is not None:
        best = ""
        peak = next((s for s in result.layers if s.layer == result.best_layer), None)
        if peak is not None and peak.layer is not None and peak.layer >= onset:
            best = f"; clearest at layer {peak.layer}"
        elif peak is not None and peak.layer is not None:
            # The best layer is picked by silhouette: before the onset it may be a layer that does not separate.
            where = "the embeddings" if peak.layer == 0 else f"layer {peak.layer}"
            short_there = peak.knn_accuracy is None or peak.knn_accuracy < bar
            why = (
                ""
                if _separates(peak, bar)
                else ", where the 1-NN falls short"
                if short_there
                else ", where gap° is at or below 0"
            )
            best = f"; the {result.best_by.split(' (')[0]} peaks earlier, at {where}{why}"
        lines.append(
            f"From layer {onset} on, {claim} (1-NN at least {bar:.2f}, chance {chance:.2f}){best}: the vector now "
            "carries the sense, taken from context." + _shortfall(short)
        )
    elif separating:
        lines.append(
            f"At layer(s) {', '.join(map(str, separating))}, {claim} (1-NN at least {bar:.2f}, chance "
            f"{chance:.2f}), but the later layers do not keep the senses that far apart." + _shortfall(short)
        )
    else:
        top = max(contextual, key=lambda s: s.knn_accuracy or 0.0, default=None)
        if top is not None and top.knn_accuracy is not None and top.knn_accuracy >= bar:
            # 1-NN passes but the centred gap does not: neighbours agree while the senses as wholes overlap.
            lines.append(
                f"No layer keeps the senses of {word} clearly apart: at layer {top.layer} most sentences' nearest "
                f"neighbour shares their sense (1-NN {top.knn_accuracy:.2f}; chance {chance:.2f}), but on average "
                "same-sense sentences are no closer than different-sense ones (gap° at or below 0), "
                "so the senses overlap as groups."
            )
        elif top is not None and top.knn_accuracy is not None:
            lines.append(
                f"No layer keeps the senses of {word} clearly apart (best 1-NN {top.knn_accuracy:.2f} at layer "
                f"{top.layer}; chance {chance:.2f}): this model, or these sentences, do not separate them."
            )
    control = result.position_control
    emb = next((s for s in result.layers if s.layer == 0), None)
    static = f"At the static row {word} is the same vector in every sentence; at the embedding layer it differs only"
    if control is not None and control.knn_accuracy is not None:
        if control.knn_accuracy >= bar:
            verdict = "so POSITION ALONE already predicts the sense: balance the sentences before trusting later layers"
        elif round(control.knn_accuracy, 2) > round(chance, 2):
            # Below the bar for "separates" is not "gives nothing away": only chance or below is (as printed).
            verdict = (
                f"above chance though below the {bar:.2f} a layer needs: position may give part of the sense "
                "away, so read the early layers with care"
            )
        else:
            verdict = "so position does not give the sense away"
        scores = f"alone scores 1-NN {control.knn_accuracy:.2f} (chance {chance:.2f}), {verdict}."
        lines.append(
            f"{static} by its position, and position {scores}" if result.static_identical else f"Position {scores}"
        )
    elif emb is not None and emb.knn_accuracy is not None and result.static_identical:
        lines.append(f"{static} by position (1-NN {emb.knn_accuracy:.2f}).")
    if result.position_length_knn is not None and result.position_length_knn >= bar:
        lines.append(
            f"Careful: in these sentences the word's position and the sentence length alone predict the sense "
            f"(1-NN {result.position_length_knn:.2f}); put the word at similar places in every sense."
        )
    return lines


def _balance_line(result: SenseResult) -> Text:
    """Where the word sits in each sense's sentences: the confound the position row controls for."""
    line = Text(f"{result.word!r} at word piece (mean): ", style="dim")
    line.append(", ".join(f"{b.sense} {b.mean_position:.1f}" for b in result.balance))
    line.append("; sentence length: ")
    line.append(", ".join(f"{b.sense} {b.mean_length:.1f}" for b in result.balance))
    if result.position_length_knn is not None:
        line.append(f"; 1-NN from (position, length) alone: {result.position_length_knn:.2f}")
    return line


def _sentence_table(result: SenseResult, width: int) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("#", justify="right", style="dim")
    if result.clusters is not None:
        table.add_column("cluster", justify="right")
    if result.labelled:
        table.add_column("sense")
    if result.split_word:
        table.add_column("pieces")
    table.add_column("sentence")
    # Whole sentences, wrapped by the table on a narrow terminal rather than cut to fit it.
    ordered = sorted(result.sentences, key=lambda s: (s.cluster or 0, s.number))
    previous = None
    for sentence in ordered:
        row: list[Any] = [str(sentence.number)]
        if result.clusters is not None:
            row.append(Text(str(sentence.cluster), style="bold" if sentence.cluster != previous else "dim"))
        if result.labelled:
            row.append(Text(sentence.sense or ""))
        if result.split_word:
            row.append(Text(" ".join(sentence.wordpieces)))
        row.append(snippet(sentence, len(sentence.text)))
        table.add_row(*row, end_section=False)
        previous = sentence.cluster
    return table


def _heat(value: float, low: float, high: float) -> Style:
    share = 0.0 if high - low < 1e-9 else min(max((value - low) / (high - low), 0.0), 1.0)
    # From dark blue (least similar pair) to warm yellow (most similar pair).
    red, green, blue = (round(30 + 200 * share), round(40 + 170 * share), round(110 - 70 * share))
    return Style(bgcolor=Color.from_rgb(red, green, blue), color="black" if share > 0.55 else "white")


def _matrix_order(result: SenseResult) -> list[int]:
    if result.labelled:
        order = {sense: i for i, sense in enumerate(result.senses)}
        key = lambda s: (order.get(s.sense or "", 0), s.number)  # noqa: E731
    else:
        key = lambda s: (s.cluster or 0, s.number)  # noqa: E731
    return [s.number - 1 for s in sorted(result.sentences, key=key)]


def _tag(result: SenseResult, sentence: SentenceVector) -> str:
    """What labels a matrix row: the sense, else the cluster (c1, c2, ...)."""
    if result.labelled:
        return sentence.sense or ""
    return f"c{sentence.cluster}" if sentence.cluster else ""


def _short(value: float) -> str:
    # Two decimals without the leading zero keep a column 5 characters wide: " .89", "-.12", "1.00".
    text = f"{0.0 if abs(value) < 0.005 else value:.2f}"
    return text.replace("0.", ".", 1) if abs(value) < 1 else text


def _matrix_fits(result: SenseResult, width: int) -> bool:
    label = max([9] + [len(_tag(result, sentence)) for sentence in result.sentences])
    return len(result.sentences) * 5 + label + 5 <= max(width, 80)


def _matrix_table(result: SenseResult) -> Table:
    matrix = result.matrix_centred if result.centred else result.matrix
    order = _matrix_order(result)
    off = [matrix[i][j] for i in order for j in order if i != j]
    low, high = min(off), max(off)
    table = Table(box=None, padding=(0, 0), pad_edge=False, show_header=True)
    table.add_column("", no_wrap=True)
    for j in order:
        table.add_column(Text(f"{j + 1:>5}"), justify="right", no_wrap=True)
    for i in order:
        sentence = result.sentences[i]
        # The whole sense: "financial_market" cut to 9 letters would read as "financial_institution".
        cells: list[Any] = [Text(f"{i + 1:>3} {_tag(result, sentence):<9} ", style="dim")]
        for j in order:
            if i == j:
                cells.append(Text(f"{'·':>5}", style="dim"))
            else:
                cells.append(Text(f"{_short(matrix[i][j]):>5}", style=_heat(matrix[i][j], low, high)))
        table.add_row(*cells)
    return table


def _cluster_match(result: SenseResult) -> int:
    """Sentences whose k-means cluster's most common sense is their own."""
    matched = 0
    for cluster in {s.cluster for s in result.sentences}:
        members = [s.sense for s in result.sentences if s.cluster == cluster]
        matched += max(members.count(sense) for sense in set(members))
    return matched


def sense_view(result: SenseResult, console: Console, explain: bool = False, details: bool = False) -> None:
    header(console, f"sense: {result.word}", result)
    console.print(_title(result))
    if explain:
        console.print(_explain(result))
    console.print(_layer_table(result, details))
    console.print(_legend(result, details))
    if details and result.balance:
        console.print(_balance_line(result))
    closing(console, readings(result))
    console.print()
    label = _layer_label(result.shown_layer)
    chosen = " (best)" if result.shown_layer == result.best_layer else ""
    if result.clusters is not None:
        line = Text(f"k-means clusters (k = {result.clusters}) at {label}{chosen}", style="bold")
        if result.cluster_agreement is not None:
            # Any split leaves the largest sense "with its own sense": say what dealing senses at random gives.
            chance = purity_by_chance(
                [s.sense or "" for s in result.sentences], [s.cluster or 0 for s in result.sentences]
            )
            line.append(
                f"  · {_cluster_match(result)} of {len(result.sentences)} sentences sit with their own sense, "
                f"against about {chance:.0f} by chance",
                style="",
            )
            if details:
                line.append(f" (adjusted Rand {result.cluster_agreement:.2f})", style="dim")
        console.print(line)
    else:
        console.print(Text("sentences", style="bold"))
    console.print(_sentence_table(result, console.width))
    kind = "mean-centred cosine" if result.centred else "raw cosine"
    if _matrix_fits(result, console.width):
        title = Text(f"{kind} between the sentences' {result.word!r} vectors at {label}{chosen}", style="bold")
        if not result.centred:
            # A row's most similar raw cell need not be the neighbour 1-NN counted: say which figure that was.
            title.append("  · 1-NN, silh. and the clusters use the mean-centred cosine (--centred)", style="dim")
        console.print(title)
        console.print(_matrix_table(result))
    else:
        console.print(
            Text(
                f"The {len(result.sentences)} x {len(result.sentences)} {kind} matrix at {label} is too wide to "
                "print: see --json or --plot FILE.png.",
                style="dim",
            )
        )


def catalog_view(result: SenseCatalog, console: Console) -> None:
    table = Table(title="built-in sense sets", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("word", style="bold")
    table.add_column("sense")
    table.add_column("sentences", justify="right")
    table.add_column("example")
    for entry in result.sets:
        for position, (sense, count) in enumerate(entry.senses.items()):
            table.add_row(
                Text(entry.word if position == 0 else ""),
                Text(sense),
                str(count),
                Text(entry.examples[sense], overflow="ellipsis", no_wrap=True),
                end_section=position == len(entry.senses) - 1,
            )
    console.print(table)
    console.print(Text("Probe one with: bertprobe sense WORD", style="dim"))


def plot(result: SenseResult, path: str | Path) -> Path:
    """A heatmap of the similarity matrix beside the per-layer separation curves; written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = check_plot_path(path)
    matrix = result.matrix_centred if result.centred else result.matrix
    order = _matrix_order(result)
    with plot_warnings():  # the figure is drawn by tight_layout and savefig: both may warn
        figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1.1, 1]})
        try:
            # The diagonal (always 1) would stretch the colour scale: leave it blank.
            shown = [[float("nan") if i == j else matrix[i][j] for j in order] for i in order]
            image = left.imshow(shown, cmap="viridis")
            ticks = [plot_label(f"{i + 1} {_tag(result, result.sentences[i])}") for i in order]
            left.set_xticks(range(len(order)), [str(i + 1) for i in order], fontsize=7)
            left.set_yticks(range(len(order)), ticks, fontsize=7)
            kind = "mean-centred cosine" if result.centred else "raw cosine"
            left.set_title(plot_label(f"{kind} of {result.word!r} at {_layer_label(result.shown_layer)}"))
            figure.colorbar(image, ax=left, fraction=0.046)
            contextual = [s for s in result.layers if s.layer is not None]
            xs = [s.layer for s in contextual]
            if result.labelled:
                series = {
                    "gap (raw cosine)": "separation",
                    "gap° (mean-centred)": "separation_centred",
                    "silhouette of senses (mean-centred)": "silhouette",
                    "1-NN accuracy (mean-centred)": "knn_accuracy",
                }
            else:
                series = {
                    "mean cosine (raw)": "mean_cosine",
                    "mean cosine° (mean-centred)": "mean_cosine_centred",
                    "cluster silhouette (mean-centred)": "cluster_silhouette",
                }
            series["anisotropy baseline (raw)"] = "anisotropy"
            static = result.layers[0]
            for label, name in series.items():
                ys = [getattr(s, name) for s in contextual]
                if all(y is None for y in ys):
                    continue
                (line,) = right.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=label)
                if getattr(static, name) is not None:
                    right.scatter([-1], [getattr(static, name)], marker="x", color=line.get_color())
            if result.best_layer is not None:
                right.axvline(result.best_layer, color="grey", linestyle=":", label=f"best layer ({result.best_layer})")
            right.set_xticks([-1, *xs], ["static", "emb", *[str(x) for x in xs[1:]]])
            right.set_xlabel("layer")
            right.set_title(plot_label(f"{result.word!r} across layers ({result.model})"))
            right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
            right.grid(alpha=0.3)
            figure.tight_layout()
            with atomic_path(target) as temporary:
                figure.savefig(temporary, dpi=120, format=target.suffix.lstrip(".").lower())
        finally:
            plt.close(figure)
    return target


RENDERERS = {"SenseResult": sense_view, "SenseCatalog": catalog_view}
