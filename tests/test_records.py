"""Data files: rows keep their line numbers, and every problem names the file and line."""

from __future__ import annotations

import pytest

from bertprobe.errors import DataError
from bertprobe.records import read_rows


def test_csv_tsv_and_jsonl_read_the_same_rows(tmp_path):
    (tmp_path / "a.csv").write_text('sentence,label\n"Well, fine.",pos\n\nbad film,neg\n')
    (tmp_path / "a.tsv").write_text("sentence\tlabel\nWell, fine.\tpos\n\nbad film\tneg\n")
    (tmp_path / "a.jsonl").write_text(
        '{"sentence": "Well, fine.", "label": "pos"}\n\n{"sentence": "bad film", "label": "neg"}\n'
    )
    for name in ("a.csv", "a.tsv", "a.jsonl"):
        rows = read_rows(tmp_path / name, ["sentence"], ["label"])
        assert [r.values for r in rows] == [
            {"sentence": "Well, fine.", "label": "pos"},
            {"sentence": "bad film", "label": "neg"},
        ]
        assert rows[1].line == (3 if name == "a.jsonl" else 4)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("b.tsv", "sentence\tlabel\nok\t1\nno label here\n", "b.tsv, line 3: 1 fields"),
        ("b.jsonl", '{"sentence": "ok"}\n{"sentence": \n', "b.jsonl, line 2: invalid JSON"),
        ("b.csv", "sentence,label\nok,1\n,0\n", "b.csv, line 3: empty 'sentence'"),
        ("b.csv", "text,label\nok,1\n", "no 'sentence' column (columns: label, text)"),
        ("b.xlsx", "whatever", "unknown file type"),
    ],
)
def test_bad_files_name_the_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        read_rows(tmp_path / name, ["sentence"])
    assert info.value.hint


def test_a_quote_in_a_glue_tsv_does_not_swallow_lines(tmp_path):
    (tmp_path / "dev.tsv").write_text('sentence\tlabel\n" a quoted start\t1\nnext line\t0\n')
    assert [r.values["label"] for r in read_rows(tmp_path / "dev.tsv", ["sentence", "label"])] == ["1", "0"]
