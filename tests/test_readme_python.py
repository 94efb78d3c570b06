"""Every ```python block of README.md runs as it is: offline, from a copy of the repository's examples."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), re.M | re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 3 and all("import bertprobe" in block for block in BLOCKS)


@pytest.mark.parametrize("number", range(1, len(BLOCKS) + 1))
def test_readme_python_block_runs(number, tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")  # the README runs from the repository root
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exec(compile(BLOCKS[number - 1], f"README.md python block {number}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip()  # each block prints what it shows
