"""Many texts in one run: read them from arguments, a file or stdin, check them, hand them out in chunks.

A source is read twice, both times as a stream: first to check every text (so a bad line
stops the run before any model work, and nothing is half-written), then in chunks for the
computation. Memory holds one chunk of texts and the list of bad lines, never the corpus.
Standard input is copied to a temporary file first so that it too can be read twice.

Formats (by the file's suffix): ``.txt`` (or no suffix, or ``-`` for stdin) holds one text
per line; ``.csv`` / ``.tsv`` have a header line and take the text from ``--text-column``;
``.jsonl`` holds one JSON object per line, text under ``--text-column``. The default column
is ``text``, else ``sentence``, else the only column there is. ``-.jsonl``, ``-.csv`` and
``-.tsv`` read stdin as that table.

This module is also the one reader of every other data file (``--data``, ``--sentences``,
``--pairs``, ``--corpus``): :func:`file_lines` streams a file's lines (split on ``\n`` only,
each line checked as UTF-8 and numbered), :func:`table_rows` turns them into rows of a
csv / tsv / jsonl table, and :func:`read_rows` collects the rows of a whole file with the
columns a command needs. Every problem names the file and the line.
"""

from __future__ import annotations

import codecs
import csv
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe.errors import DataError, InputError

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# read_rows (labelled data, sentence sets, pairs): a .txt file is a tsv table, as in GLUE
ROW_FORMATS = {**TABLE_FORMATS, ".txt": "tsv"}
TEXT_SUFFIXES = {".txt", ".text", ""}
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")  # just after a \r that no \n follows
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # json reads a lone "\ud800" escape into a str
DEFAULT_COLUMNS = ("text", "sentence")
ON_BAD = ("stop", "skip")
CHUNK_TEXTS = 256  # texts read, computed and written together (see score.MEMORY_NOTE)
LISTED_BAD = 10  # bad lines named in one message
# The csv module refuses a field over 131,072 characters and stops the file there; a text that long is one row like
# any other (too long for the model, as in .txt and .jsonl: a bad line --on-bad skip can leave out). Still bounded:
# a quote never closed reads the rest of the file into one field before it is found.
CSV_FIELD_LIMIT = 1 << 26
_SEPARATORS = {"\t": "tabs", ",": "commas", ";": "semicolons"}  # in the name of a table's only column


@dataclass(frozen=True)
class InputText:
    """One text of the input: its number in input order (1-based) and where it came from."""

    index: int
    line: int | None  # 1-based line of the file; None for command-line arguments
    text: str
    pair: str | None = None  # the second text of a pair (nsp, minimal pairs)
    group: str | None = None  # minimal pairs: the phenomenon the pair tests


@dataclass(frozen=True)
class BadLine:
    index: int
    line: int | None
    reason: str
    hint: str | None = None  # how to fix this line, where the reader knows (a jsonl line that is not JSON)

    def where(self, label: str) -> str:
        return f"{label}, line {self.line}" if self.line is not None else f"text {self.index}"


@dataclass
class Checked:
    """What the checking pass found: how many texts there are, which ones are bad."""

    count: int = 0
    bad: list[BadLine] = field(default_factory=list)
    work: int = 0  # units of work over the good texts (for a progress bar), as the check counted them
    stamp: tuple[int, int] | None = None  # the file's size and mtime as checked: the texts read later must be these

    @property
    def good(self) -> int:
        return self.count - len(self.bad)


Problem = Callable[[InputText], "tuple[str | None, int]"]  # (reason it is bad or None, units of work)


@dataclass(frozen=True)
class Columns:
    """Which columns of a csv / tsv / jsonl file to read: each a list of names, the first present wins.

    ``text`` is required. ``pair`` is required when given. ``group`` is optional unless
    ``group_required`` (the user named it).
    """

    text: tuple[str, ...] = DEFAULT_COLUMNS
    text_named: bool = False  # the user named it: no fallback to the only column
    pair: tuple[str, ...] = ()
    group: tuple[str, ...] = ()
    group_required: bool = False
    option: str = "--text-column"

    @classmethod
    def for_text(cls, text_column: str | None) -> Columns:
        return cls((text_column,), True) if text_column is not None else cls()

    @property
    def pair_hint(self) -> str:
        """What a file of pairs needs, in the names this command reads."""
        names = " and ".join(n[0] + (f" (or {', '.join(n[1:])})" if n[1:] else "") for n in (self.text, self.pair))
        return f"Each line needs a first and a second text, in columns {names}."

    def resolve(self, label: str, header: Sequence[str]) -> tuple[str, str | None, str | None]:
        def first(names: tuple[str, ...]) -> str | None:
            return next((n for n in names if n in header), None)

        listed = ", ".join(header) or "none"
        text = first(self.text)
        if text is None and not self.text_named and not self.pair and len(header) == 1:
            joined = next((name for sep, name in _SEPARATORS.items() if sep in header[0]), None)
            if joined is not None:
                # A tab-separated file saved as .csv (or the other way round) has one column: read as the
                # text, each line would carry its other fields along ("A dog barked.\t1").
                raise DataError(
                    f"{label}: its only column {header[0]!r} looks like several columns joined by {joined}",
                    hint="A .csv file separates columns with commas, a .tsv file with tabs: save it with the "
                    f"suffix its separator needs, or name the column with {self.option} if that is its name.",
                )
            text = header[0]
        if text is None:
            raise DataError(
                f"{label}: no {' or '.join(map(repr, self.text))} column (columns: {listed})",
                hint=f"Name the column that holds the text with {self.option}." if not self.pair else self.pair_hint,
            )
        pair = first(self.pair) if self.pair else None
        if self.pair and pair is None:
            raise DataError(
                f"{label}: no {' or '.join(map(repr, self.pair))} column (columns: {listed})",
                hint=self.pair_hint,
            )
        group = first(self.group) if self.group else None
        if self.group_required and group is None:
            raise DataError(
                f"{label}: no {self.group[0]!r} column (columns: {listed})",
                hint="Name an existing column with --group-column, or leave it out.",
            )
        return text, pair, group


class TextSource:
    """Texts from command-line arguments or a file; iterable more than once, each time as a stream."""

    def __init__(
        self,
        texts: Sequence[str] = (),
        path: str | Path | None = None,
        columns: Columns | None = None,
        pairs: Sequence[str] | None = None,
    ) -> None:
        self.texts = list(texts)
        self.pairs = list(pairs) if pairs is not None else None  # second texts, one per text
        self.columns = columns or Columns()
        self.stdin_kind = stdin_kind(path)  # "-" is a text per line; "-.jsonl", "-.csv", "-.tsv" a table
        self.stdin = self.stdin_kind is not None
        self.path = Path(path) if path is not None and not self.stdin else None
        self.label = "stdin" if self.stdin else (str(self.path) if self.path is not None else "arguments")
        self._spool: Path | None = None
        self.found: tuple[str, str | None, str | None] | None = None  # the columns read (text, pair, group)
        if self.path is not None:
            if not self.path.is_file():
                pipe = self.path.exists() and not self.path.is_dir()  # --input <(zcat texts.gz): read once only
                raise DataError(
                    f"{self.path}: {_not_a_file(self.path)}",
                    hint=f"Pipe it in with {self.option} - (or -.jsonl, -.csv, -.tsv for a table), e.g. "
                    f"zcat texts.txt.gz | bertprobe ... {self.option} -"
                    if pipe
                    else f"Check the path given to {self.option}.",
                )
            suffix = self.path.suffix.lower()
            if suffix not in TABLE_FORMATS and suffix not in TEXT_SUFFIXES:
                raise DataError(
                    f"{self.path}: unknown file type {suffix!r}",
                    hint="Use .txt (one text per line), .csv, .tsv or .jsonl (with --text-column).",
                )
        if self.from_file and self.kind == "txt" and (self.columns.text_named or self.columns.pair):
            raise InputError(
                f"{self.columns.option} needs a .csv, .tsv or .jsonl file; {self.label} is plain text",
                hint=(
                    "Leave it out: each line of a .txt file is one text."
                    if not self.columns.pair
                    else f"Give them as .csv, .tsv or .jsonl. {self.columns.pair_hint}"
                )
                + (f" For a table on stdin, write {self.option} -.jsonl (or -.csv, -.tsv)." if self.stdin else ""),
            )

    @property
    def option(self) -> str:
        """The option that named the file."""
        return "--pairs" if self.columns.option == "--pairs" else "--input"

    @property
    def kind(self) -> str:
        if self.stdin_kind is not None:
            return self.stdin_kind
        if self.path is None:
            return "txt"
        return TABLE_FORMATS.get(self.path.suffix.lower(), "txt")

    @property
    def from_file(self) -> bool:
        return self.path is not None or self.stdin

    def __enter__(self) -> TextSource:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._spool is not None:
            self._spool.unlink(missing_ok=True)
            self._spool = None

    def _file(self) -> Path:
        if self.stdin:
            if self._spool is None:
                handle, name = tempfile.mkstemp(prefix="bertprobe-stdin-", suffix=".txt")
                with os.fdopen(handle, "wb") as spool:
                    shutil.copyfileobj(sys.stdin.buffer, spool)
                self._spool = Path(name)
            return self._spool
        assert self.path is not None
        return self.path

    def __iter__(self) -> Iterator[InputText | BadLine]:
        """Every text in input order; a line that cannot be read as one comes as a :class:`BadLine`."""
        if not self.from_file:
            for number, text in enumerate(self.texts, start=1):
                pair = self.pairs[number - 1] if self.pairs is not None else None
                yield InputText(number, None, text, pair)
            return
        lines = file_lines(self._file(), self.label)
        if self.kind == "txt":
            for number, raw in cr_lines(lines):
                yield InputText(number, number, raw.strip())
        else:
            yield from self._table_items(table_rows(lines, self.label, self.kind))

    def _table_items(self, rows: Iterator[Header | Row | BadRow]) -> Iterator[InputText | BadLine]:
        names: tuple[str, str | None, str | None] | None = None
        index = 0
        for row in rows:
            if isinstance(row, Header):
                names = self.found = self.columns.resolve(self.label, row.names)
                continue
            index += 1
            if isinstance(row, BadRow):
                yield BadLine(index, row.line, row.reason, row.hint)
                continue
            if names is None:  # jsonl: the first object names the columns
                names = self.found = self.columns.resolve(f"{self.label}, line {row.line}", list(row.values))
            text_name, pair_name, group_name = names
            fields = [row.values.get(text_name)] + ([row.values.get(pair_name)] if pair_name else [])
            group = row.values.get(group_name) if group_name else None
            reasons = [
                f"no text under {name!r}" if value is None else _text_problem(name, value)
                for name, value in zip((text_name, pair_name), fields, strict=False)
            ]
            if group_name is not None and group is not None and not isinstance(group, (bool, int, float)):
                reasons.append(_text_problem(group_name, group))  # a number names a group too; a list does not
            reason = next((r for r in reasons if r is not None), None)
            if reason is not None:
                yield BadLine(index, row.line, reason)
                continue
            yield InputText(
                index,
                row.line,
                fields[0].strip(),
                fields[1].strip() if pair_name else None,
                # " agr", "agr" and an empty cell are not three phenomena: each would be scored as its own group
                (str(group).strip() or None) if group is not None else None,
            )

    def check(self, problem: Problem | None = None, on_bad: str = "stop", skippable: bool = True) -> Checked:
        """Read every text once: count them and find the bad ones (empty, or whatever ``problem`` says).

        ``on_bad="stop"`` raises a DataError naming the first bad line (and how many others
        there are) before any model work; ``"skip"`` returns them so they can be listed.
        ``skippable``: whether the caller has ``--on-bad skip`` to offer (the Python API has not).
        """
        if on_bad not in ON_BAD:
            raise InputError(f"unknown --on-bad {on_bad!r}", hint=f"Choose one of {', '.join(ON_BAD)}.")
        checked = Checked(stamp=self._stamp())
        for item in self:
            checked.count += 1
            if isinstance(item, BadLine):
                checked.bad.append(item)
                continue
            reason, work = (None, 1)
            if not item.text.strip() or (item.pair is not None and not item.pair.strip()):
                reason = "empty text"
            elif problem is not None:
                reason, work = problem(item)
            if reason is not None:
                checked.bad.append(BadLine(item.index, item.line, reason))
            else:
                checked.work += work
        if checked.count == 0:
            raise DataError(f"{self.label}: no texts", hint="Give one text per line (or per row).")
        if checked.bad and on_bad == "stop":
            first = checked.bad[0]
            more = len(checked.bad) - 1
            others = f" ({more} more bad line(s): {self.list_bad(checked.bad[1:])})" if more else ""
            if not self.from_file and checked.count == 1:
                raise InputError(first.reason, hint="Fix the text.")
            fix = f"{first.hint} " if first.hint else ""
            skip = ", or pass --on-bad skip to leave them out and list them" if skippable else ""
            raise DataError(
                f"{first.where(self.label)}: {first.reason}{others}; nothing was computed",
                hint=f"{fix}Fix or delete those lines{skip}.",
            )
        if checked.good == 0:
            raise DataError(
                f"{self.label}: every one of its {checked.count} text(s) is bad ({self.list_bad(checked.bad)})",
                hint="Fix the lines listed.",
            )
        return checked

    def list_bad(self, bad: Sequence[BadLine]) -> str:
        named = ", ".join(f"{b.line if b.line is not None else b.index}: {b.reason}" for b in bad[:LISTED_BAD])
        rest = f", and {len(bad) - LISTED_BAD} more" if len(bad) > LISTED_BAD else ""
        unit = "line" if self.from_file else "text"
        return f"{unit} {named}{rest}"

    def chunks(self, checked: Checked, size: int = CHUNK_TEXTS) -> Iterator[list[InputText]]:
        """The good texts in input order, ``size`` at a time."""
        skipped = {b.index for b in checked.bad}
        chunk: list[InputText] = []
        for item in self:
            if isinstance(item, BadLine) or item.index in skipped:
                continue
            chunk.append(item)
            if len(chunk) >= size:
                self._unchanged(checked)
                yield chunk
                chunk = []
        self._unchanged(checked)
        if chunk:
            yield chunk

    def _stamp(self) -> tuple[int, int] | None:
        """The input file's size and modification time (stdin is read from a private copy)."""
        if self.path is None:
            return None
        info = self.path.stat()
        return info.st_size, info.st_mtime_ns

    def _unchanged(self, checked: Checked) -> None:
        """The file is read twice: texts changed after the check would be computed unchecked, or misnumbered."""
        if self._stamp() != checked.stamp:
            raise DataError(
                f"{self.label} changed while it was being read",
                hint="Run again once the file is complete, or on a copy of it.",
            )


def source_for(
    texts: Sequence[str],
    input_path: str | Path | None,
    text_column: str | None = None,
    example: str = 'bertprobe score "The cat sat on the mat."',
) -> TextSource:
    """The texts of a command: TEXT arguments or ``--input FILE`` (``-`` for stdin), exactly one of them."""
    if texts and input_path is not None:
        raise InputError("give texts as arguments or with --input, not both", hint=f"e.g. {example}")
    if not texts and input_path is None:
        raise InputError("no text given", hint=f"e.g. {example}, or --input FILE (one text per line)")
    if text_column is not None and input_path is None:
        raise InputError("--text-column needs --input FILE", hint="It names the column of a csv, tsv or jsonl file.")
    return TextSource(texts, input_path, Columns.for_text(text_column))


def stdin_kind(path: str | Path | None) -> str | None:
    """The format of standard input named by ``--input``: ``-`` one text a line, ``-.jsonl`` etc. a table."""
    name = str(path) if path is not None else ""
    if name == "-":
        return "txt"
    if name.startswith("-.") and name[1:].lower() in TABLE_FORMATS:
        return TABLE_FORMATS[name[1:].lower()]
    return None


def length_problem(lm: object, pair: bool = False, encoded: Callable[[Any], str | None] | None = None) -> Problem:
    """A text longer than the model reads is bad, and one ``encoded`` finds bad (why, or None) in its word
    pieces; the work is its number of word pieces."""
    tokenizer = lm.tokenizer  # type: ignore[attr-defined]
    limit = tokenizer.model_max_length

    def problem(item: InputText) -> tuple[str | None, int]:
        encoding = tokenizer.encode(item.text, item.pair if pair else None)
        if len(encoding) > limit:
            return f"{len(encoding)} word pieces; {lm.name} reads at most {limit}", len(encoding)  # type: ignore[attr-defined]
        return (encoded(encoding) if encoded is not None else None), len(encoding)

    return problem


def mask_problem(
    lm: object, wanted: bool | None, word: str | None = None, encoded: Callable[[Any], str | None] | None = None
) -> Problem:
    """Also bad: a text without a mask where one is needed (``wanted``), or with one where none may be
    (``wanted=False``), or without ``word`` when one is to be masked, or one ``encoded`` finds bad."""
    from bertprobe.masking import eligible_positions
    from bertprobe.mlm import normalise_masks

    tokenizer = lm.tokenizer  # type: ignore[attr-defined]
    limit = tokenizer.model_max_length

    def problem(item: InputText) -> tuple[str | None, int]:
        encoding = tokenizer.encode(normalise_masks(item.text, tokenizer.mask_token))
        if len(encoding) > limit:
            return f"{len(encoding)} word pieces; {lm.name} reads at most {limit}", len(encoding)  # type: ignore[attr-defined]
        masked = tokenizer.mask_token_id in encoding.ids
        if wanted and not masked:
            return "no [MASK] in the text", len(encoding)
        if wanted is False and masked:
            return "the text holds a [MASK]; this mode masks the text itself", len(encoding)
        if wanted is False and not eligible_positions(encoding.ids, tokenizer.special_ids):
            # a zero-width space or control characters tokenise to nothing: the modes that mask the text refuse it
            return "the text has no tokens to mask (only special or unknown ones)", len(encoding)
        if word is not None and word.strip():
            from bertprobe.tokens import find_word

            if not find_word(encoding, word):
                return f"{word.strip()!r} does not occur in the text as a whole word", len(encoding)
        return (encoded(encoding) if encoded is not None else None), len(encoding)

    return problem


# ---------------------------------------------------------------------------------------------
# the one reader of data files: streams of numbered lines, rows of csv / tsv / jsonl tables


@dataclass(frozen=True)
class Header:
    """The header line of a csv / tsv table (jsonl has none: each object names its fields)."""

    line: int
    names: list[str]


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line of the file where the row ends (a quoted csv field may span lines)
    values: dict[str, Any]  # csv / tsv: strings; jsonl: the JSON values; read_rows: checked strings


@dataclass(frozen=True)
class BadRow:
    """A line that cannot be read as a row: why, and how to fix it."""

    line: int
    reason: str
    hint: str


def lines(text: str) -> list[str]:
    """The lines of a text, split on newlines only (``\n``, ``\r\n``).

    ``str.splitlines`` also splits on U+2028, U+0085, form feeds and other separators, which
    are ordinary characters inside a sentence or a JSON string.
    """
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [part[:-1] if part.endswith("\r") else part for part in parts]


def file_lines(path: Path, label: str | None = None) -> Iterator[tuple[int, str]]:
    """The lines of a file as they stream, numbered from 1 and each with its line end: split on ``\n``
    only (as :func:`lines`), a leading BOM dropped, and a line that is not UTF-8 a DataError naming it."""
    try:
        file = path.open("rb")
    except OSError as err:
        raise _unreadable(label or str(path), err) from None
    with file:
        number = 0
        while True:
            try:
                raw = file.readline()
            except OSError as err:
                raise _unreadable(f"{label or path}, line {number + 1}", err) from None
            if not raw:
                return
            number += 1
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                decoded = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(
                    f"{label or path}, line {number}: not UTF-8 text", hint="Save the file as UTF-8."
                ) from None
            yield number, decoded


def _unreadable(where: str, err: OSError) -> DataError:
    return DataError(
        f"{where}: cannot be read ({err.strerror or type(err).__name__})",
        hint="Check the file's permissions, or copy it to a readable place and pass that path.",
    )


def cr_lines(lines: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """txt, csv and tsv files: a lone ``\r`` ends a line too (files saved with old Mac line ends), as it
    always has for them; the lines are numbered again. A jsonl line ends at ``\n`` only."""
    number = 0
    for _, raw in lines:
        if "\r" not in raw:
            number += 1
            yield number, raw
            continue
        for part in _LONE_CR.split(raw):
            if part:
                number += 1
                yield number, part


def read_text(path: str | Path, hint: str = "Check the path.") -> str:
    """The whole text of a user's file; a missing file or one that is not UTF-8 is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {_not_a_file(path)}", hint=hint)
    return "".join(raw for _, raw in file_lines(path))


def _not_a_file(path: Path) -> str:
    """Why a path given as a file cannot be read as one: a folder is not a missing file."""
    if Path(path).is_dir():
        return "a directory, not a file"
    # A pipe (process substitution) or a device exists, and can be read once only: a file is read twice
    return "not a regular file (a pipe or a device)" if Path(path).exists() else "no such file"


def file_format(path: Path) -> str:
    """The table format :func:`read_rows` reads ``path`` as, by its suffix."""
    try:
        return ROW_FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(
            f"{path}: unknown file type {path.suffix or '(none)'!r}",
            hint="Use a .csv, .tsv or .jsonl file (one JSON object per line).",
        ) from None


def table_rows(lines: Iterable[tuple[int, str]], label: str, kind: str) -> Iterator[Header | Row | BadRow]:
    """The rows of a csv / tsv / jsonl table as they stream; blank lines are skipped.

    A line that cannot be a row comes as a :class:`BadRow`; what makes the whole file unreadable
    (a header naming a column twice, broken csv quoting) is a DataError naming the line.
    """
    if kind == "jsonl":
        yield from _jsonl_rows(lines)
    else:
        yield from _delimited_rows(lines, label, kind)


def read_rows(
    path: str | Path, required: Sequence[str] = (), optional: Sequence[str] = (), rename: str | None = None
) -> list[Row]:
    """Rows of ``path`` with at least the ``required`` columns filled; ``optional`` ones may be absent.

    The first bad line stops the read with a DataError naming it. ``rename``: how the caller's user names another
    column instead (its options), for the hint when a required column is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {_not_a_file(path)}", hint="Check the path.")
    kind = file_format(path)
    rows: list[Row] = []
    for row in table_rows(file_lines(path), str(path), kind):
        if isinstance(row, BadRow):
            raise DataError(f"{path}, line {row.line}: {row.reason}", hint=row.hint)
        if isinstance(row, Row):
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no data rows", hint="The file needs a header line and at least one row.")
    columns = set().union(*(row.values.keys() for row in rows))
    for column in required:
        if column not in columns:
            raise DataError(
                f"{path}: no {column!r} column (columns: {', '.join(sorted(columns)) or 'none'})",
                hint=f"Add a {column!r} column (the first line names the columns)"
                + (f", or {rename}." if rename else "."),
            )
    keep = set(required) | set(optional)
    cleaned = []
    for row in rows:
        values = {k: _scalar(path, row.line, k, v) for k, v in row.values.items() if k in keep}
        for column in required:
            if not values.get(column, "").strip():
                raise DataError(f"{path}, line {row.line}: empty {column!r}", hint="Fill it in or delete the line.")
        cleaned.append(Row(row.line, {k: v.strip() for k, v in values.items()}))
    return cleaned


def not_text(column: str, value: Any) -> str:
    """Why a JSON value cannot stand where a text or label belongs (a list, an object, a number)."""
    if isinstance(value, (list, dict)):
        kind = "a list" if isinstance(value, list) else "an object"
    else:
        kind = str(value).lower() if isinstance(value, bool) else f"the number {value!r}"
    return f"{column!r} is {kind}, not a string"


def _text_problem(column: str, value: Any) -> str | None:
    """Why a JSON value cannot be a text (None when it can): not a string, or one the tokenizer cannot take."""
    if not isinstance(value, str):
        return not_text(column, value)
    surrogate = _SURROGATE.search(value)
    if surrogate is not None:  # not text: it cannot be encoded, and the tokenizer refuses it
        return f"{column!r} holds \\u{ord(surrogate.group()):04x}, half of a character (a lone surrogate escape)"
    return None


def _scalar(path: Path, line: int, column: str, value: Any) -> str:
    """A cell as text; a JSON list or object (or a non-finite number) where a text or label belongs is an error."""
    if value is None:
        return ""
    if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    reason = _text_problem(column, value)
    if reason is None:
        return value
    raise DataError(
        f"{path}, line {line}: {reason}",
        hint=f'Write one plain value per field, e.g. {{"{column}": "..."}}, and each character whole.',
    )


def _jsonl_rows(lines: Iterable[tuple[int, str]]) -> Iterator[Row | BadRow]:
    for number, raw in lines:
        if not raw.strip():
            continue
        try:
            value = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as err:
            yield BadRow(number, f"invalid JSON ({err.msg})", "One JSON object per line.")
            continue
        except ValueError:  # Python reads no integer of more than 4300 digits
            yield BadRow(number, "a number too long to read", "Write it as a string, or leave it out.")
            continue
        except RecursionError:
            yield BadRow(number, "JSON nested too deeply to read", "One JSON object of plain values per line.")
            continue
        except _DuplicateKey as err:
            yield BadRow(
                number, f"the key {err.args[0]!r} appears twice in one object", "Give each field once per line."
            )
            continue
        if not isinstance(value, dict):
            yield BadRow(
                number,
                f"expected a JSON object, got {type(value).__name__}",
                'Write each line like {"sentence": "...", "label": "..."}.',
            )
            continue
        yield Row(number, {str(k): v for k, v in value.items()})


def _delimited_rows(lines: Iterable[tuple[int, str]], label: str, kind: str) -> Iterator[Header | Row | BadRow]:
    # csv reads quoted fields across lines from the line ends; line_num counts physical lines.
    # GLUE's tsv files are not quoted: a stray quote must not swallow the following lines.
    # strict: in csv, a quote never closed (or text after a closing quote) is an error; left lax, the csv
    # module reads the rest of the file as one field, or drops the quotes, and the texts come out wrong.
    quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # process-wide: only ever raised
    reader = csv.reader(
        (raw for _, raw in cr_lines(lines)), delimiter="\t" if kind == "tsv" else ",", quoting=quoting, strict=True
    )
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1  # where the next record begins (a quoted field may span lines)
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise _csv_error(label, start, reader.line_num, err) from None
        line = start  # a record whose quoted text spans lines is named by the line it starts on
        if not record or all(not cell.strip() for cell in record):
            continue
        if header is None:
            header = [cell.strip() for cell in record]
            repeated = sorted({name for name in header if header.count(name) > 1})
            if repeated:
                raise DataError(
                    f"{label}, line {line}: the header names the column(s) {', '.join(map(repr, repeated))} "
                    "more than once",
                    hint="Give every column its own name: only one of them could be read.",
                )
            yield Header(line, header)
            continue
        if len(record) != len(header):
            yield BadRow(
                line,
                f"{len(record)} fields, but the header has {len(header)}",
                f"Each line needs exactly these {'tab' if kind == 'tsv' else 'comma'}-separated fields: "
                f"{', '.join(header)} (quote fields that contain commas in csv).",
            )
            continue
        quoted = next((cell for cell in record if kind == "tsv" and _csv_quoted(cell)), None)
        if quoted is not None:
            # GLUE's tsv files are read as written (a quote is a character), so a field a csv writer quoted
            # ("He said ""hi""" from pandas' to_csv(sep="\t")) would keep its quotes, doubled, in the text.
            yield BadRow(
                line,
                f"the field {_short(quoted)!r} is quoted as in a csv file; a .tsv is read as written, so the text "
                "would keep those quotes",
                "Save the table as .csv (quoted fields are read there), or write the .tsv without quoting.",
            )
            continue
        yield Row(line, dict(zip(header, record, strict=True)))


def _csv_quoted(cell: str) -> bool:
    """A field in csv quoting: wrapped in quotes, each quote inside doubled (at least one)."""
    inner = cell[1:-1]
    return len(cell) >= 4 and cell[0] == cell[-1] == '"' and '""' in inner and '"' not in inner.replace('""', "")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _csv_error(label: str, start: int, line: int, err: csv.Error) -> DataError:
    """A csv file the csv module cannot read, in words: which line, and how to write it."""
    quoting = 'Quote a whole field and double each quote inside it, e.g. "He said ""hi"" to me.",1'
    if str(err) == "unexpected end of data":
        return DataError(
            f"{label}, line {start}: a quote opened in this row is never closed (the rest of the file would be "
            "one field)",
            hint=quoting,
        )
    if str(err).startswith("field larger than field limit"):
        return DataError(
            f"{label}, line {start}: a field of more than {CSV_FIELD_LIMIT:,} characters (is a quote opened in this "
            "row never closed?)",
            hint=quoting,
        )
    if str(err).endswith("expected after '\"'"):
        began = f" (its row begins on line {start})" if start != line else ""
        return DataError(f"{label}, line {line}: text after the closing quote of a field{began}", hint=quoting)
    return DataError(f"{label}, line {line}: {err}")


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen
