"""Many texts in one run: files, stdin, bad lines, JSON Lines equal to one-text runs, streaming in chunks."""

from __future__ import annotations

import json

import pytest
from documents import close

TEXTS = ["The cat sat on the [MASK].", "I saw an [MASK] at the zoo.", "The [MASK] chased the [MASK]."]


def _lines(stdout):
    return [json.loads(line) for line in stdout.splitlines()]


def _without_position(doc):
    return {k: v for k, v in doc.items() if k not in ("index", "line")}


def test_fillmask_input_line_n_equals_fillmask_on_text_n(cli, mlm_path, tmp_path):
    corpus = tmp_path / "masked.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--json", "-m", mlm_path)
    assert code == 0, stderr
    docs = _lines(stdout)
    assert [(d["index"], d["line"]) for d in docs] == [(1, 1), (2, 2), (3, 3)]
    for doc, text in zip(docs, TEXTS, strict=True):  # batched together; each as its one-text run
        code, alone, _ = cli("fillmask", text, "--json", "-m", mlm_path)
        assert code == 0
        assert close(_without_position(doc), json.loads(alone))


def test_fillmask_input_pads_the_texts_into_one_forward_pass(cli, mlm_path, tmp_path, monkeypatch):
    from bertprobe import mlm

    calls = []
    real = mlm.masked_logits

    def counted(lm, sequences, positions, *args, **kwargs):
        calls.append(len(sequences))
        return real(lm, sequences, positions, *args, **kwargs)

    monkeypatch.setattr("bertprobe.fillmask.masked_logits", counted)
    corpus = tmp_path / "masked.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    code, _, stderr = cli("fillmask", "--input", corpus, "--json", "-m", mlm_path)
    assert code == 0, stderr
    assert calls == [3]


def test_close_is_strict_outside_rounding():
    assert close({"pll": -28.632463, "t": ["a"]}, {"pll": -28.632462, "t": ["a"]})
    assert not close({"pll": -28.6}, {"pll": -28.61})
    assert not close({"pll": 1.0}, {"pll": 1.0, "x": 1})
    assert not close({"t": ["a", "b"]}, {"t": ["b", "a"]})
    assert not close({"n": 1}, {"n": 1.0})


def test_fillmask_corrupting_mode_over_a_file_is_seeded_per_text(cli, mlm_path, tmp_path):
    corpus = tmp_path / "plain.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog.\nA bird sang in the old tree.\n")
    args = ("--mode", "bert", "--samples", 3, "--seed", 5, "--json", "-m", mlm_path)
    code, stdout, stderr = cli("fillmask", "--input", corpus, *args)
    assert code == 0, stderr
    code, alone, _ = cli("fillmask", "A bird sang in the old tree.", *args)
    assert _without_position(_lines(stdout)[1]) == json.loads(alone)


@pytest.mark.parametrize(
    ("name", "content", "column"),
    [
        ("t.csv", 'id,text\n1,"The cat sat on the [MASK]."\n2,"I saw an [MASK], at the zoo."\n', None),
        ("t.tsv", "sentence\tid\nThe cat sat on the [MASK].\t1\nI saw an [MASK], at the zoo.\t2\n", None),
        ("t.jsonl", '{"s": "The cat sat on the [MASK]."}\n\n{"s": "I saw an [MASK], at the zoo."}\n', "s"),
    ],
)
def test_tables_read_the_text_column(cli, mlm_path, tmp_path, name, content, column):
    path = tmp_path / name
    path.write_text(content)
    extra = ("--text-column", column) if column else ()
    code, stdout, stderr = cli("fillmask", "--input", path, *extra, "--json", "-m", mlm_path)
    assert code == 0, stderr
    docs = _lines(stdout)
    assert [d["text"] for d in docs] == ["The cat sat on the [MASK].", "I saw an [MASK], at the zoo."]
    assert [d["line"] for d in docs] == ([2, 3] if name != "t.jsonl" else [1, 3])


def test_stdin_is_a_text_per_line(mlm_path):
    from typer.testing import CliRunner

    from bertprobe.cli import app

    result = CliRunner().invoke(
        app, ["score", "--input", "-", "--json", "-m", str(mlm_path)], input="A dog barked.\nThe cat sat.\n"
    )
    assert result.exit_code == 0, result.stderr
    assert [d["text"] for d in _lines(result.stdout)] == ["A dog barked.", "The cat sat."]


def test_stdin_can_be_a_table_named_by_its_suffix(mlm_path, tiny_pretraining_path):
    from typer.testing import CliRunner

    from bertprobe.cli import app

    runner = CliRunner()
    rows = '{"id": 1, "body": "A [MASK] barked."}\n{"id": 2, "body": "The cat sat on the [MASK]."}\n'
    model = ["-m", str(mlm_path)]
    args = ["fillmask", "--input", "-.jsonl", "--text-column", "body", "--json", *model]
    piped = runner.invoke(app, args, input=rows)
    assert piped.exit_code == 0, piped.stderr
    alone = runner.invoke(app, ["fillmask", "The cat sat on the [MASK].", "--json", *model])
    docs = _lines(piped.stdout)
    assert [d["text"] for d in docs] == ["A [MASK] barked.", "The cat sat on the [MASK]."]
    assert [d["line"] for d in docs] == [1, 2]
    first, single = (d["masks"][0]["predictions"][0] for d in (docs[1], json.loads(alone.stdout)))
    assert first["token"] == single["token"] and first["score"] == pytest.approx(single["score"], abs=1e-6)

    csv_rows = "sentence_a,sentence_b\nI was hungry.,So I ate.\n"
    pairs = runner.invoke(app, ["nsp", "--input", "-.csv", "--json", "-m", str(tiny_pretraining_path)], input=csv_rows)
    assert pairs.exit_code == 0, pairs.stderr
    (line,) = _lines(pairs.stdout)
    assert line["line"] == 2 and [(p["first"], p["second"]) for p in line["pairs"]] == [("I was hungry.", "So I ate.")]

    plain = runner.invoke(app, ["nsp", "--input", "-", "-m", str(tiny_pretraining_path)], input=csv_rows)
    assert plain.exit_code == 1 and "stdin is plain text" in plain.stderr
    assert "--input -.jsonl" in plain.stderr and "sentence_a and sentence_b" in plain.stderr
    column = runner.invoke(app, ["fillmask", "--input", "-", "--text-column", "body", *model], input=rows)
    assert column.exit_code == 1 and "--input -.jsonl" in column.stderr


def test_a_pairs_file_without_its_columns_names_the_columns_it_needs(cli, tiny_pretraining_path, mlm_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("first,second\nI was hungry.,So I ate.\n")
    code, _, stderr = cli("nsp", "--input", pairs, "-m", tiny_pretraining_path)
    assert code == 1 and "no 'sentence_a' column (columns: first, second)" in stderr
    assert "sentence_a and sentence_b" in stderr and "good" not in stderr
    code, _, stderr = cli("score", "--pairs", pairs, "-m", mlm_path)
    assert code == 1 and "sentence_good (or good) and sentence_bad (or bad)" in stderr
    code, _, stderr = cli("score", "--pairs", tmp_path / "missing.csv", "-m", mlm_path)
    assert code == 1 and "Check the path given to --pairs." in stderr

    from typer.testing import CliRunner

    from bertprobe.cli import app

    rows = "good\tbad\nA dog barks.\tA dog bark.\n"
    piped = CliRunner().invoke(app, ["score", "--pairs", "-.tsv", "--json", "-m", str(mlm_path)], input=rows)
    assert piped.exit_code == 0, piped.stderr
    assert json.loads(piped.stdout)["n"] == 1


def test_bad_lines_stop_before_any_work_and_are_named(cli, mlm_path, tmp_path):
    corpus = tmp_path / "bad.txt"
    corpus.write_text("The cat sat on the [MASK].\n\nNo mask here.\nA [MASK] barked.\n")
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--out", out, "-m", mlm_path)
    assert code == 1 and stdout == ""
    assert "line 2: empty text" in stderr and "3: no [MASK]" in stderr and "nothing was computed" in stderr
    assert "--on-bad skip" in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_too_long_lines_are_bad_lines(cli, tiny_pretraining_path, tmp_path):
    corpus = tmp_path / "long.txt"
    corpus.write_text("A dog barked.\n" + " ".join(["word"] * 80) + "\n")
    code, _, stderr = cli("score", "--input", corpus, "-m", tiny_pretraining_path)
    assert code == 1 and "line 2" in stderr and "reads at most 64" in stderr


def test_skip_leaves_bad_lines_out_and_lists_them(cli, mlm_path, tmp_path):
    corpus = tmp_path / "bad.txt"
    corpus.write_text("The cat sat on the [MASK].\n\nNo mask here.\nA [MASK] barked.\n")
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--on-bad", "skip", "--json", "-m", mlm_path)
    assert code == 0, stderr
    assert [(d["index"], d["line"]) for d in _lines(stdout)] == [(1, 1), (4, 4)]
    assert "skipped 2 bad line 2: empty text, 3: no [MASK]" in stderr.replace("\n", " ")


def test_a_line_with_nothing_to_mask_is_a_bad_line_in_the_modes_that_mask_the_text(cli, mlm_path, tmp_path):
    # A zero-width space or control characters tokenise to [CLS] [SEP] alone: --mode each has nothing to mask.
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The cat sat on the mat.\n\u200b\n\x01\x02\n", encoding="utf-8")
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--mode", "each", "-m", mlm_path)
    message = stderr.replace("\n", " ")
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert "line 2: the text has no tokens to mask" in message and "3: the text has no tokens" in message
    skip = ("--on-bad", "skip", "--json")
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--mode", "each", *skip, "-m", mlm_path)
    assert code == 0, stderr
    assert [(d["index"], d["line"]) for d in _lines(stdout)] == [(1, 1)]
    # next to a [MASK], such a line is a text fillmask reads, as before
    corpus.write_text("\u200b [MASK]\n", encoding="utf-8")
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--json", "-m", mlm_path)
    assert code == 0 and _lines(stdout)[0]["tokens"] == ["[CLS]", "[MASK]", "[SEP]"]


def test_a_corpus_streams_in_chunks_with_the_same_result(cli, mlm_path, tmp_path, monkeypatch):
    from bertprobe import inputs

    texts = [f"Sentence number {n} is about a {animal}." for n, animal in enumerate(["cat", "dog", "fox"] * 4)]
    corpus = tmp_path / "many.txt"
    corpus.write_text("\n".join(texts) + "\n")
    code, whole, _ = cli("score", "--input", corpus, "--json", "-m", mlm_path)
    assert code == 0
    seen = []
    original_chunks = inputs.TextSource.chunks

    def small_chunks(self, checked, size=None):
        for chunk in original_chunks(self, checked, 5):
            seen.append(len(chunk))
            yield chunk

    monkeypatch.setattr(inputs.TextSource, "chunks", small_chunks)
    code, chunked, _ = cli("score", "--input", corpus, "--json", "-m", mlm_path)
    assert code == 0
    assert seen == [5, 5, 2]
    for a, b in zip(_lines(whole), _lines(chunked), strict=True):
        assert a["index"] == b["index"] and a["text"] == b["text"]
        assert a["pll"] == pytest.approx(b["pll"], abs=1e-4)


def test_input_usage_errors(cli, mlm_path, tmp_path):
    code, _, stderr = cli("score", "A dog.", "--input", tmp_path / "x.txt", "-m", mlm_path)
    assert code == 1 and "not both" in stderr
    code, _, stderr = cli("score", "--input", tmp_path / "missing.txt", "-m", mlm_path)
    assert code == 1 and "no such file" in stderr
    (tmp_path / "t.json").write_text("[]")
    code, _, stderr = cli("score", "--input", tmp_path / "t.json", "-m", mlm_path)
    assert code == 1 and "unknown file type" in stderr
    (tmp_path / "t.csv").write_text("a,b\nx,y\n")
    code, _, stderr = cli("score", "--input", tmp_path / "t.csv", "-m", mlm_path)
    assert code == 1 and "no 'text' or 'sentence' column (columns: a, b)" in stderr
    code, _, stderr = cli("score", "A dog.", "--out", tmp_path / "no" / "such.jsonl", "-m", mlm_path)
    assert code == 1 and "does not exist" in stderr


def test_attention_input_pads_the_texts_into_one_forward_pass(tiny_pretraining_path, monkeypatch):
    from bertprobe import models
    from bertprobe.attention import attention, attention_many

    lm = models.load(str(tiny_pretraining_path), "encoder", None, "cpu", "auto", False)
    texts = ["The cat sat on the mat.", "A dog barked.", "Hi there, how are you today?"]
    alone = [attention(lm, text).to_dict() for text in texts]
    calls = []
    backend = type(lm.backend)  # a view built on each access: count on its class
    real = backend.forward
    monkeypatch.setattr(backend, "forward", lambda self, **kw: calls.append(kw["input_ids"].shape) or real(self, **kw))
    together = attention_many(lm, texts)
    assert len(calls) == 1 and calls[0][0] == 3
    assert all(close(a.to_dict(), b) for a, b in zip(together, alone, strict=True))


def test_attention_attribute_and_nsp_take_input_files(cli, tiny_pretraining_path, tmp_path):
    model = ("-m", tiny_pretraining_path)
    plain = tmp_path / "plain.txt"
    texts = ["The cat sat on the mat.", "A dog barked at the moon, loudly and for a long time.", "Hi."]
    plain.write_text("\n".join(texts) + "\n")
    code, stdout, stderr = cli("attention", "--input", plain, "--json", "--layer", 2, *model)
    assert code == 0, stderr
    for line, text in zip(_lines(stdout), texts, strict=True):  # padded together; each as its one-text run
        code, alone, _ = cli("attention", text, "--json", "--layer", 2, *model)
        assert close(_without_position(line), json.loads(alone))

    masked = tmp_path / "masked.txt"
    masked.write_text("The cat sat on the [MASK].\nA [MASK] barked at the moon.\n")
    fast = ("--steps", 4, "--no-faithfulness", "--json", *model)
    code, stdout, stderr = cli("attribute", "--input", masked, *fast)
    assert code == 0, stderr
    code, alone, _ = cli("attribute", "A [MASK] barked at the moon.", *fast)
    line = _without_position(_lines(stdout)[1])
    single = json.loads(alone)
    assert line.keys() == single.keys() and line["target"] == single["target"]
    got, want = ([t["attribution"] for t in d["tokens"]] for d in (line, single))
    assert got == pytest.approx(want, abs=1e-5)

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence_a,sentence_b\nI was hungry.,So I ate.\nThe sky is blue.,Cats purr.\n")
    code, stdout, stderr = cli("nsp", "--input", pairs, "--json", *model)
    assert code == 0, stderr
    code, alone, _ = cli("nsp", "The sky is blue.", "Cats purr.", "--json", *model)
    line, single = _without_position(_lines(stdout)[1]), json.loads(alone)
    assert line["pairs"][0]["is_next_probability"] == pytest.approx(single["pairs"][0]["is_next_probability"], abs=1e-5)
    line["pairs"][0].pop("is_next_probability"), single["pairs"][0].pop("is_next_probability")
    # Where the pair came from: the file and its line, where the one-pair run has its arguments.
    assert (line.pop("source"), line["pairs"][0].pop("line")) == (str(pairs), 3)
    assert (single.pop("source"), single["pairs"][0].pop("line")) == ("arguments", None)
    assert line == single
    code, stdout, _ = cli("nsp", "--input", pairs, *model)
    assert code == 0 and "P(B follows A)" in stdout and "Cats purr." in stdout


def test_json_lines_sink_writes_all_lines_or_keeps_the_old_file(tmp_path):
    from dataclasses import dataclass

    from bertprobe.render.jsonl import JsonLines, line_document

    @dataclass
    class Result:
        text: str
        value: float

    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), JsonLines(target) as sink:
        sink.write(line_document(Result("a", 1.0), 1, 1, 0))
        raise RuntimeError("interrupted half-way")
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]
    with JsonLines(target) as sink:
        for n, text in enumerate(["a", "b"], start=1):
            sink.write(line_document(Result(text, float(n)), n, None, 7))
    docs = _lines(target.read_text())
    assert [(d["index"], d["line"], d["text"], d["value"], d["seed"]) for d in docs] == [
        (1, None, "a", 1.0, 7),
        (2, None, "b", 2.0, 7),
    ]


@pytest.mark.parametrize("failing", ["fsync", "flush"])
def test_json_lines_sink_keeps_the_old_file_when_its_last_flush_to_disk_fails(tmp_path, monkeypatch, failing):
    """A disk full at the last flush, or an fsync that fails (a disk error, reported once, as Linux does), is an
    error, and --out keeps the file it had: lines that did not reach the disk must not replace it."""
    import os

    from bertprobe.render.jsonl import JsonLines

    target = tmp_path / "out.jsonl"
    target.write_text("old\n")
    failures = []

    def once(real, error):
        def call(*args):
            if not failures:
                failures.append(args)
                raise error
            return real(*args)

        return call

    if failing == "fsync":
        monkeypatch.setattr(os, "fsync", once(os.fsync, OSError(5, "Input/output error")))
    with pytest.raises(OSError, match=r"Input/output error|No space left"), JsonLines(target) as sink:
        sink.write({"index": 1, "line": 1, "text": "a"})
        if failing == "flush":
            monkeypatch.setattr(sink._file, "flush", once(sink._file.flush, OSError(28, "No space left on device")))
    assert failures and target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]


def test_one_text_view_options_are_refused_with_many_texts_and_context_is_kept(cli, mlm_path, tmp_path):
    corpus = tmp_path / "masked.txt"
    corpus.write_text("The cat sat on the [MASK].\n")
    code, _, stderr = cli("fillmask", "--input", corpus, "--explain", "-m", mlm_path)
    assert code == 1 and "--explain" in stderr
    code, stdout, stderr = cli("fillmask", "--input", corpus, "--context", "left", "--json", "-m", mlm_path)
    assert code == 0, stderr
    code, alone, _ = cli("fillmask", "The cat sat on the [MASK].", "--context", "left", "--json", "-m", mlm_path)
    assert _without_position(_lines(stdout)[0]) == json.loads(alone)


def test_out_naming_the_input_file_is_refused_and_the_texts_are_kept(cli, mlm_path, tmp_path):
    corpus = tmp_path / "texts.txt"
    corpus.write_text("A dog barked.\nThe cat sat.\n")
    link = tmp_path / "link.txt"
    link.symlink_to(corpus)
    for out in (corpus, link):
        code, _, stderr = cli("score", "--input", corpus, "--out", out, "-m", mlm_path)
        assert code == 1 and "is the input file" in stderr and "Traceback" not in stderr
        assert corpus.read_text() == "A dog barked.\nThe cat sat.\n"
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("good\tbad\nThe dog barks.\tThe dog bark.\n")
    code, _, stderr = cli("score", "--pairs", pairs, "--out", pairs, "-m", mlm_path)
    assert code == 1 and "is the input file" in stderr and "Traceback" not in stderr
    assert pairs.read_text() == "good\tbad\nThe dog barks.\tThe dog bark.\n"


def test_json_lines_escape_line_separators_as_a_one_text_run_does(cli, mlm_path, tmp_path):
    # Raw U+2028 / U+0085 in a JSON line split it for readers that split on them (str.splitlines).
    text = "A dog\u2028barked\u0085 at \u202ethe moon."
    corpus = tmp_path / "odd.jsonl"
    corpus.write_text(json.dumps({"text": text}) + "\n" + json.dumps({"text": "The cat sat."}) + "\n")
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = cli("score", "--input", corpus, "--json", "-m", mlm_path)
    assert code == 0, stderr
    code, _, stderr = cli("score", "--input", corpus, "--out", out, "-m", mlm_path)
    assert code == 0, stderr
    code, alone, _ = cli("score", text, "--json", "-m", mlm_path)
    for written in (stdout, out.read_text(encoding="utf-8")):
        docs = _lines(written)
        assert [d["text"] for d in docs] == [text, "The cat sat."]
        assert close(_without_position(docs[0]), json.loads(alone))


def test_minimal_pair_groups_are_read_as_people_write_them(cli, mlm_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "good,bad,phenomenon\nA dog barks.,A dog bark., agreement\nThe dogs bark.,The dogs barks.,agreement \n"
        "Cats purr.,Cats purrs.,\n"
    )
    code, stdout, stderr = cli("score", "--pairs", pairs, "--json", "-m", mlm_path)
    assert code == 0, stderr
    by_group = json.loads(stdout)["by_group"]
    # no " agreement"; the empty cell is no group, apart from the total ("all")
    assert sorted(by_group) == ["(no group)", "agreement"] and by_group["agreement"]["n"] == 2
    listed = tmp_path / "pairs.jsonl"
    listed.write_text('{"good": "A dog barks.", "bad": "A dog bark.", "phenomenon": ["agreement"]}\n')
    code, _, stderr = cli("score", "--pairs", listed, "-m", mlm_path)
    assert code == 1 and "line 1: 'phenomenon' is a list, not a string" in stderr


def test_a_file_changed_between_the_check_and_the_computation_is_refused(tmp_path):
    import os

    from bertprobe.errors import DataError
    from bertprobe.inputs import TextSource

    path = tmp_path / "texts.txt"
    path.write_text("A dog barked.\nThe cat sat.\n")
    with TextSource(path=path) as source:
        checked = source.check()
        with path.open("a") as file:  # another program still writing it: this line was never checked
            file.write("x" * 10_000 + "\n")
        os.utime(path, ns=(0, 0))
        with pytest.raises(DataError, match=r"texts\.txt changed while it was being read"):
            list(source.chunks(checked))


def test_a_jsonl_first_object_without_the_column_names_its_line(cli, mlm_path, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"id": 1, "body": "A cat."}\n{"text": "A dog barked."}\n')
    code, _, stderr = cli("score", "--input", path, "-m", mlm_path)
    assert code == 1 and f"{path}, line 1: no 'text' or 'sentence' column (columns: id, body)" in stderr


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("glue.csv", "sentence\tlabel\nThe cat sat on the mat.\t1\nA dog barked.\t0\n"),  # a .tsv saved as .csv
        ("comma.tsv", "sentence,label\nThe cat sat on the mat.,1\n"),
        ("excel.csv", "sentence;label\nThe cat sat on the mat.;1\n"),  # a spreadsheet's semicolon csv
    ],
)
def test_a_table_with_another_separator_is_refused_not_read_as_one_column(tmp_path, name, content):
    from bertprobe.errors import DataError
    from bertprobe.inputs import TextSource

    path = tmp_path / name
    path.write_text(content)
    # Read as its only column, every text would carry its label along ("The cat sat on the mat.\t1").
    with pytest.raises(DataError, match="looks like several columns joined") as info, TextSource(path=path) as source:
        list(source)
    assert "--text-column" in info.value.hint
    path.write_text("review\nThe cat sat on the mat.\n")  # one column of another name is still the text
    with TextSource(path=path) as source:
        assert [t.text for t in source] == ["The cat sat on the mat."]


def test_out_in_a_folder_that_cannot_be_written_is_one_line_before_any_model_work(cli, mlm_path, tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    locked = (tmp_path / "locked").resolve()
    locked.mkdir()
    real = tempfile.mkstemp

    def refused(*args, dir=None, **kwargs):  # what a folder without write permission (or a read-only disk) does
        if dir is not None and Path(dir) == locked:
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    from bertprobe.cli.options import Common

    loads = []
    load = Common.load
    monkeypatch.setattr(Common, "load", lambda self, head: loads.append(head) or load(self, head))
    code, stdout, stderr = cli("score", "A dog barked.", "--out", locked / "scores.jsonl", "-m", mlm_path)
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert f"--out {locked / 'scores.jsonl'}: cannot write in the folder {locked} (Permission denied)" in stderr
    assert loads == [] and list(locked.iterdir()) == []


def test_out_through_a_symlink_replaces_the_linked_file_and_keeps_the_link(tmp_path):
    from bertprobe.render.jsonl import JsonLines, check_out_path

    kept = tmp_path / "runs" / "scores.jsonl"
    kept.parent.mkdir()
    kept.write_text("old\n")
    latest = tmp_path / "latest.jsonl"
    latest.symlink_to(kept)
    with JsonLines(check_out_path(latest)) as sink:
        sink.write({"index": 1, "line": 1, "text": "A dog barked."})
    # Replacing the link itself would leave the old results in the file it points to, for anyone reading there.
    assert latest.is_symlink() and latest.resolve() == kept
    assert json.loads(kept.read_text())["text"] == "A dog barked."
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["latest.jsonl", "runs", "scores.jsonl"]


def test_a_tsv_field_quoted_as_in_csv_is_a_bad_line_not_a_text_with_quotes(cli, mlm_path, tmp_path):
    import csv as csv_module

    # pandas' to_csv(sep="\t") quotes a field that holds a quote: read as written, the text would be scored with
    # its quotes doubled ("He said ""hi"" to me.").
    path = tmp_path / "texts.tsv"
    with path.open("w", newline="") as handle:
        writer = csv_module.writer(handle, delimiter="\t")
        writer.writerows([("text", "label"), ("A dog barked.", "0"), ('He said "hi" to me.', "1")])
    assert '"He said ""hi"" to me."' in path.read_text()
    code, stdout, stderr = cli("score", "--input", path, "-m", mlm_path)
    message = stderr.replace("\n", " ")
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert "line 3: the field" in message and "is quoted as in a csv file" in message
    code, _, stderr = cli("cls-train", "--data", path, "--model", mlm_path)
    assert code == 1 and "line 3: the field" in stderr.replace("\n", " ")
    # GLUE's unquoted tsv keeps its quote characters as text: a quote is a character there, as before.
    path.write_text('text\tlabel\n" the rock " is destined to be a star .\t1\n"Go home," she said.\t0\n')
    code, stdout, stderr = cli("score", "--input", path, "--json", "-m", mlm_path)
    assert code == 0, stderr
    assert [d["text"] for d in _lines(stdout)] == ['" the rock " is destined to be a star .', '"Go home," she said.']


def test_out_dash_is_refused_not_a_file_named_dash(cli, mlm_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli("score", "A dog barked.", "--out", "-", "-m", mlm_path)
    assert code == 1 and stdout == "" and "--out - would write a file named '-'" in stderr
    assert "--json" in stderr and not (tmp_path / "-").exists()


def test_a_bad_jsonl_line_keeps_its_own_hint_when_the_run_stops(cli, mlm_path, tmp_path):
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('{"text": "The cat sat on the [MASK]."}\n{"text": "A [MASK] barked.",}\n')
    code, stdout, stderr = cli("fillmask", "--input", corpus, "-m", mlm_path)
    assert code == 1 and stdout == ""
    assert "line 2: invalid JSON" in stderr
    hint = stderr[stderr.index("hint:") :]
    assert "One JSON object per line." in hint and "--on-bad skip" in hint


def test_a_pipe_given_as_the_input_file_is_not_called_missing(cli, tmp_path):
    """--input <(zcat corpus.txt.gz) names a pipe that exists: it cannot be read twice, and the error says how to pass
    it instead of calling it a file that does not exist."""
    import os

    pipe = tmp_path / "texts.txt"
    os.mkfifo(pipe)
    code, out, err = cli("fillmask", "--input", pipe, "-m", "tiny-mlm")
    assert code == 1 and out == ""
    assert "no such file" not in err and "not a regular file" in err and "--input -" in err
