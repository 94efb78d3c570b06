"""Read the user's data files (csv, tsv, jsonl) into rows that remember their line numbers.

Every problem is a DataError naming the file and the line, so the user can go and fix it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bertprobe.errors import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line of the file where the row starts
    values: dict[str, Any]  # strings once read_rows has checked them; raw JSON values before


def lines(text: str) -> list[str]:
    """The lines of a data file, split on newlines only (``\n``, ``\r\n``).

    ``str.splitlines`` also splits on U+2028, U+0085, form feeds and other separators, which
    are ordinary characters inside a sentence or a JSON string.
    """
    parts = text.split("\n")
    if parts and parts[-1] == "":
        parts.pop()
    return [part[:-1] if part.endswith("\r") else part for part in parts]


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(
            f"{path}: unknown file type {path.suffix or '(none)'!r}",
            hint="Use a .csv, .tsv or .jsonl file (one JSON object per line).",
        ) from None


def read_text(path: str | Path, hint: str = "Check the path.") -> str:
    """The text of a user's file; a missing file or one that is not UTF-8 is a DataError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file", hint=hint)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text", hint="Save the file as UTF-8.") from None


def read_rows(path: str | Path, required: Sequence[str] = (), optional: Sequence[str] = ()) -> list[Row]:
    """Rows of ``path`` with at least the ``required`` columns filled; ``optional`` ones may be absent."""
    path = Path(path)
    text = read_text(path)
    kind = file_format(path)
    rows = _read_jsonl(path, text) if kind == "jsonl" else _read_delimited(path, text, kind)
    if not rows:
        raise DataError(f"{path}: no data rows", hint="The file needs a header line and at least one row.")
    columns = set().union(*(row.values.keys() for row in rows))
    for column in required:
        if column not in columns:
            raise DataError(
                f"{path}: no {column!r} column (columns: {', '.join(sorted(columns)) or 'none'})",
                hint=f"Add a {column!r} column, or name the column to use with the matching option.",
            )
    keep = set(required) | set(optional)
    cleaned = []
    for row in rows:
        values = {k: _scalar(path, row.line, k, v) for k, v in row.values.items() if k in keep and v is not None}
        for column in required:
            if not values.get(column, "").strip():
                raise DataError(f"{path}, line {row.line}: empty {column!r}", hint="Fill it in or delete the line.")
        cleaned.append(Row(row.line, {k: v.strip() for k, v in values.items()}))
    return cleaned


def _scalar(path: Path, line: int, column: str, value: Any) -> str:
    """A cell as text; a JSON list or object (or a non-finite number) where a text or label belongs is an error."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    kind = {list: "a list", dict: "an object"}.get(type(value), f"the number {value!r}")
    raise DataError(
        f"{path}, line {line}: {column!r} is {kind}, not a string",
        hint=f'Write one plain value per field, e.g. {{"{column}": "..."}}.',
    )


def _read_delimited(path: Path, text: str, kind: str) -> list[Row]:
    delimiter = "\t" if kind == "tsv" else ","
    # GLUE's tsv files are not quoted: a stray quote must not swallow the following lines.
    quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
    # newline="": records end at \n, \r\n or \r only, never at U+2028 or U+0085 inside a field.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    rows: list[Row] = []
    header: list[str] | None = None
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip() for cell in record]
                repeated = sorted({name for name in header if header.count(name) > 1})
                if repeated:
                    raise DataError(
                        f"{path}, line {line}: the header names the column(s) {', '.join(map(repr, repeated))} "
                        "more than once",
                        hint="Give every column its own name: only one of them could be read.",
                    )
                continue
            if len(record) != len(header):
                raise DataError(
                    f"{path}, line {line}: {len(record)} fields, but the header has {len(header)}",
                    hint=f"Each line needs exactly these {'tab' if kind == 'tsv' else 'comma'}-separated "
                    f"fields: {', '.join(header)} (quote fields that contain commas in csv).",
                )
            rows.append(Row(line, dict(zip(header, record, strict=True))))
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: {err}") from None
    return rows


def _read_jsonl(path: Path, text: str) -> list[Row]:
    rows = []
    for number, raw in enumerate(lines(text), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as err:
            raise DataError(
                f"{path}, line {number}: invalid JSON ({err.msg})", hint="One JSON object per line."
            ) from None
        except _DuplicateKey as err:
            raise DataError(
                f"{path}, line {number}: the key {err.args[0]!r} appears twice in one object",
                hint="Give each field once per line.",
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"{path}, line {number}: expected a JSON object, got {type(value).__name__}",
                hint='Write each line like {"sentence": "...", "label": "..."}.',
            )
        rows.append(Row(number, {str(k): ("" if v is None else v) for k, v in value.items()}))
    return rows


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen
