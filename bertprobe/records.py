"""Kept so that ``from bertprobe.records import ...`` keeps working: the data-file reader lives in
:mod:`bertprobe.inputs`, the one reader of csv / tsv / jsonl files (``--input`` and every ``--data``)."""

from bertprobe.inputs import Row, file_format, lines, read_rows, read_text

__all__ = ["Row", "file_format", "lines", "read_rows", "read_text"]
