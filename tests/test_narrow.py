"""A narrow terminal, a split pane or a pipe (80 columns) wraps a table's cells but never cuts them.

Rich narrows a table that is too wide by shrinking its widest columns, below their longest word if it must, and
folds what no longer fits: ".92" became ".9" over "2", a bar broke in two, a header lost its last letters. Every
number and word shown at 200 columns must be shown whole at 80, 60 and 40 (the JSON has them all).
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

ROOT_EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BOX = re.compile("[\u2500-\u257f]")  # table rules and borders; block characters (bars) stay words
BAR = re.compile("[█▏▎▍▌▋▊▉]+")


def _render(renderable, width: int) -> str:
    from bertprobe.render import SafeConsole

    buffer = io.StringIO()
    SafeConsole(file=buffer, width=width, highlight=False).print(renderable)
    return buffer.getvalue()


def _words(text: str) -> Counter[str]:
    return Counter(BOX.sub(" ", text).split())


def _matrix(cells: list[list[str]]) -> Table:
    """A similarity matrix as sense draws it: no rules, no padding, cells right-aligned by leading spaces."""
    table = Table(box=None, padding=(0, 0), pad_edge=False)
    table.add_column("", no_wrap=True)
    for j in range(len(cells)):
        table.add_column(Text(f"{j + 1:>5}"), justify="right", no_wrap=True)
    for i, row in enumerate(cells):
        table.add_row(Text(f"{i + 1:>3} river     "), *[Text(f"{cell:>5}") for cell in row])
    return table


@pytest.mark.parametrize("width", [44, 52, 60])
def test_a_matrix_squeezed_under_its_width_keeps_every_number_whole_and_apart(width):
    cells = [[f".{(i * 7 + j * 3) % 90 + 10}" for j in range(12)] for i in range(12)]
    text = _render(_matrix(cells), width)
    assert max(len(line) for line in text.splitlines()) <= width
    # Each number a word of its own: neither folded (".9" over "2") nor run into its neighbour (".92.91").
    assert _words(text) >= Counter(cell for row in cells for cell in row)


def test_a_bar_and_a_long_header_are_never_folded():
    table = Table()
    table.add_column("phenomenon")
    table.add_column("comprehensiveness", justify="right")
    table.add_column("")
    for name, value in (("filler-gap agreement", 1.0), ("past participle", 0.667)):
        table.add_row(name, f"{value:.1%}", Text("█" * round(16 * value)))
    for width in (40, 50, 60):
        text = _render(table, width)
        words = _words(text)
        assert words["comprehensiveness"] == 1 and words["100.0%"] == words["66.7%"] == 1, text
        assert not [bar for bar in BAR.findall(text) if bar not in ("█" * 16, "█" * 11)], text


def test_a_table_that_fits_is_drawn_as_rich_draws_it():
    # The fix only steps in where Rich would fold a word: at normal widths the output stays the same.
    cells = [[".92", ".81"], [".81", ".92"]]
    plain = io.StringIO()
    Console(file=plain, width=80, highlight=False).print(_matrix(cells))
    assert _render(_matrix(cells), 80) == plain.getvalue()


def _narrow_loses(wide: str, narrow: str, width: int) -> Counter[str]:
    """Words (numbers, tokens, headers) of ``wide`` that ``narrow`` does not show whole; bars only when kept, and
    no word longer than the terminal is wide (a model's path: it can only fold)."""
    lost = _words(wide) - _words(narrow)
    bars_dropped = not BAR.search(narrow)  # a bar column too wide for the terminal goes, with its numbers kept
    return Counter(
        {word: n for word, n in lost.items() if len(word) < width and not (bars_dropped and BAR.fullmatch(word))}
    )


COMMANDS = {
    "sense": ("sense", "bank", "-m", "TINY"),
    "score-pairs": ("score", "--pairs", f"{ROOT_EXAMPLES}/minimal_pairs.csv", "-m", "tiny-mlm"),
    "score-input": ("score", "--input", "TEXTS", "-m", "tiny-mlm"),
    "attribute": ("attribute", "The cat sat on the [MASK].", "--target", "mat", "-m", "tiny-mlm", "--steps", "8"),
    "fillmask-joint": ("fillmask", "The [MASK] chased the [MASK].", "--decode", "joint", "-m", "tiny-mlm"),
    "fillmask-context": ("fillmask", "The [MASK] barked at the mailman.", "--context", "all", "-m", "tiny-mlm"),
    "fillmask-bert": ("fillmask", "The quick brown fox jumps over the lazy dog.", "--mode", "bert", "-m", "tiny-mlm"),
    "nsp-shuffle": ("nsp", "--shuffle", f"{ROOT_EXAMPLES}/story.txt", "-m", "NSP"),
}


@pytest.fixture
def narrow_cli(cli, monkeypatch, tmp_path, tiny_encoder_path, tiny_pretraining_path):
    """Run a command at a given width: ``run(args, columns)``; TINY and NSP name the tiny test models."""
    texts = tmp_path / "texts.csv"
    texts.write_text("text\nThe cat sat on the mat.\nThe dog sat on the rug.\n")
    names = {"TINY": str(tiny_encoder_path), "NSP": str(tiny_pretraining_path), "TEXTS": str(texts)}

    def run(args: tuple[str, ...], columns: int) -> str:
        monkeypatch.setenv("COLUMNS", str(columns))
        code, out, err = cli(*[names.get(arg, arg) for arg in args])
        assert code == 0, err
        return out

    return run


@pytest.mark.parametrize("args", COMMANDS.values(), ids=COMMANDS.keys())
def test_every_word_and_number_shown_wide_is_shown_whole_at_80_60_and_40_columns(narrow_cli, args):
    wide = narrow_cli(args, 200)
    for width in (80, 60, 40):
        narrow = narrow_cli(args, width)
        assert max(len(line) for line in narrow.splitlines()) <= width
        assert narrow.count("…") <= wide.count("…"), f"cut at {width} columns:\n{narrow}"
        lost = _narrow_loses(wide, narrow, width)
        assert not lost, f"shown at 200 columns but not whole at {width}: {dict(lost)}\n{narrow}"


def test_the_sense_matrix_shows_every_cosine_of_the_json_at_60_columns(narrow_cli):
    args = COMMANDS["sense"]
    doc = json.loads(narrow_cli((*args, "--json"), 200))
    text = narrow_cli(args, 60)
    start = text.index("cosine between the sentences'")
    shown = _words(text[start:])

    def short(value: float) -> str:  # two decimals, no leading zero: the matrix's own form
        written = f"{0.0 if abs(value) < 0.005 else value:.2f}"
        return written.replace("0.", ".", 1) if abs(value) < 1 else written

    matrix = doc["matrix_centred"] if doc["centred"] else doc["matrix"]
    expected = Counter(short(v) for i, row in enumerate(matrix) for j, v in enumerate(row) if i != j)
    assert shown >= expected, f"missing: {dict(expected - shown)}\n{text[start:]}"


def test_nsp_shows_each_sentence_whole(narrow_cli):
    args = COMMANDS["nsp-shuffle"]
    doc = json.loads(narrow_cli((*args, "--json"), 200))
    for columns in (200, 80):
        text = narrow_cli((*args, "--show", "0"), columns)
        assert "…" not in text
        # Every word of every sentence, whole, though a sentence wraps over the lines of its cell.
        assert _words(text) >= Counter(
            word for pair in doc["pairs"] for sentence in (pair["first"], pair["second"]) for word in sentence.split()
        )


def test_the_sense_matrix_names_each_row_by_its_whole_sense(narrow_cli):
    # "brightness" cut to 9 letters reads "brightnes"; "financial_market" and "financial_institution" alike.
    args = ("sense", "light", "--sentences", f"{ROOT_EXAMPLES}/senses_custom.csv", "-m", "TINY")
    doc = json.loads(narrow_cli((*args, "--json"), 200))
    text = narrow_cli(args, 80)
    matrix = text[text.index("cosine between the sentences'") :]
    for sentence in doc["sentences"]:
        assert re.search(rf"^\s*{sentence['number']} {re.escape(sentence['sense'])}\s", matrix, re.M), matrix
