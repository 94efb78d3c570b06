"""Data files: rows keep their line numbers, and every problem names the file and line."""

from __future__ import annotations

import pytest

from bertprobe.errors import DataError
from bertprobe.inputs import read_rows


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


GOOD = '{"sentence": "The river [MASK] was muddy."}\n'
BAD_FILES = {
    # name: (content, the error after "<path>, line N: ")
    "json.jsonl": (GOOD + '{"sentence": \n', "line 2: invalid JSON (Expecting value)"),
    "key.jsonl": (GOOD + GOOD + '{"sentence": "A [MASK].", "sentence": "B"}\n', "line 3: the key 'sentence' appears"),
    "list.jsonl": (GOOD + '{"sentence": ["The", "[MASK]"]}\n', "line 2: 'sentence' is a list, not a string"),
    "array.jsonl": (GOOD + '["The [MASK] ran."]\n', "line 2: expected a JSON object, got list"),
    "bytes.jsonl": (GOOD.encode() * 2 + b'{"sentence": "caf\xe9 [MASK]"}\n', "line 3: not UTF-8 text"),
    "header.csv": (
        "sentence,sense,sentence\nThe [MASK] ran.,a,b\n",
        "line 1: the header names the column(s) 'sentence'",
    ),
    "fields.tsv": (
        "sentence\tsense\nThe [MASK] ran.\ta\nThe [MASK] sat.\ta\tb\n",
        "line 3: 3 fields, but the header has 2",
    ),
    # Left lax, the csv module reads the rest of the file into the open field (one text made of three
    # lines), or drops the quotes around "The [MASK]".
    "open-quote.csv": (
        'sentence\nThe [MASK] ran.\n"The [MASK] sat.\nThe dog [MASK].\nA [MASK] barked.\n',
        "line 3: a quote opened in this row is never closed",
    ),
    "after-quote.csv": ('sentence\nThe [MASK] ran.\n"The [MASK]" sat.\n', "line 3: text after the closing quote"),
    "number.jsonl": (GOOD + '{"sentence": "A [MASK].", "id": 1' + "0" * 5000 + "}\n", "line 2: a number too long"),
    "nested.jsonl": (GOOD + "[" * 100_000 + "]" * 100_000 + "\n", "line 2: JSON nested too deeply to read"),
    "surrogate.jsonl": (GOOD + '{"sentence": "The \\ud800 [MASK]."}\n', "line 2: 'sentence' holds \\ud800, half of"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_gives_the_same_error_line_through_both_readers(cli, mlm_path, tmp_path, name):
    """--input (streamed, fillmask) and --sentences (whole file, sense) read data files with one reader."""
    content, error = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    expected = f"{path}, {error}"
    for args in (("fillmask", "--input", path), ("sense", "river", "--sentences", path)):
        code, stdout, stderr = cli(*args, "-m", mlm_path)
        assert code == 1 and stdout == "" and "Traceback" not in stderr, (args, stderr)
        assert stderr.startswith("error: ") and expected in stderr, (args, stderr)


def test_input_lines_split_on_newlines_only_and_name_the_line_that_is_not_utf8(tmp_path):
    from bertprobe.inputs import TextSource

    path = tmp_path / "texts.txt"
    path.write_bytes("\ufeffone\r\nline\u2028two\x85end\n\nthree\rfour\n".encode())
    with TextSource(path=path) as source:
        assert [(t.line, t.text) for t in source] == [
            (1, "one"),
            (2, "line\u2028two\x85end"),
            (3, ""),
            (4, "three"),  # a lone \r (old Mac line ends) ends a line of a text file, as it always has
            (5, "four"),
        ]
    # The exact line, though the bad byte is in the first block a buffered reader decodes.
    path.write_bytes(b"fine\nfine\nnot \xff fine\nfine\n")
    with pytest.raises(DataError, match=r"texts\.txt, line 3: not UTF-8 text"), TextSource(path=path) as source:
        source.check()


def test_whole_file_readers_are_the_streaming_reader(tmp_path):
    """read_text gives the file's text exactly (BOM dropped); whole-file rows come from the same reader."""
    from bertprobe import inputs

    raw = '\ufeffa,b\r\n"x\r\ny",z\nlast,line without an end'
    path = tmp_path / "t.csv"
    path.write_bytes(raw.encode())
    assert inputs.read_text(path) == raw[1:]
    assert [r.values for r in inputs.read_rows(path, ["a"], ["b"])] == [
        {"a": "x\r\ny", "b": "z"},
        {"a": "last", "b": "line without an end"},
    ]


def test_a_csv_with_old_mac_line_ends_still_reads(tmp_path):
    from bertprobe.inputs import read_rows

    path = tmp_path / "mac.csv"
    path.write_bytes(b"sentence,label\rone,a\r\rtwo,b\r")
    assert [(r.line, r.values) for r in read_rows(path, ["sentence"], ["label"])] == [
        (2, {"sentence": "one", "label": "a"}),
        (4, {"sentence": "two", "label": "b"}),
    ]


def _close(a, b):
    """Two JSON documents equal up to float noise (a text computed alone or padded with others)."""
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-4, abs=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_a_text_refused_while_computing_is_named_by_its_line_and_can_be_skipped(cli, mlm_path, tmp_path):
    """Written at the mask of line 2, the target 'cat' reads 'cats': only the computation finds that out."""
    import json

    path = tmp_path / "texts.txt"
    path.write_text("The [MASK] sat on the mat.\nThe [MASK]s are here.\nA [MASK] barked.\n")
    out = tmp_path / "out.jsonl"
    args = ("fillmask", "--input", path, "--targets", "cat,dog", "-m", mlm_path, "--json", "--out", out)
    code, stdout, stderr = cli(*args)
    assert code == 1 and stdout == "" and not out.exists(), stderr
    assert stderr.startswith(f"error: {path}, line 2: the target 'cat' merges with the text"), stderr
    assert "--on-bad skip" in stderr

    code, stdout, stderr = cli(*args, "--on-bad", "skip")
    assert code == 0, stderr
    assert stderr.count("line 2: the target 'cat' merges") == 1, stderr
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(d["index"], d["line"]) for d in kept] == [(1, 1), (3, 3)]

    good = tmp_path / "good.txt"  # the same file without line 2: the good lines' results do not change
    good.write_text("The [MASK] sat on the mat.\nA [MASK] barked.\n")
    code, _, stderr = cli("fillmask", "--input", good, "--targets", "cat,dog", "-m", mlm_path, "--json", "--out", out)
    assert code == 0, stderr
    alone = [json.loads(line) for line in out.read_text().splitlines()]
    for skipped, clean in zip(kept, alone, strict=True):
        for document in (skipped, clean):
            del document["index"], document["line"]
        assert _close(skipped, clean)


def test_a_record_whose_quoted_text_spans_lines_is_named_by_the_line_it_starts_on(tmp_path):
    # The JSON Lines "line" and every error point the user at the record's first line, as a quote error does:
    # opened at its last line, the file shows only the tail of the text there.
    path = tmp_path / "texts.csv"
    path.write_text('text,id\n"The cat\nsat on\nthe mat.",1\n\nA dog ran.,2\n')
    rows = read_rows(path, ["text"], ["id"])
    assert [(r.line, r.values["id"]) for r in rows] == [(2, "1"), (6, "2")]
    bad = tmp_path / "bad.csv"
    bad.write_text('text,id\n"The cat\nsat.",1,extra\n')
    with pytest.raises(DataError, match=r"bad\.csv, line 2: 3 fields"):
        read_rows(bad, ["text"], ["id"])


def test_summary_cells_read_100_percent_only_when_every_one_is():
    # 249 of 250 originals ranked first is 99.6%: "100%" in the many-texts table would say none was missed.
    from types import SimpleNamespace

    from bertprobe.fillmask import RecoveryRow
    from bertprobe.render.jsonl import summarise_cells

    class CorruptionResult(SimpleNamespace):
        pass

    row = RecoveryRow(action="all", count=250, top1=249 / 250, top5=1.0, mean_original_score=0.9)
    assert summarise_cells(CorruptionResult(summary=[row])) == ["250 predicted, original ranked first 99.6%"]
    row.top1 = 1.0
    assert summarise_cells(CorruptionResult(summary=[row])) == ["250 predicted, original ranked first 100%"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_a_text_longer_than_the_csv_field_limit_is_a_text_not_an_unreadable_file(tmp_path, suffix):
    """A 200,000-character text is one row like any other (too long for the model, a bad line --on-bad skip can
    leave out, as in .txt and .jsonl), not a csv error that stops the whole file and names no fix."""
    from bertprobe.inputs import TextSource

    huge = "word " * 40_000
    path = tmp_path / f"t{suffix}"
    path.write_text(f"text\nThe cat sat on the [MASK].\n{huge}[MASK]\nA [MASK] barked.\n")
    with TextSource(path=path) as source:
        assert [(t.index, t.line, len(t.text)) for t in source] == [(1, 2, 26), (2, 3, len(huge) + 6), (3, 4, 16)]
