"""Text from users and files never drives the terminal; --json is strict JSON; narrow terminals lose nothing."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HOSTILE = "a \x1b]0;pwned\x07 \x1b[31mred\x1b[0m\r over\x08 \x9b31m \u202eevil\u2028 x\x00y\x7f"
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _no_raw_controls(text: str) -> None:
    found = RAW_CONTROLS.findall(text)
    assert not found, f"raw control characters reached the output: {found!r}"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31m", "\\x1b[31m"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("over\rwrite", "over\\rwrite"),
        ("back\x08space", "back\\x08space"),
        ("\x9b31m", "\\x9b31m"),
        ("\u202eevil", "\\u202eevil"),
        ("line\u2028sep", "line\\u2028sep"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("caf\udcff", "caf\\udcff"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("plain café ☃ [MASK]", "plain café ☃ [MASK]"),
    ],
)
def test_visible_escapes_every_control_character(raw, shown):
    from bertprobe.render import visible

    assert visible(raw) == shown
    assert "\n" not in visible(raw, one_line=True) and "\t" not in visible(raw, one_line=True)


def test_a_terminal_console_escapes_strings_tables_and_text_objects():
    from rich.table import Table
    from rich.text import Text

    from bertprobe.render import SafeConsole

    buffer = io.StringIO()
    console = SafeConsole(file=buffer, force_terminal=True, color_system="truecolor", width=400, highlight=False)
    table = Table("token", "note")
    table.add_row(HOSTILE, Text(HOSTILE, style="bold"))
    console.print(HOSTILE, markup=False)
    console.print(table)
    console.print(Text.assemble(("x", "red"), HOSTILE))
    output = buffer.getvalue()
    # Colour codes are Rich's own (ESC[...m); nothing of the user's text may start a sequence.
    without_styles = re.sub("\x1b\\[[0-9;]*m", "", output)
    _no_raw_controls(without_styles.replace("\n", ""))
    assert "\x1b]" not in output and "\x07" not in output and "\r" not in output
    # Escaped where Rich keeps them (strings, table cells); Rich itself drops BEL, BS and CR from Text.
    assert output.count("\\x1b]0;pwned") == 4 and output.count("\\u202eevil") == 4


def test_errors_and_notices_escape_user_text_and_stay_one_line(cli, tmp_path):
    # (argv cannot hold NUL: a path with one is a usage error of its own)
    code, out, err = cli("cls-predict", tmp_path / f"no{HOSTILE.replace(chr(0), '')}\nsuch", "some text")
    assert code == 1 and out == ""
    _no_raw_controls(err.replace("\n", ""))
    lines = err.strip().splitlines()
    assert len(lines) == 2 and "\\x1b]0;pwned\\x07" in lines[0] and "\\n" in lines[0]
    bad = tmp_path / "labels.jsonl"
    bad.write_text(json.dumps({"text": "fine", "label": "ok"}) + "\n" + json.dumps({"text": HOSTILE, "label": ["x"]}))
    code, _, err = cli("cls-train", "--data", bad, "-m", "minilm")
    assert code == 1 and "line 2: 'label' is a list" in err
    _no_raw_controls(err.replace("\n", ""))


def test_tables_escape_text_from_data_files(cli, tiny_encoder_path, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "d.jsonl"
    rows = [{"text": f"text {i} {HOSTILE}", "label": ("pos\x1b[2J" if i % 2 else "neg\u202e")} for i in range(24)]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, err = cli("cls-train", "--data", data, "--model", tiny_encoder_path)
    assert code == 0, err
    _no_raw_controls(out.replace("\n", ""))
    assert "pos\\x1b[2J" in out and "neg\\u202e" in out  # the labels, visibly escaped
    _no_raw_controls(err.replace("\n", ""))


def test_json_stays_strict_for_any_text(cli, tiny_encoder_path):
    code, out, err = cli("attention", HOSTILE.replace("\x00", ""), "-m", tiny_encoder_path, "--json")
    assert code == 0, err
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]", out.replace("\n", ""))
    doc = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))
    assert doc["text"] == HOSTILE.replace("\x00", "")  # escaped in the document, the same text once parsed


def test_json_never_holds_nan_or_infinity():
    from bertprobe.render import dumps

    text = dumps({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": "\u2028\x85"})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name)) == {
        "a": None,
        "b": [None, None, 1.5],
        "c": "\u2028\x85",
    }
    assert text.isascii() or "\u2028" not in text


def test_text_that_is_not_utf8_is_one_clean_error(cli):
    code, out, err = cli("fillmask", "caf\udcff [MASK]", "-m", "tiny-mlm", "--json")
    assert code == 1 and out == ""
    assert err.strip().splitlines()[0] == "error: the text given is not valid UTF-8 text (byte 0xff at character 4)"
    # The same from a real command line (Python decodes argv with surrogateescape).
    result = subprocess.run(
        [sys.executable, "-m", "bertprobe", "fillmask", b"caf\xff [MASK]", "-m", "tiny-mlm", "--json"],
        capture_output=True,
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"},
    )
    assert result.returncode == 1 and result.stdout == b""
    assert b"not valid UTF-8" in result.stderr and b"Traceback" not in result.stderr
    # An option is named as the user typed it (--mask-word), not by its Python name.
    code, out, err = cli("fillmask", "The cat sat.", "--mask-word", "c\udcffat", "-m", "tiny-mlm")
    assert code == 1 and err.strip().splitlines()[0].startswith("error: the --mask-word given is not valid UTF-8")


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?%?")


@pytest.mark.parametrize(
    "args",
    [
        ("fillmask", "The cat sat on the [MASK].", "-m", "tiny-mlm"),
        ("fillmask", "The cat sat on the mat today.", "-m", "tiny-mlm", "--mode", "bert", "--samples", "3"),
        ("fillmask", "The cat sat on the mat.", "-m", "tiny-mlm", "--mode", "each"),
        ("sense", "bank", "-m", "TINY"),
        ("attention", "The cat sat on the mat.", "-m", "TINY", "--layer", "2"),
        ("attribute", "The cat sat on the [MASK].", "-m", "tiny-mlm", "--steps", "8"),
        ("models",),
    ],
    ids=lambda a: "-".join(x for x in a if not x.startswith("-") and " " not in x)[:40],
)
def test_a_narrow_terminal_shows_every_token_and_number(cli, tiny_encoder_path, args, monkeypatch):
    args = tuple(str(tiny_encoder_path) if a == "TINY" else a for a in args)
    monkeypatch.setenv("COLUMNS", "200")
    code, wide, _ = cli(*args)
    monkeypatch.setenv("COLUMNS", "40")
    code_narrow, narrow, _ = cli(*args)
    assert code == code_narrow == 0
    assert max(len(line) for line in narrow.splitlines()) <= 40
    assert narrow.count("…") <= wide.count("…")  # nothing cut because the terminal is narrow
    missing = Counter(NUMBER.findall(wide)) - Counter(NUMBER.findall(narrow))
    assert not missing, f"numbers shown at 200 columns but not at 40: {dict(missing)}"
    if args[0] == "fillmask" and "--mode" not in args:
        code, doc, _ = cli(*args, "--json")
        for prediction in json.loads(doc)["masks"][0]["predictions"]:
            assert prediction["token"] in narrow


def test_an_input_file_whose_name_is_not_utf8_is_read(cli, tmp_path):
    # A Linux file name need not be UTF-8; Python hands it over with surrogates, and open() takes it back.
    corpus = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xff.txt")
    Path(corpus).write_text("The cat sat on the mat.\n")
    code, out, err = cli("score", "--input", corpus, "-m", "tiny-mlm", "--json")
    assert code == 0, err
    assert json.loads(out)["text"] == "The cat sat on the mat."


def test_a_column_name_from_the_pairs_file_is_shown_as_written(cli, tmp_path):
    # The --group-column name heads the table: Rich markup in it must print literally, never style or crash.
    pairs = tmp_path / "pairs.tsv"
    rows = [("The cat sat.", "The cat sit.", "agreement"), ("Dogs bark.", "Dogs barks.", "agreement")]
    for column in ("[/]", "[bold]kind[/bold]"):
        pairs.write_text(f"good\tbad\t{column}\n" + "".join(f"{g}\t{b}\t{p}\n" for g, b, p in rows))
        code, out, err = cli("score", "--pairs", pairs, "--group-column", column, "-m", "tiny-mlm")
        assert code == 0, err
        assert column in out


@pytest.mark.parametrize("text", ["I paid $5 and $10 for it.", "odd $x^$ text", "snow \x1b[31m \u202e 猫 here"])
def test_plot_titles_show_the_text_as_written_and_nothing_from_matplotlib_reaches_stderr(
    cli, minilm_path, tmp_path, text
):
    # matplotlib reads $...$ as maths (and fails on some); it warns on stderr, with the raw character,
    # for each one its font cannot draw.
    plot = tmp_path / "a.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = cli("attention", text, "-m", "minilm", "--plot", plot)
    assert code == 0 and plot.read_bytes()[:4] == b"\x89PNG", err
    assert not [str(w.message) for w in caught if "matplotlib" in w.filename or "render" in w.filename]
    _no_raw_controls(err.replace("\n", ""))
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.text import Text as Label

    from bertprobe.render import plot_label

    shown, is_math = Label()._preprocess_math(plot_label(text))
    assert not is_math and shown == text.replace("\x1b", "\\x1b").replace("\u202e", "\\u202e")


def test_probe_reading_never_rounds_a_miss_away():
    from types import SimpleNamespace as Namespace

    from bertprobe.render.probe import readings

    # 870 of 872 eval texts right is 99.8%: "100% of the eval texts right" would be false.
    result = Namespace(
        metrics=Namespace(accuracy=870 / 872),
        baseline=Namespace(accuracy=0.5, label="positive"),
        data=Namespace(eval_size=872, eval_counts={"positive": 436, "negative": 436}),
        pooling="cls",
        control=Namespace(accuracy=0.9995),
    )
    line = readings(result)[0]
    assert "gets 99.8% of the eval texts right" in line and "99.95% with an untrained encoder" in line


def test_predictions_count_as_unsure_only_near_chance_for_the_number_of_labels():
    from types import SimpleNamespace as Namespace

    from bertprobe.render import SafeConsole
    from bertprobe.render.probe import predict_view

    labels = ["a", "b", "c", "d"]  # chance is 0.25: 0.55 is a clear pick, not "cannot tell"
    probabilities = {"a": 0.55, "b": 0.15, "c": 0.15, "d": 0.15}
    item = Namespace(text="x", truncated=False, label="a", probabilities=probabilities, probability=0.55)
    result = Namespace(
        model="m", revision=None, probe="p", layer=1, pooling="cls", labels=labels, predictions=[item], max_length=8
    )
    buffer = io.StringIO()
    predict_view(result, SafeConsole(file=buffer, width=200))
    assert "p near 0.25 means it cannot tell; none is that close here." in buffer.getvalue()


def test_the_summary_of_many_texts_shows_their_control_characters_escaped_not_dropped(cli, tmp_path):
    # Rich's Text drops BEL, BS, VT, FF and CR: the row would show "overwrite" for a text that holds "over\rwrite".
    texts = tmp_path / "t.jsonl"
    texts.write_text(json.dumps({"text": "ring\x07 over\rwrite back\x08 ff\x0c [MASK]"}) + "\n")
    code, out, err = cli("fillmask", "--input", texts, "-m", "tiny-mlm")
    assert code == 0, err
    _no_raw_controls(out.replace("\n", ""))
    row = " ".join(line for line in out.splitlines() if "│" in line)
    for shown in ("ring\\x07", "over\\rwrite", "back\\x08", "ff\\x0c"):
        assert row.count(shown) == 2, (shown, out)  # in the text and in its top-1 fill


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "ascii"])
def test_json_lines_on_a_stdout_that_is_not_utf8_stay_utf8_json_with_the_same_text(monkeypatch, encoding):
    """Windows without UTF-8 mode writes a redirected stdout (> out.jsonl) in cp1252: "é" would be a byte no UTF-8
    JSON reader takes, and "😀" a crash half-way through the run. Escaped, every line parses back to the same text."""
    from bertprobe.render.jsonl import JsonLines

    texts = ["café naïve", "emoji 😀 and \ufeff bom", "plain"]
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding=encoding, write_through=True))
    with JsonLines() as sink:
        for index, text in enumerate(texts, start=1):
            sink.write({"index": index, "line": index, "text": text})
    written = raw.getvalue().decode("utf-8").splitlines()
    assert [json.loads(line)["text"] for line in written] == texts


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_a_one_text_json_run_on_a_stdout_that_is_not_utf8_is_the_same_json(tmp_path, encoding):
    # As the JSON Lines above: "é" as a cp1252 byte is no UTF-8 JSON, and "😀" stopped the run with a traceback.
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    text = "Le café 😀 est [MASK]."
    run = subprocess.run([sys.executable, "-m", "bertprobe", "fillmask", text, "-m", "tiny-mlm", "--json"],
                         capture_output=True, env=env, timeout=120)  # fmt: skip
    assert run.returncode == 0 and b"Traceback" not in run.stderr, run.stderr[-2000:]
    assert json.loads(run.stdout.decode("utf-8"))["text"] == text


def test_a_reader_that_leaves_early_gets_no_error_line(tmp_path):
    # `bertprobe fillmask --input texts.txt --json | head -1`: head leaves after one line, and the writes after it
    # fail with EPIPE. That is the reader's choice, not an error to report ("error: Broken pipe" and a traceback).
    texts = tmp_path / "texts.txt"
    texts.write_text("".join(f"Sentence number {n} has a [MASK] in it.\n" for n in range(400)))
    run = subprocess.Popen([sys.executable, "-m", "bertprobe", "fillmask", "--input", texts, "-m", "tiny-mlm",
                            "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    first = run.stdout.readline()
    run.stdout.close()
    stderr = run.stderr.read().decode()
    run.wait(timeout=120)
    assert json.loads(first)["index"] == 1
    assert "error" not in stderr and "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert run.returncode == 1
