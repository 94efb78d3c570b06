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
from bertprobe.render import bar, check_plot_path, header
from bertprobe.sense import SenseCatalog, SenseResult, SentenceVector


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


def _layer_table(result: SenseResult) -> Table:
    best = result.best_layer
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("layer")
    if result.labelled:
        columns = ["within", "across", "separ.", "separ.°", "1-NN°", "silh.°", "aniso."]
    else:
        columns = ["mean cos", "mean cos°", "aniso.", "cluster silh.°"]
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("", no_wrap=True)
    if result.labelled:
        peak = max((abs(s.silhouette) for s in result.layers if s.silhouette is not None), default=0.0) or 1.0
    else:
        peak = max((abs(s.cluster_silhouette) for s in result.layers if s.cluster_silhouette is not None), default=0)
        peak = peak or 1.0
    for stats in result.layers:
        is_best = best is not None and stats.layer == best
        name = "static" if stats.layer is None else "emb" if stats.layer == 0 else str(stats.layer)
        if result.labelled:
            cells = [
                stats.within,
                stats.across,
                stats.separation,
                stats.separation_centred,
                stats.knn_accuracy,
                stats.silhouette,
                stats.anisotropy,
            ]
            strength = stats.silhouette
        else:
            cells = [stats.mean_cosine, stats.mean_cosine_centred, stats.anisotropy, stats.cluster_silhouette]
            strength = stats.cluster_silhouette
        row = [
            Text(name + (" ★" if is_best else ""), style="bold green" if is_best else "dim" if not stats.layer else "")
        ]
        row += [
            Text(_num(value, 2 if column.startswith("1-NN") else 3))
            for value, column in zip(cells, columns, strict=True)
        ]
        row.append(Text(bar(max(strength or 0.0, 0.0) / peak, width=10), style="green" if is_best else "cyan"))
        table.add_row(*row, style="bold" if is_best else "")
    return table


def _legend(result: SenseResult) -> Text:
    legend = Text(style="dim")
    if result.labelled:
        legend.append(
            "within / across: mean cosine of same-sense / different-sense pairs; separ. = within - across; "
            "1-NN: leave-one-out nearest-neighbour sense accuracy; silh.: silhouette of the senses; "
            "within° and across° are in --json; "
        )
    else:
        legend.append("mean cos: over all sentence pairs; cluster silh.: silhouette of k-means clusters; ")
    legend.append(
        "° = mean-centred cosine (each layer's mean token vector subtracted); aniso.: mean cosine between "
        "the word and other tokens (the level an unrelated pair reaches); static: the input word-piece embedding, "
        "the same vector in every context."
    )
    if result.best_layer is not None:
        legend.append(f"\n★ best layer: highest {result.best_by}.")
    return legend


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
    return len(result.sentences) * 5 + 14 <= max(width, 80)


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
        cells: list[Any] = [Text(f"{i + 1:>3} {_tag(result, sentence)[:9]:<9} ", style="dim")]
        for j in order:
            if i == j:
                cells.append(Text(f"{'·':>5}", style="dim"))
            else:
                cells.append(Text(f"{_short(matrix[i][j]):>5}", style=_heat(matrix[i][j], low, high)))
        table.add_row(*cells)
    return table


def sense_view(result: SenseResult, console: Console) -> None:
    header(console, f"sense: {result.word}", result)
    console.print(_title(result))
    console.print(_layer_table(result))
    console.print(_legend(result))
    console.print()
    label = _layer_label(result.shown_layer)
    chosen = " (best)" if result.shown_layer == result.best_layer else ""
    if result.clusters is not None:
        line = Text(f"k-means clusters (k = {result.clusters}) at {label}{chosen}", style="bold")
        if result.cluster_agreement is not None:
            line.append(f"  · agreement with the senses (adjusted Rand): {result.cluster_agreement:.2f}", style="")
        console.print(line)
    else:
        console.print(Text("sentences", style="bold"))
    console.print(_sentence_table(result, console.width))
    kind = "mean-centred cosine" if result.centred else "cosine"
    if _matrix_fits(result, console.width):
        console.print(Text(f"{kind} between the sentences' {result.word!r} vectors at {label}{chosen}", style="bold"))
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
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [1.1, 1]})
    try:
        # The diagonal (always 1) would stretch the colour scale: leave it blank.
        shown = [[float("nan") if i == j else matrix[i][j] for j in order] for i in order]
        image = left.imshow(shown, cmap="viridis")
        ticks = [f"{i + 1} {_tag(result, result.sentences[i])}" for i in order]
        left.set_xticks(range(len(order)), [str(i + 1) for i in order], fontsize=7)
        left.set_yticks(range(len(order)), ticks, fontsize=7)
        kind = "mean-centred cosine" if result.centred else "cosine"
        left.set_title(f"{kind} of {result.word!r} at {_layer_label(result.shown_layer)}")
        figure.colorbar(image, ax=left, fraction=0.046)
        contextual = [s for s in result.layers if s.layer is not None]
        xs = [s.layer for s in contextual]
        if result.labelled:
            series = {
                "separation (cosine)": "separation",
                "separation (mean-centred)": "separation_centred",
                "silhouette of senses": "silhouette",
                "1-NN accuracy": "knn_accuracy",
            }
        else:
            series = {"mean cosine": "mean_cosine", "cluster silhouette": "cluster_silhouette"}
        series["anisotropy baseline"] = "anisotropy"
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
        right.set_title(f"{result.word!r} across layers ({result.model})")
        right.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
        right.grid(alpha=0.3)
        figure.tight_layout()
        with atomic_path(target) as temporary:
            figure.savefig(temporary, dpi=120, format=target.suffix.lstrip(".").lower())
    finally:
        plt.close(figure)
    return target


RENDERERS = {"SenseResult": sense_view, "SenseCatalog": catalog_view}
