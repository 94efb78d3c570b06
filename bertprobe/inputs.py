"""Many texts in one run: read them from arguments, a file or stdin, check them, hand them out in chunks.

A source is read twice, both times as a stream: first to check every text (so a bad line
stops the run before any model work, and nothing is half-written), then in chunks for the
computation. Memory holds one chunk of texts and the list of bad lines, never the corpus.
Standard input is copied to a temporary file first so that it too can be read twice.

Formats (by the file's suffix): ``.txt`` (or no suffix, or ``-`` for stdin) holds one text
per line; ``.csv`` / ``.tsv`` have a header line and take the text from ``--text-column``;
``.jsonl`` holds one JSON object per line, text under ``--text-column``. The default column
is ``text``, else ``sentence``, else the only column there is.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe.errors import DataError, InputError

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
TEXT_SUFFIXES = {".txt", ".text", ""}
DEFAULT_COLUMNS = ("text", "sentence")
ON_BAD = ("stop", "skip")
CHUNK_TEXTS = 256  # texts read, computed and written together (see score.MEMORY_NOTE)
LISTED_BAD = 10  # bad lines named in one message


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

    def where(self, label: str) -> str:
        return f"{label}, line {self.line}" if self.line is not None else f"text {self.index}"


@dataclass
class Checked:
    """What the checking pass found: how many texts there are, which ones are bad."""

    count: int = 0
    bad: list[BadLine] = field(default_factory=list)
    work: int = 0  # units of work over the good texts (for a progress bar), as the check counted them

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

    def resolve(self, label: str, header: Sequence[str]) -> tuple[str, str | None, str | None]:
        def first(names: tuple[str, ...]) -> str | None:
            return next((n for n in names if n in header), None)

        listed = ", ".join(header) or "none"
        text = first(self.text)
        if text is None and not self.text_named and not self.pair and len(header) == 1:
            text = header[0]
        if text is None:
            raise DataError(
                f"{label}: no {' or '.join(map(repr, self.text))} column (columns: {listed})",
                hint=f"Name the column that holds the text with {self.option}."
                if not self.pair
                else "A minimal-pairs file needs good and bad columns (BLiMP: sentence_good, sentence_bad).",
            )
        pair = first(self.pair) if self.pair else None
        if self.pair and pair is None:
            raise DataError(
                f"{label}: no {' or '.join(map(repr, self.pair))} column (columns: {listed})",
                hint="A minimal-pairs file needs good and bad columns (BLiMP: sentence_good, sentence_bad).",
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
        self.path = Path(path) if path is not None and str(path) != "-" else None
        self.stdin = path is not None and str(path) == "-"
        self.label = "stdin" if self.stdin else (str(self.path) if self.path is not None else "arguments")
        self._spool: Path | None = None
        self.found: tuple[str, str | None, str | None] | None = None  # the columns read (text, pair, group)
        if self.path is not None:
            if not self.path.is_file():
                raise DataError(f"{self.path}: no such file", hint="Check the path given to --input.")
            suffix = self.path.suffix.lower()
            if suffix not in TABLE_FORMATS and suffix not in TEXT_SUFFIXES:
                raise DataError(
                    f"{self.path}: unknown file type {suffix!r}",
                    hint="Use .txt (one text per line), .csv, .tsv or .jsonl (with --text-column).",
                )
        if self.from_file and self.kind == "txt" and (self.columns.text_named or self.columns.pair):
            raise InputError(
                f"{self.columns.option} needs a .csv, .tsv or .jsonl file; {self.label} is plain text",
                hint="Leave it out: each line of a .txt file is one text."
                if not self.columns.pair
                else "Give the pairs as .csv, .tsv or .jsonl with good and bad columns.",
            )

    @property
    def kind(self) -> str:
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
        path = self._file()
        with _utf8_lines(path, self.label) as lines:
            if self.kind == "txt":
                yield from _txt_items(lines)
            elif self.kind == "jsonl":
                yield from _jsonl_items(lines, self.label, self.columns, self._found)
            else:
                yield from _table_items(lines, self.label, self.kind, self.columns, self._found)

    def _found(self, names: tuple[str, str | None, str | None]) -> None:
        self.found = names

    def check(self, problem: Problem | None = None, on_bad: str = "stop") -> Checked:
        """Read every text once: count them and find the bad ones (empty, or whatever ``problem`` says).

        ``on_bad="stop"`` raises a DataError naming the first bad line (and how many others
        there are) before any model work; ``"skip"`` returns them so they can be listed.
        """
        if on_bad not in ON_BAD:
            raise InputError(f"unknown --on-bad {on_bad!r}", hint=f"Choose one of {', '.join(ON_BAD)}.")
        checked = Checked()
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
            raise DataError(
                f"{first.where(self.label)}: {first.reason}{others}; nothing was computed",
                hint="Fix or delete those lines, or pass --on-bad skip to leave them out and list them.",
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
                yield chunk
                chunk = []
        if chunk:
            yield chunk


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


def length_problem(lm: object, pair: bool = False) -> Problem:
    """A text longer than the model reads is bad; the work is its number of word pieces."""
    tokenizer = lm.tokenizer  # type: ignore[attr-defined]
    limit = tokenizer.model_max_length

    def problem(item: InputText) -> tuple[str | None, int]:
        encoding = tokenizer.encode(item.text, item.pair if pair else None)
        if len(encoding) > limit:
            return f"{len(encoding)} word pieces; {lm.name} reads at most {limit}", len(encoding)  # type: ignore[attr-defined]
        return None, len(encoding)

    return problem


def mask_problem(lm: object, wanted: bool | None, word: str | None = None) -> Problem:
    """Also bad: a text without a mask where one is needed (``wanted``), or with one where none may be
    (``wanted=False``), or without ``word`` when one is to be masked."""
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
        if word is not None and word.strip():
            from bertprobe.tokens import find_word

            if not find_word(encoding, word):
                return f"{word.strip()!r} does not occur in the text as a whole word", len(encoding)
        return None, len(encoding)

    return problem


# ---------------------------------------------------------------------------------------------
# readers: streams of lines with their numbers


@contextlib.contextmanager
def _utf8_lines(path: Path, label: str) -> Iterator[Iterator[tuple[int, str]]]:
    with path.open("r", encoding="utf-8-sig", newline="") as file:

        def lines() -> Iterator[tuple[int, str]]:
            number = 0
            try:
                for number, raw in enumerate(file, start=1):
                    yield number, raw.rstrip("\r\n")
            except UnicodeDecodeError:
                raise DataError(f"{label}, line {number + 1}: not UTF-8 text", hint="Save the file as UTF-8.") from None

        yield lines()


def _txt_items(lines: Iterator[tuple[int, str]]) -> Iterator[InputText]:
    for number, raw in lines:
        yield InputText(number, number, raw.strip())


def _jsonl_items(
    lines: Iterator[tuple[int, str]], label: str, columns: Columns, found: Callable[[Any], None]
) -> Iterator[InputText | BadLine]:
    names: tuple[str, str | None, str | None] | None = None
    index = 0
    for number, raw in lines:
        if not raw.strip():
            continue
        index += 1
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            yield BadLine(index, number, f"invalid JSON ({err.msg})")
            continue
        if not isinstance(value, dict):
            yield BadLine(index, number, f"expected a JSON object, got {type(value).__name__}")
            continue
        if names is None:
            names = columns.resolve(label, list(value))
            found(names)
        text_name, pair_name, group_name = names
        fields = [value.get(text_name)] + ([value.get(pair_name)] if pair_name else [])
        missing = [name for name, v in zip((text_name, pair_name), fields, strict=False) if not isinstance(v, str)]
        if missing:
            yield BadLine(index, number, f"no text under {missing[0]!r}")
            continue
        group = value.get(group_name) if group_name else None
        yield InputText(
            index,
            number,
            fields[0].strip(),
            fields[1].strip() if pair_name else None,
            None if group is None else str(group),
        )


def _table_items(
    lines: Iterator[tuple[int, str]], label: str, kind: str, columns: Columns, found: Callable[[Any], None]
) -> Iterator[InputText | BadLine]:
    # csv reads quoted fields across lines from the line ends; line_num counts physical lines.
    physical = (raw + "\n" for _, raw in lines)
    quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL  # GLUE-style tsv is not quoted
    reader = csv.reader(physical, delimiter="\t" if kind == "tsv" else ",", quoting=quoting)
    header: list[str] | None = None
    where: list[int | None] = []
    index = 0
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                names = columns.resolve(label, header)
                found(names)
                where = [header.index(n) if n is not None else None for n in names]
                continue
            index += 1
            if len(record) != len(header):
                yield BadLine(index, line, f"{len(record)} fields, but the header has {len(header)}")
                continue
            text, pair, group = (record[i].strip() if i is not None else None for i in where)
            yield InputText(index, line, text or "", pair, group)
    except csv.Error as err:
        raise DataError(f"{label}, line {reader.line_num}: {err}") from None
