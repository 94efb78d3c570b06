"""Views of [CLS] probe results: scores next to their alternatives, per-class tables, the sweep."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bertprobe.probe import Baseline, Metrics, PredictResult, ProbeResult
from bertprobe.render import bar, blind_luck, closing, header, luck, percent

# Frozen bert-base-uncased [CLS] + logistic regression on SST: Reimers & Gurevych (2019), table 5.
SST2_REFERENCE = (
    "For reference: frozen bert-base-uncased [CLS] + logistic regression reaches about 84% on SST "
    "(Reimers & Gurevych 2019, table 5; mean pooling slightly higher); full fine-tuning about 93%."
)


def _layer_name(layer: int, num_layers: int) -> str:
    if layer == 0:
        return "0 (embeddings)"
    return f"{layer} (last)" if layer == num_layers else str(layer)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{label} {count}" for label, count in counts.items())


def _percent(value: float | None) -> str:
    return "–" if value is None else percent(value, 1)


def _scores_table(result: ProbeResult) -> Table:
    table = Table(title=Text(f"on the eval set ({result.data.eval_size} texts)"), title_justify="left")
    table.add_column("classifier")
    table.add_column("accuracy", justify="right")
    table.add_column("macro-F1", justify="right")
    table.add_column("", no_wrap=True)
    probe_name = Text(f"probe (layer {result.layer}, {result.pooling}, C={result.C:g})", style="bold")
    table.add_row(
        probe_name,
        _percent(result.metrics.accuracy),
        _percent(result.metrics.macro_f1),
        Text(bar(result.metrics.accuracy), style="green"),
    )
    if result.control is not None:
        table.add_row(
            Text("same probe, random-init encoder"),
            _percent(result.control.accuracy),
            _percent(result.control.macro_f1),
            Text(bar(result.control.accuracy), style="yellow"),
        )
    table.add_row(
        Text.assemble("majority class (always ", (result.baseline.label, "italic"), ")"),
        _percent(result.baseline.accuracy),
        _percent(result.baseline.macro_f1),
        Text(bar(result.baseline.accuracy), style="dim"),
    )
    other = _eval_majority(result)
    if other is not None:  # the constant answer the reading measures the probe against
        table.add_row(
            Text.assemble("eval majority (always ", (other.label, "italic"), ")"),
            _percent(other.accuracy),
            _percent(other.macro_f1),
            Text(bar(other.accuracy), style="dim"),
        )
    return table


def _eval_majority(result: ProbeResult) -> Baseline | None:
    """Always answering the eval set's most common label, when it scores above the training set's."""
    other = getattr(result, "eval_majority", None)
    return other if other is not None and other.accuracy > result.baseline.accuracy else None


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _per_class_table(metrics: Metrics) -> Table:
    table = Table(title=Text("per class"), title_justify="left")
    table.add_column("label")
    for column in ("precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for row in metrics.per_class:
        table.add_row(
            Text(row.label, style="bold"),
            _score(row.precision),
            _score(row.recall),
            _score(row.f1),
            str(row.support),
        )
    return table


def _confusion_table(metrics: Metrics, labels: list[str]) -> Table:
    table = Table(title=Text("confusion matrix (rows: true label, columns: predicted)"), title_justify="left")
    table.add_column("true \\ predicted", style="bold")
    for label in labels:
        table.add_column(Text(label), justify="right")
    for i, (label, row) in enumerate(zip(labels, metrics.confusion, strict=True)):
        cells = [
            Text(str(count), style="green" if i == j else ("red" if count else "dim")) for j, count in enumerate(row)
        ]
        table.add_row(Text(label), *cells)
    return table


def _sweep_table(result: ProbeResult) -> Table:
    poolings = list(dict.fromkeys(cell.pooling for cell in result.sweep))
    has_control = any(cell.control_accuracy is not None for cell in result.sweep)
    best = max(result.sweep, key=lambda c: c.accuracy)
    table = Table(
        title=Text(
            "sweep: eval accuracy % per layer (0 = embeddings) and pooling"
            + (", random-init encoder after /" if has_control else "")
        ),
        title_justify="left",
        caption=Text(
            "Best cell in green (chosen on the eval set, so an optimistic estimate). "
            # Cross-validation ran for the main cell only: say so, or each cell looks tuned on its own.
            + (
                f"Every cell uses C={result.C:g}, chosen by cross-validation for layer {result.layer}, "
                f"{result.pooling} only. "
                if result.c_search is not None
                else ""
            )
            + (
                "The random-encoder control shows how much the probe finds without pre-training." if has_control else ""
            ),
            style="dim",
        ),
        caption_justify="left",
    )
    table.add_column("layer", justify="right")
    for pooling in poolings:
        table.add_column(pooling, justify="right", no_wrap=True)
    cells = {(cell.layer, cell.pooling): cell for cell in result.sweep}
    for layer in sorted({cell.layer for cell in result.sweep}):
        row: list[Text] = []
        for pooling in poolings:
            cell = cells.get((layer, pooling))
            if cell is None:
                row.append(Text("", style="dim"))
                continue
            style = (
                "bold green" if cell is best else ("bold" if (layer, pooling) == (result.layer, result.pooling) else "")
            )
            text = Text(f"{cell.accuracy * 100:.1f}", style=style)
            if cell.control_accuracy is not None:
                text.append(f" / {cell.control_accuracy * 100:.1f}", style="dim")
            row.append(text)
        table.add_row(str(layer), *row)
    return table


def probe_view(result: ProbeResult, console: Console, explain: bool = False, details: bool = False) -> None:
    header(console, "[CLS] linear probe", result)
    data = result.data
    console.print(Text.assemble(("data: ", "dim"), data.source))
    console.print(
        Text.assemble(
            ("train ", "dim"),
            f"{data.train_size} ({_counts(data.train_counts)})",
            ("   eval ", "dim"),
            f"{data.eval_size} ({_counts(data.eval_counts)})",
        )
    )
    console.print(
        Text.assemble(
            ("features: ", "dim"),
            f"layer {_layer_name(result.layer, result.num_layers)} of {result.num_layers}, {result.pooling} pooling, "
            f"at most {result.max_length} word pieces; frozen encoder, standardised, logistic regression",
        )
    )
    if result.c_search is not None:
        search = result.c_search
        tried = ", ".join(f"{c:g}: {score:.1%}" for c, score in zip(search.grid, search.cv_accuracy, strict=True))
        console.print(
            Text.assemble((f"C by {search.folds}-fold cross-validation: ", "dim"), tried, f" -> C={search.chosen:g}")
        )
    console.print(_scores_table(result))
    if details or not result.sweep:
        console.print(_per_class_table(result.metrics))
        console.print(_confusion_table(result.metrics, result.labels))
    if result.sweep:
        console.print(_sweep_table(result))
    if result.task == "sst2":
        console.print(Text(SST2_REFERENCE, style="dim"))
    closing(console, readings(result), EXPLAIN if explain else None)
    cls_origin = getattr(result, "cls_origin", None)
    if cls_origin is not None and result.pooling == "cls":
        console.print(Text(cls_origin.note, style="dim"))
    cached = f"{result.cache_hits} feature matrices from the cache, {result.cache_misses} extracted"
    timing = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.seconds.items())
    console.print(Text(f"{cached} ({timing})", style="dim"))
    if result.saved_to:
        console.print(
            Text.assemble(
                ("probe saved to ", "dim"), (result.saved_to, "bold"), (" (probe.safetensors + probe.json)", "dim")
            )
        )


EXPLAIN = (
    "accuracy: share of eval texts whose label the probe gets right; macro-F1: the F1 score of each class, "
    "averaged, so a probe that ignores a small class is not rewarded. The majority class is what you get by "
    "always answering the most common training label (the eval majority row, when the eval set's most common "
    "label scores more); the random-init encoder is the same probe on an untrained copy of the model, so the gap "
    "to it is what pretraining put into the vector. '–': a score that does not exist (precision of a label never "
    "answered, recall of one with no eval text)."
)


# A lead over a reference accuracy is read as real only when luck gives one that large less often than this.
LUCK = 0.05


def _balanced_lead(metrics: Metrics) -> tuple[float, float, float] | None:
    """(balanced accuracy, the most any constant answer gets on it, how often blind answers do as well by luck).

    Blind: answers that ignore the text, given as often as the probe gave each. For each label, how often at
    least as many of the probe's answers of it would land on texts of it (Fisher's exact test, one-sided; for
    two labels this is balanced accuracy above 50%), the least of these times the labels tested when more than
    two (Bonferroni). None when the confusion matrix is not there to count.
    """
    balanced = getattr(metrics, "balanced_accuracy", None)
    if balanced is None or not metrics.confusion:
        return None
    confusion = metrics.confusion
    size = sum(map(sum, confusion))
    tested = [
        (confusion[i][i], sum(confusion[i]), sum(row[i] for row in confusion))
        for i in range(len(confusion))
        if sum(confusion[i])
    ]
    chance = 1 / len(tested)
    tails = [blind_luck(hits, size, support, answered) for hits, support, answered in tested if answered]
    if len(tails) < 2:  # one answer for every text: no different answers to depend on the label
        return balanced, chance, 1.0
    return balanced, chance, min(1.0, min(tails) * (len(tested) if len(tested) > 2 else 1))


def _strength(lead: float, by_luck: float) -> int:
    """How much a lead over the constant answers says: 0 nothing (2 points or less, or within luck), 1 some, 2 enough
    for a linear probe to read the label off (10 points or more)."""
    if lead <= 0.02 or by_luck >= LUCK:
        return 0
    return 2 if lead >= 0.1 else 1


def _balanced_control(balanced: tuple[float, float, float], control: Metrics) -> str:
    """The untrained encoder's balanced accuracy, with the same luck test as the probe's."""
    probe_score, chance = balanced[0], balanced[1]
    score = control.balanced_accuracy
    line = f"The same probe on an untrained encoder gets a balanced accuracy of {percent(score)}"
    if score >= probe_score - 0.02:
        return line + ", about as much or more: this run does not show that pretraining put the label into the vector."
    gap = f"{(probe_score - score) * 100:.0f} points"
    tested = _balanced_lead(control)
    if tested is None:  # no confusion matrix to count
        return line + f", {gap} less; this run does not test how much of that gap luck explains."
    if _strength(tested[0] - chance, tested[2]):
        return line + (
            f", {gap} less, yet itself beyond what blind answers get by luck (less than 1 time in 20): an untrained "
            f"encoder already reads some of the label, and this run does not test how much of the {gap} luck explains."
        )
    against = (
        f"no more than the {percent(chance)} any constant answer gets"
        if tested[0] - chance <= 0.02
        else f"and blind answers do that well {tested[2]:.0%} of the time"
    )
    return line + (
        f", {gap} less, {against}: the untrained encoder shows no sign of the label beyond luck and the pretrained one "
        f"does (the {gap} between them are not themselves tested against luck)."
    )


def readings(result: ProbeResult) -> list[str]:
    """What this run's probe scores mean, in plain words."""
    accuracy, majority = result.metrics.accuracy, result.baseline.accuracy
    size = result.data.eval_size
    correct = round(accuracy * size)
    vector = "[CLS] vector" if result.pooling == "cls" else f"{result.pooling}-pooled vector"
    # The lead is measured over the better constant answer: the training set's most common label (the table's
    # baseline) or the eval set's, which scores more when the eval mix differs. Picking it by the eval labels can
    # only raise the bar, so a lead over it is no artefact of the mix; over the training one alone it could be.
    top, top_count = max(
        result.data.eval_counts.items(), key=lambda item: (item[1], item[0] == result.baseline.label), default=("", 0)
    )
    reference, reference_label = majority, result.baseline.label
    if size and top_count / size > majority + 1e-9:
        reference, reference_label = top_count / size, top
    gain = accuracy - reference
    by_luck = luck(correct, size, reference)
    line = (
        f"A straight line through the frozen {vector} gets {percent(accuracy)} of the eval texts right, against "
        f"{percent(reference)} for always answering {reference_label!r}"
    )
    if reference_label != result.baseline.label:
        line += (
            f", the eval set's most common label (always answering {result.baseline.label!r}, the training set's, "
            f"gets {percent(majority)})"
        )
    if result.control is not None:
        line += f" and {percent(result.control.accuracy)} with an untrained encoder"
    found = gain > 0.02 and by_luck < LUCK
    # Accuracy counts the common label's texts most: 92% against 91% can hide a probe that finds a third of the
    # rare label. Balanced accuracy weighs each label alike, and no constant answer gets more than 1 / labels.
    balanced = _balanced_lead(result.metrics)
    # The verdict rests on one figure, and both its words and its luck test come from that figure: accuracy, unless
    # balanced accuracy, beyond luck too, says more (a 3-point accuracy lead can be a 30-point balanced one).
    by_balanced = balanced is not None and _strength(balanced[0] - balanced[1], balanced[2]) > _strength(gain, by_luck)
    # One label in the eval set (an --eval-data file of one class): always answering it scores 100%, and no score
    # on these texts can show whether the vector carries the label, so "no sign" would claim what was not tested.
    only = [label for label, count in result.data.eval_counts.items() if count]
    one_label = len(only) == 1
    if one_label:
        line += (
            f": every eval text is labelled {only[0]!r}, so this run cannot tell a probe that reads the label from "
            f"one that always answers {only[0]!r}; evaluate on texts of two or more labels to find out."
        )
    elif by_balanced and balanced is not None:
        line += (
            f". Accuracy favours the common label ({percent(top_count / size)} of the eval texts are {top!r}) and "
            "leaves the probe little room above always answering it; balanced accuracy (each label's recall, "
            f"averaged) does not, and the probe's is {percent(balanced[0])}, against at most {percent(balanced[1])} "
            "for any constant answer, beyond what blind answers get by luck (less than 1 time in 20). By balanced "
            "accuracy, "
            + (
                "the vector carries enough of the label for a linear probe to read it off."
                if balanced[0] - balanced[1] >= 0.1
                else "the vector carries some of the label."
            )
        )
    elif gain > 0.02 and not found:
        line += (
            f": above the baseline, but with {size} eval texts luck alone gives a lead this large "
            f"{by_luck:.0%} of the time, so this run does not show that the vector carries the label."
        )
    elif gain >= 0.1:
        line += ": the vector carries enough of the label for a linear probe to read it off."
    elif gain > 0.02:
        line += ": a little above the baseline; the vector carries only some of the label."
    else:
        line += ": no better than the baseline; this run finds no sign of the label in a linear form in the vector."
    lines = [line]
    control_balanced = getattr(result.control, "balanced_accuracy", None)
    if by_balanced and balanced is not None:
        if control_balanced is not None:
            lines.append(_balanced_control(balanced, result.control))
    elif found and result.control is not None:
        control = result.control.accuracy
        if accuracy - control > 0.02 and luck(correct, size, control) < LUCK:
            lines.append(
                f"The untrained encoder's vector gets {percent(control)}: the {(accuracy - control) * 100:.0f} points "
                "above it are what pretraining put into the vector."
            )
        else:
            than = "at least as much" if control >= accuracy else "within luck of this one's"
            lines.append(
                f"The same probe on an untrained encoder gets {percent(control)}, {than}: a random encoder already "
                "passes on what the probe reads, so this run does not show that pretraining put the label into the "
                "vector."
            )
    # The table's baseline answers the training set's commonest label; an eval set with another mix can make a
    # different constant answer score higher (the line above measures against it): say so when it does as well.
    if size and result.data.eval_counts and not one_label:
        label, count = max(result.data.eval_counts.items(), key=lambda item: item[1])
        if count / size > majority + 1e-9 and accuracy <= count / size + 0.02:
            lines.append(
                f"Careful: {percent(count / size)} of the eval texts are {label!r}, so always answering {label!r} "
                f"would score {percent(count / size)}, as much as the probe: the eval set's mix differs from the "
                "training set's, and the lead over the baseline says little."
            )
    margin = 0.98 / math.sqrt(size) if size else 1.0  # a 95% interval's half-width at its widest (accuracy 50%)
    if size and margin >= 0.05:
        lines.append(
            f"With {size} eval texts, one text is {1 / size:.1%}, and luck alone moves an accuracy by up to about "
            f"±{margin:.0%}: treat smaller differences as noise."
        )
    return lines


def _log_odds(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def predict_view(result: PredictResult, console: Console, explain: bool = False, details: bool = False) -> None:
    header(console, "[CLS] probe predictions", result)
    console.print(Text(f"probe: {result.probe} (layer {result.layer}, {result.pooling} pooling)", style="dim"))
    table = Table()
    table.add_column("text", overflow="fold")
    table.add_column("label")
    for label in result.labels:
        table.add_column(Text(f"p({label})"), justify="right")
    table.add_column("", no_wrap=True)
    for item in result.predictions:
        text = Text(item.text)
        if item.truncated:
            text.append(" [cut]", style="yellow")
        table.add_row(
            text,
            Text(item.label, style="bold"),
            *[f"{item.probabilities[label]:.3f}" for label in result.labels],
            Text(bar(item.probability, width=10), style="cyan"),
        )
    console.print(table)
    cut = sum(item.truncated for item in result.predictions)
    if cut:
        console.print(
            Text(
                f"[cut]: the probe reads a text's first {result.max_length} word pieces only, as it was trained; "
                f"{cut} of these texts {'is' if cut == 1 else 'are'} longer, so the rest of it went unread.",
                style="yellow",
            )
        )
    chance = 1 / max(len(result.labels), 1)
    shares = getattr(result, "train_shares", None)
    if shares and max(abs(share - chance) for share in shares.values()) > 0.05:
        # Trained on an uneven mix, a probe that reads nothing in the vector answers about that mix (0.9 for a
        # label that was 90% of its training rows), so "cannot tell" is near the mix, not near 1 / labels. Near
        # in odds: 0.9 -> 0.999 is a clear move. Odds within 1.5 times the mix's, as 0.6 is for two even labels.
        unsure = [
            item
            for item in result.predictions
            if max(abs(_log_odds(item.probabilities[label]) - _log_odds(shares[label])) for label in result.labels)
            < math.log(1.5)
        ]
        near = "the training mix (" + ", ".join(f"{label} {shares[label]:.2f}" for label in result.labels) + ")"
    else:
        # Within 0.1 of chance (0.6 for two labels): with four labels 0.55 is a clear pick, not "cannot tell".
        unsure = [item for item in result.predictions if item.probability < chance + 0.1]
        near = f"{chance:.2f}"
    console.print(
        Text(
            f"Each label is the probe's reading of the frozen vector alone; p near {near} means it cannot tell"
            + (f" ({len(unsure)} of {len(result.predictions)} here)." if unsure else "; none is that close here."),
            style="bold",
        )
    )


RENDERERS = {"ProbeResult": probe_view, "PredictResult": predict_view}
