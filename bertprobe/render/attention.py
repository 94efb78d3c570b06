"""Views of attention summaries."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.atomic import atomic_path
from bertprobe.attention import AttentionResult
from bertprobe.errors import InputError
from bertprobe.render import bar, check_plot_path, closing, header, percent, plot_label, plot_warnings, probability


def _shade(value: float, top: float) -> Text:
    """A number on a background whose strength follows its share of the row's maximum."""
    level = 0 if top <= 0 else min(int(5 * value / top + 0.5), 5)
    styles = ["dim", "", "on grey23", "on grey35", "bold on dark_green", "bold on green4"]
    return Text(probability(value), style=styles[level])  # 0.004 is some attention, not "0.00"


def attention_table(result: AttentionResult, console: Console, explain: bool = False, details: bool = False) -> None:
    header(console, "attention", result)
    if result.head:
        scope = f"head {result.head}"
    else:
        scope = f"mean over {result.num_heads} heads" if result.num_heads != 1 else "its one head"
    summary = Table(
        title=f"per layer ({scope}; entropy in bits; mean attention on [CLS], [SEP], all special tokens)",
        title_justify="left",
    )
    for column, justify in (
        ("layer", "right"),
        ("entropy", "right"),
        ("→[CLS]", "right"),
        ("→[SEP]", "right"),
        ("special", "right"),
        ("", "left"),
        ("[CLS] looks at", "left"),
    ):
        summary.add_column(column, justify=justify, no_wrap=column == "")
    for row in result.layers:
        summary.add_row(
            str(row.layer),
            f"{row.entropy_bits:.2f}",
            probability(row.to_cls),
            probability(row.to_sep),
            probability(row.special_share),
            Text(bar(row.special_share, 12), style="magenta"),
            Text(f"{row.cls_top_token} ({row.cls_top_weight:.2f})"),
        )
    console.print(summary)

    layers = [result.layer - 1] if result.layer else range(result.num_layers)
    grid = Table(title="[CLS] attends to each token (rows: layers)", title_justify="left")
    grid.add_column("layer", justify="right", style="dim")
    for token in result.tokens:
        grid.add_column(Text(token), justify="right")
    for index in layers:
        values = result.cls_to_token[index]
        top = max(values)
        grid.add_row(str(index + 1), *[_shade(v, top) for v in values])
    console.print(grid)

    if result.layer:
        index = result.layer - 1
        detail = Table(title=f"layer {result.layer}, {scope}", title_justify="left")
        for column in ("token", "[CLS] → token", "token → [CLS]", "token → [SEP]"):
            detail.add_column(column, justify="left" if column == "token" else "right")
        for position, token in enumerate(result.tokens):
            detail.add_row(
                Text(token, style="bold" if result.special[position] else ""),
                f"{result.cls_to_token[index][position]:.3f}",
                f"{result.token_to_cls[index][position]:.3f}",
                f"{result.token_to_sep[index][position]:.3f}",
            )
        console.print(detail)
    console.print(
        Text(
            "Attention to [CLS]/[SEP] often acts as a no-op sink (Clark et al. 2019); attention weights "
            "show where information may flow, not what the prediction depends on.",
            style="dim",
        )
    )
    closing(console, readings(result), _guide() if explain else None)


def _guide() -> Table:
    guide = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
    guide.add_column(style="bold")
    guide.add_column()
    for name, text in EXPLAIN:
        guide.add_row(name, Text(text))
    return guide


EXPLAIN = (
    ("entropy", "how spread out each token's attention is, in bits: 0 = all on one token, log2(n) = evenly on n."),
    ("→[CLS]", "share of all attention that lands on [CLS] (each token's attention sums to 1)."),
    ("→[SEP]", "the same for [SEP]."),
    ("special", "→[CLS] + →[SEP] (+ any other special token): attention not spent on the words."),
    ("[CLS] looks at", "the word piece [CLS] attends to most at that layer, and how much."),
)


def readings(result: AttentionResult) -> list[str]:
    """What this run's attention numbers mean, in plain words."""
    if not result.layers:
        return []
    heaviest = max(result.layers, key=lambda row: row.special_share)
    whose = f"head {result.head}'s attention" if result.head else "all attention"
    share, over_half = heaviest.special_share, heaviest.special_share > 0.5
    digits = 0  # 50.04% shown as "50%" beside "more than on the words" would contradict itself
    while (float(percent(share, digits)[:-1]) > 50) != over_half and digits < 6:
        digits += 1
    lines = [
        f"In layer {heaviest.layer}, {percent(share, digits)} of {whose} lands on [CLS] and [SEP]"
        + (
            ", more than on the words themselves: such attention is mostly a resting place, not information being read."
            if over_half
            else "; the rest goes to the words."
        ),
        f"{_spread(result)} {_cls_looks(result)}: where information may flow into [CLS], not proof that a "
        "prediction depends on it.",
    ]
    return lines


def _names(names: list[str], most: int = 3) -> str:
    quoted = [repr(name) for name in names[:most]] + ([f"{len(names) - most} more"] if len(names) > most else [])
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _spread(result: AttentionResult) -> str:
    """Which layer spreads attention most, naming every layer that ties with it as the table shows them."""
    widest = max(result.layers, key=lambda row: row.entropy_bits)
    shown = f"{widest.entropy_bits:.2f}"
    tied = [str(row.layer) for row in result.layers if f"{row.entropy_bits:.2f}" == shown]
    if len(result.layers) == 1:
        return f"Attention in the model's one layer has an entropy of {shown} bits."
    if len(tied) == len(result.layers):  # near-uniform attention (a fresh model): "most" would pick float noise
        return f"Attention is equally spread out in every layer ({shown} bits)."
    if len(tied) > 1:
        return (
            f"Attention is most spread out in layers {' and '.join([', '.join(tied[:-1]), tied[-1]])} ({shown} bits)."
        )
    return f"Attention is most spread out in layer {widest.layer} ({shown} bits)."


def _cls_looks(result: AttentionResult) -> str:
    """The words [CLS] looks at most in the last layer, as the table shows them: all that tie, and "of the words"
    where [CLS] or [SEP] gets as much or more (it often keeps most of its attention on itself)."""
    row = result.cls_to_token[-1]
    words = [i for i, special in enumerate(result.special) if not special]
    if not words:  # refused before any model work; a hand-built result may still hold one
        return "In the last layer [CLS] has no words to look at"
    top = f"{max(row[i] for i in words):.2f}"
    tied = [i for i in words if f"{row[i]:.2f}" == top]
    if len(words) > 1 and len(tied) == len(words):
        return f"In the last layer [CLS] looks at the {len(words)} words equally ({top} each)"
    specials_more = any(float(f"{row[i]:.2f}") >= float(top) for i in range(len(row)) if result.special[i])
    each = " each" if len(tied) > 1 else ""
    return (
        f"In the last layer{', of the words,' if specials_more else ''} [CLS] looks most at "
        f"{_names([result.tokens[i] for i in tied])} ({top}{each})"
    )


def plot(result: AttentionResult, path: str | Path) -> Path:
    """Write a layer x token heatmap of [CLS]'s attention (PNG, or any format matplotlib knows)."""
    target = check_plot_path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plot_warnings():  # the figure is drawn by tight_layout and savefig: both may warn
        width = max(6.0, 0.45 * len(result.tokens) + 2)
        fig, axes = plt.subplots(1, 2, figsize=(width * 2, 0.4 * result.num_layers + 2.5))
        for ax, values, title in (
            (axes[0], result.cls_to_token, "[CLS] attends to token"),
            (axes[1], result.token_to_cls, "token attends to [CLS]"),
        ):
            image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0.0)
            ax.set_xticks(range(len(result.tokens)), [plot_label(t) for t in result.tokens], rotation=70, fontsize=8)
            ax.set_yticks(range(result.num_layers), [str(i + 1) for i in range(result.num_layers)])
            ax.set_ylabel("layer")
            ax.set_title(title + (f" (head {result.head})" if result.head else " (mean over heads)"))
            fig.colorbar(image, ax=ax, fraction=0.03)
        fig.suptitle(plot_label(f"{result.model}: {result.text}"[:120]))
        fig.tight_layout()
        try:
            with atomic_path(target) as temporary:
                fig.savefig(temporary, dpi=120, format=target.suffix.lstrip(".").lower())
        except OSError as err:
            raise InputError(f"cannot write --plot {target}: {err.strerror}", hint="Pick a writable folder.") from None
        finally:
            plt.close(fig)
    return target


RENDERERS = {"AttentionResult": attention_table}
