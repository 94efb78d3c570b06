"""The guided tour (examples/README.md): every command in it runs, exits 0 and prints the output shown.

Each ```bash block's ``bertprobe ...`` lines are run in-process at 80 columns (as the outputs were
captured); every line of the ```text block that follows (``…`` marks lines left out) must appear in
what the command printed, whitespace aside. If a bundled model changes, `scripts/tour_output.py`
prints every command's new output to paste into the tour.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "examples" / "README.md"
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def _squash(text: str) -> str:
    return " ".join(text.split())


def tour_commands() -> list[tuple[str, list[str]]]:
    """(command line, expected output lines) for each bertprobe command of a bash block, in order."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(TOUR.read_text(encoding="utf-8"))]
    found = []
    for index, (language, body) in enumerate(blocks):
        if language != "bash":
            continue
        commands = [line.strip() for line in body.splitlines() if line.strip().startswith("bertprobe ")]
        following = blocks[index + 1] if index + 1 < len(blocks) else ("", "")
        expected = []
        if following[0] == "text" and not following[1].lstrip().startswith("$"):
            expected = [line for line in following[1].splitlines() if line.strip() and line.strip() != "…"]
        for position, command in enumerate(commands):
            found.append((command, expected if position == len(commands) - 1 else []))
    return found


def test_the_tour_has_a_command_for_every_idea():
    commands = [command for command, _ in tour_commands()]
    assert len(commands) >= 5
    joined = " ".join(commands)
    for needle in ("--context", "--mode bert", "--show-cls", "sense ", "cls-train"):
        assert needle in joined
    assert all(expected for _, expected in tour_commands())  # every command shows its output
    for path in re.findall(r"examples/[\w.]+", TOUR.read_text(encoding="utf-8")):
        assert (ROOT / path).is_file(), f"the tour uses {path}, which is not shipped"


@pytest.mark.parametrize(("command", "expected"), tour_commands(), ids=[c for c, _ in tour_commands()])
def test_tour_command_prints_what_the_tour_shows(command, expected, cli, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    code, stdout, stderr = cli(*shlex.split(command)[1:])
    assert code == 0, stderr
    printed = _squash(stdout + "\n" + stderr)
    for line in expected:
        assert _squash(line) in printed, (
            f"{command}: the tour shows a line it no longer prints (see scripts/tour_output.py):\n{line}"
        )
