"""Tables for people, JSON for machines. Only this package imports rich.

``show(result)`` finds the renderer of a core result by convention: a result class
defined in ``bertprobe.<name>`` is drawn by ``RENDERERS[ClassName]`` in
``bertprobe.render.<name>``. Results go to stdout; notices, warnings and errors go to
stderr, so ``--json`` output can be piped as it is.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import importlib
import json as jsonlib
import math
import os
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.markup import escape
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from bertprobe import __version__
from bertprobe.errors import InputError

# Characters that must never reach a terminal as they are: C0 controls but tab and newline (ESC starts
# colour and OSC sequences, BEL rings, CR and BS overwrite what was printed), DEL, C1 controls (8-bit
# CSI / OSC), line and paragraph separators, and the bidirectional overrides that reorder a line.
# Lone surrogates (bytes that were not UTF-8, as Python decodes argv and file names) cannot be printed.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# In JSON output, C0 controls are escaped by json.dumps already; these are legal raw in a JSON string but
# would still reach a terminal that shows the document, or break a strict UTF-8 reader.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def visible(text: str, one_line: bool = False) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\r``, ``\\u202e``).

    ``one_line`` also escapes newlines and tabs (error messages and notices stay one line).
    """
    return (_UNSAFE_LINE if one_line else _UNSAFE).sub(_escape_char, text)


class SafeConsole(Console):
    """A Console that never lets user or file text drive the terminal, and never cuts a table short.

    Strings (markup, table cells, titles) are escaped before Rich parses them; any control character
    still inside a rendered segment (a ``Text`` built by a renderer) is escaped on the way out. Tables
    wrap instead of truncating with "…"; a table that cannot fit the terminal even wrapped is shown
    without its bar columns, else stacked (one block of "column: value" lines per row).
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(visible(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not _UNSAFE.search(segment.text):
                yield segment
            else:
                yield Segment(visible(segment.text), segment.style)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*[self._fit(obj) for obj in objects], **kwargs)

    def _fit(self, obj: Any) -> Any:
        if isinstance(obj, Text):
            return _safe_text(self, obj)
        if isinstance(obj, Table):
            for column in obj.columns:
                column._cells = [_safe_text(self, cell) if isinstance(cell, Text) else cell for cell in column._cells]
                if isinstance(column.header, Text):
                    column.header = _safe_text(self, column.header)
            return _fit_table(self, obj)
        if isinstance(obj, Group):
            return Group(*[self._fit(inner) for inner in obj.renderables])
        renderables = getattr(obj, "renderables", None)  # rich.columns.Columns: side by side if each fits
        if isinstance(renderables, list) and any(isinstance(inner, Table) for inner in renderables):
            fitted = [self._fit(inner) for inner in renderables]
            if all(fitted[i] is inner for i, inner in enumerate(renderables)):
                return obj
            return Group(*fitted)
        return obj


def _safe_text(console: Console, text: Text) -> Text:
    """``text`` with its control characters escaped, styles kept (escaped before Rich measures and wraps it)."""
    if not _UNSAFE.search(text.plain):
        return text
    safe = Text(justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap, end=text.end, style=text.style)
    for segment in text.render(console, end=""):
        safe.append(visible(segment.text), segment.style)
    return safe


_BAR = re.compile("[ █▏▎▍▌▋▊▉]*")


def _cell_text(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell) if isinstance(cell, str) else "?"


def _min_width(console: Console, table: Table, columns: list[Any]) -> int:
    from rich.measure import Measurement

    wide = console.options.update_width(100_000)
    left, right = table.padding[3], table.padding[1]
    total = 0
    for column in columns:
        cells = [column.header, *column._cells] if table.show_header else list(column._cells)
        widest_word = max((Measurement.get(console, wide, cell).minimum for cell in cells), default=0)
        total += max(widest_word, column.min_width or 0) + left + right
    edges = (2 if table.box and table.show_edge else 0) + (len(columns) - 1 if table.box else 0)
    return total + edges


_WORD = re.compile(r"\s*\S+\s*")  # how Rich's Text.wrap cuts a line: a word keeps the spaces before it


def _longest_word(console: Console, cell: Any) -> int:
    """The narrowest width ``cell`` wraps to without folding a word (spaces that lead a word count with it)."""
    from rich.cells import cell_len
    from rich.measure import Measurement

    if isinstance(cell, str):
        cell = console.render_str(cell)
    if not isinstance(cell, Text):
        return Measurement.get(console, console.options, cell).minimum
    return max((cell_len(word.rstrip()) for line in cell.plain.split("\n") for word in _WORD.findall(line)), default=0)


def _lstrip(cell: Any, keep: int) -> Any:
    """``cell`` without the spaces that lead it, but ``keep``."""
    plain = cell if isinstance(cell, str) else cell.plain if isinstance(cell, Text) else ""
    cut = len(plain) - len(plain.lstrip(" ")) - keep
    return cell[cut:] if cut > 0 else cell


def _keep_words_whole(console: Console, table: Table) -> bool:
    """``_widen_to_words``, or true (Rich's own widths, as before) on a Rich whose private table methods it reads
    have changed: a table drawn as Rich draws it beats no table."""
    try:
        return _widen_to_words(console, table)
    except (AttributeError, TypeError):
        return True


def _widen_to_words(console: Console, table: Table) -> bool:
    """Give each column of ``table`` at least its longest word (a number is one word); false if they cannot all fit.

    Rich narrows a table too wide for the console by shrinking its widest columns, below their longest word if it
    must, and a folded cell then reads as another number (".92" as ".9" over "2"). Where Rich's own widths leave
    every word whole they are kept, so a table that fits looks as before. Else the spaces that right-align a cell
    go (the column aligns it), and the room is taken from the columns wider than their longest word, widest first.
    """
    options = console.options.update_width((table.width or console.width) - table._extra_width)

    def needs() -> list[int]:
        least = []
        for column in table.columns:
            cells = [column.header, *column._cells] if table.show_header else column._cells
            longest = max((_longest_word(console, cell) for cell in cells), default=0)
            least.append(longest + table._get_padding_width(column._index))
        return least

    widths = table._calculate_column_widths(console, options)
    if all(width >= need for width, need in zip(widths, needs(), strict=True)):
        return True
    # Without a rule or padding between columns the leading spaces are all that part two cells: keep one.
    keep = 0 if table.box or table.padding[1] or table.padding[3] else 1
    for column in table.columns:
        if column.justify == "right":
            column.header = _lstrip(column.header, keep)
            column._cells = [_lstrip(cell, keep) for cell in column._cells]
    widths, least = table._calculate_column_widths(console, options), needs()
    short = sum(max(need - width, 0) for width, need in zip(widths, least, strict=True))
    widths = [max(width, need) for width, need in zip(widths, least, strict=True)]
    while short > 0:
        spare = [index for index, (width, need) in enumerate(zip(widths, least, strict=True)) if width > need]
        if not spare:
            return False
        widest = max(spare, key=lambda index: widths[index])
        widths[widest] -= 1
        short -= 1
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width - table._get_padding_width(column._index)
    return True


def _fit_table(console: Console, table: Table) -> RenderableType:
    """Make ``table`` show every cell in full at the console's width: wrap, drop bars, or stack."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
        for cell in column._cells:
            if isinstance(cell, Text):
                cell.overflow, cell.no_wrap = "fold", False
    if _min_width(console, table, table.columns) <= console.width and _keep_words_whole(console, table):
        return table
    is_bar = [
        bool(column._cells) and all(_BAR.fullmatch(_cell_text(c)) for c in column._cells) for column in table.columns
    ]
    kept = [column for column, bar in zip(table.columns, is_bar, strict=True) if not bar]
    if kept and len(kept) < len(table.columns) and _min_width(console, table, kept) <= console.width:
        every = table.columns
        table.columns = kept  # bars only draw numbers that stay in the table
        if _keep_words_whole(console, table):
            return table
        table.columns = every
    blocks: list[RenderableType] = []
    if table.title:
        blocks.append(table.title)
    for row in range(table.row_count):
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", overflow="fold")
        grid.add_column(overflow="fold")
        for index, column in enumerate(table.columns):
            header = column.header if _cell_text(column.header).strip() else f"({index + 1})"
            grid.add_row(header, column._cells[row] if row < len(column._cells) else "")
        blocks.append(grid)
        blocks.append("")
    if table.caption:
        blocks.append(table.caption)
    return Group(*blocks)


def out() -> Console:
    """Console on the current stdout (made per call so test runners that swap stdout see it)."""
    return SafeConsole(file=sys.stdout, highlight=False)


def err() -> Console:
    return SafeConsole(file=sys.stderr, highlight=False)


def error(exc: Any) -> None:
    """An ``error:`` line and its hint on stderr; under torchrun only the process that stopped first says it."""
    from bertprobe.distributed import first_to_stop

    if not first_to_stop():
        return
    console = err()
    console.print(f"[bold red]error:[/] {escape(visible(str(exc), one_line=True))}", soft_wrap=True)
    if getattr(exc, "hint", ""):
        console.print(f"[dim]hint: {escape(visible(exc.hint, one_line=True))}[/]", soft_wrap=True)


def notice(message: str) -> None:
    """A ``note:`` line on stderr; under torchrun / accelerate only rank 0 says it (every rank would say the same)."""
    if os.environ.get("RANK", "0") not in ("", "0") and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return
    err().print(f"[yellow]note:[/] {escape(visible(message, one_line=True))}", soft_wrap=True)


def traceback() -> None:
    err().print_exception()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def dumps(doc: Any, indent: int | None = 2, ascii_only: bool = False) -> str:
    """Strict JSON: no NaN or Infinity (non-finite numbers become null), and no character that could drive
    a terminal or break a UTF-8 reader (written as a \\uXXXX escape, which parses back to the same text).
    ``indent=None`` writes one line (JSON Lines): U+2028 and U+0085 would split it for ``str.splitlines``.
    ``ascii_only``: every non-ASCII character escaped too, for a stream that is not UTF-8 (``utf8_stream``)."""
    text = jsonlib.dumps(_jsonable(doc), indent=indent, ensure_ascii=ascii_only, allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def utf8_stream(stream: Any) -> bool:
    """Whether ``stream`` writes UTF-8. A stdout in cp1252 (Windows without UTF-8 mode, redirected to a file) would
    write "é" as a byte no UTF-8 JSON reader takes, and stop at "😀": JSON for it is written ``ascii_only``."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name == "utf-8"
    except LookupError:
        return False


def emit_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(dumps(doc, ascii_only=not utf8_stream(sys.stdout)) + "\n")
    sys.stdout.flush()


def to_document(result: Any, seed: int | None = None) -> dict[str, Any]:
    """The JSON form of a result: its fields, plus what reproduces it."""
    doc = _jsonable(result)
    doc.setdefault("seed", seed)
    doc["bertprobe_version"] = __version__
    return doc


def show(result: Any, json: bool = False, seed: int | None = None, **view: Any) -> None:
    """Print a core result as JSON or as its Rich view; ``view`` (e.g. explain, details) goes to the view."""
    if json:
        emit_json(to_document(result, seed))
        return
    module = importlib.import_module("bertprobe.render." + type(result).__module__.rsplit(".", 1)[-1])
    module.RENDERERS[type(result).__name__](result, out(), **view)


def header(console: Console, title: str, result: Any) -> None:
    """One dim line naming the model (and revision) a result came from."""
    revision = f"@{result.revision[:10]}" if getattr(result, "revision", None) else ""
    console.print(f"[bold]{escape(title)}[/]  [dim]model: {escape(result.model)}{escape(revision)}[/]")


def closing(console: Console, readings: Iterable[str], guide: str | RenderableType | None = None) -> None:
    """The lines that close a table: the ``--explain`` guide in dim (``None`` when not asked for; a
    renderable is printed as it is), then the plain-words readings of the numbers in bold."""
    if guide is not None:
        console.print(Text(guide, style="dim") if isinstance(guide, str) else guide)
    for line in readings:
        console.print(Text(line, style="bold"))


def luck(correct: int, total: int, rate: float) -> float:
    """How often ``correct`` or more of ``total`` come out right by luck, each right with chance ``rate``.

    The exact one-sided binomial tail, so that a lead of two texts out of eight is not read as a finding;
    summed in floats from log-probabilities (exact integers take minutes at tens of thousands).
    """
    if rate <= 0:
        return 0.0 if correct > 0 else 1.0
    if rate >= 1:
        return 1.0
    log_rate, log_miss = math.log(rate), math.log1p(-rate)
    return min(
        1.0,
        sum(
            math.exp(
                math.lgamma(total + 1)
                - math.lgamma(k + 1)
                - math.lgamma(total - k + 1)
                + k * log_rate
                + (total - k) * log_miss
            )
            for k in range(max(correct, 0), total + 1)
        ),
    )


def blind_luck(hits: int, population: int, successes: int, draws: int) -> float:
    """How often ``hits`` or more of ``draws`` items picked blindly from ``population`` are among ``successes``:
    the one-sided tail of Fisher's exact test (the hypergeometric distribution)."""

    def log_choose(n: int, k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    total = log_choose(population, draws)
    return min(
        1.0,
        sum(
            math.exp(log_choose(successes, k) + log_choose(population - successes, draws - k) - total)
            for k in range(max(hits, 0), min(successes, draws) + 1)
            if draws - k <= population - successes
        ),
    )


def percent(value: float, digits: int = 0) -> str:
    """``value`` as a percentage that reads 0% or 100% only when it is exactly that (199 of 200 is 99.5%, not
    100%): decimals are added until the rounding no longer hides the difference."""
    text = f"{value:.{digits}%}"
    while 0 < value < 1 and float(text[:-1]) in (0.0, 100.0) and digits < 6:
        digits += 1
        text = f"{value:.{digits}%}"
    return text


def probability(value: float, digits: int = 2, cuts: tuple[float, ...] = ()) -> str:
    """``value`` to ``digits`` decimals, with more where rounding would mislead: a value strictly between 0
    and 1 shown as 0 or 1 (0.9977 is not certain), or shown on the other side of a cut-off the words beside it
    depend on (0.4996 as "0.50" beside "takes B for a random sentence")."""

    def misleading(text: str) -> bool:
        shown = float(text)
        return (0 < value < 1 and shown in (0.0, 1.0)) or any((shown >= cut) != (value >= cut) for cut in cuts)

    text = f"{value:.{digits}f}"
    while misleading(text) and digits < 8:
        digits += 1
        text = f"{value:.{digits}f}"
    return text


def bar(fraction: float, width: int = 20) -> str:
    """A proportional bar of block characters for a value in [0, 1]."""
    fraction = min(max(fraction, 0.0), 1.0)
    full, part = divmod(round(fraction * width * 8), 8)
    return "█" * full + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])


PLOT_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def check_plot_path(path: str | Path) -> Path:
    """Refuse a plot file that cannot be written, before any model work is done."""
    target = Path(path)
    if target.suffix.lower() not in PLOT_FORMATS:
        raise InputError(
            f"--plot {target}: unknown image type {target.suffix or '(none)'!r}",
            hint=f"End the file name with one of {', '.join(PLOT_FORMATS)}.",
        )
    if not target.parent.resolve().is_dir():
        raise InputError(f"--plot {target}: the folder {target.parent} does not exist", hint="Create it first.")
    return target


def plot_label(text: str) -> str:
    """User text as a plot draws it as written: control characters escaped, every ``$`` literal (matplotlib
    reads ``$...$`` as maths: "$5 and $10" loses its dollars, "$x^$" fails the whole plot)."""
    return visible(text, one_line=True).replace("$", r"\$")


@contextlib.contextmanager
def plot_warnings() -> Iterator[None]:
    """Keep matplotlib's warnings off stderr (one per character its font cannot draw); say that once, as a note."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    if any("missing from font" in str(warning.message) for warning in caught):
        notice("The plot's font cannot draw some characters of the text; they show as empty boxes there.")


def show_models(infos: list[Any], json: bool = False) -> None:
    from bertprobe.render import models

    models.show(infos, json)


class progress_bar:  # used like a function: ``with progress_bar("...") as update``
    """A Rich progress bar with ETA on stderr; yields the ``(done, total)`` callback core code calls.

    Hidden when ``enabled`` is false (``--json`` keeps stderr quiet apart from notices).
    """

    def __init__(self, description: str, enabled: bool = True) -> None:
        self.description = description
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self):
        if not self.enabled or not err().is_terminal:  # a bar in a log file is noise
            return lambda done, total: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err(),
            transient=True,
        )
        self._progress.__enter__()
        self._task = self._progress.add_task(escape(self.description), total=None)

        def update(done: int, total: int) -> None:
            self._progress.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)


def html(result: Any, width: int = 100, **view: Any) -> str:
    """A result's Rich view as one HTML fragment (notebooks): every text escaped, styles inline."""
    import io

    module = importlib.import_module("bertprobe.render." + type(result).__module__.rsplit(".", 1)[-1])
    console = SafeConsole(file=io.StringIO(), record=True, width=width, highlight=False, color_system="truecolor")
    module.RENDERERS[type(result).__name__](result, console, **view)
    return console.export_html(inline_styles=True, code_format='<pre style="font-family:monospace">{code}</pre>')
