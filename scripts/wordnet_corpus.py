"""Build the English training text for the shipped tiny-mlm model from WordNet 3.0.

Reads Debian's ``wordnet-base`` files (``apt-get install wordnet-base``; WordNet 3.0 licence:
use, copy, modify and distribute with the copyright notice kept) and writes one line per
gloss definition and per quoted example sentence, shuffled with a fixed seed. Lines are tidied
to read like ordinary sentences: dictionary abbreviations are spelled out or dropped, and every
line ends with a full stop (WordNet's examples have none, and a model trained on them learns
that the word before a sentence's final "." is itself a ".").

    python scripts/wordnet_corpus.py /usr/share/wordnet runs/wordnet.txt
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

_ABBREVIATIONS = [
    (re.compile(r"\be\.g\.,?", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.,?", re.IGNORECASE), "that is"),
    (re.compile(r",?\s*\betc\.", re.IGNORECASE), ""),
    (re.compile(r"\bU\.S\."), "US"),
]


def tidy(line: str) -> str:
    for pattern, replacement in _ABBREVIATIONS:
        line = pattern.sub(replacement, line)
    line = re.sub(r"\s+", " ", line).strip()
    if line and line[-1] not in ".!?":
        line += "."
    return line


def sentences(wordnet: Path) -> list[str]:
    found: list[str] = []
    for part in ("noun", "verb", "adj", "adv"):
        for line in (wordnet / f"data.{part}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:  # licence header lines start with two spaces
                continue
            gloss = line.split("|", 1)[1].strip()
            found.extend(example.strip() for example in re.findall(r'"([^"]+)"', gloss))
            found.append(re.split(r';\s*"', gloss)[0].strip().rstrip(";").strip())
    return [tidy(s) for s in found if len(s.split()) >= 4]


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    lines = sentences(source)
    random.Random(0).shuffle(lines)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} lines, {sum(len(s.split()) for s in lines)} words -> {target}")


if __name__ == "__main__":
    main()
