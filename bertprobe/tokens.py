"""Word <-> word-piece alignment through offset mappings, shared by every command."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bertprobe.errors import InputError
from bertprobe.tokenizer import Encoding


@dataclass(frozen=True)
class WordSpan:
    """One word of the text: its characters and the word pieces that cover them."""

    text: str
    start: int
    end: int
    pieces: list[int]


def words(encoding: Encoding) -> list[WordSpan]:
    """Group word pieces into words: a piece continues a word when no gap separates it from the last.

    Punctuation pieces form words of their own, as BERT's basic tokenizer splits them.
    """
    spans: list[WordSpan] = []
    for index, (start, end) in enumerate(encoding.offsets):
        if encoding.special[index] or start == end:
            continue
        piece_text = encoding.text[start:end]
        joins = (
            spans
            and spans[-1].end == start
            and piece_text[:1].isalnum()
            and encoding.text[spans[-1].end - 1 : spans[-1].end].isalnum()
        )
        if joins:
            last = spans[-1]
            spans[-1] = WordSpan(encoding.text[last.start : end], last.start, end, [*last.pieces, index])
        else:
            spans.append(WordSpan(piece_text, start, end, [index]))
    return spans


def find_word(encoding: Encoding, word: str, occurrence: int | None = None) -> list[WordSpan]:
    """Whole-word, case-insensitive matches of ``word`` (which may hold spaces or hyphens).

    Returns every match, or only the ``occurrence``-th (1-based) when given.
    """
    target = word.strip()
    if not target:
        raise InputError("the word to find is empty", hint="Give the word as it appears in the sentence.")
    pattern = re.compile(r"(?<!\w)" + re.escape(target) + r"(?!\w)", re.IGNORECASE)
    matches: list[WordSpan] = []
    for match in pattern.finditer(encoding.text):
        pieces = [
            i
            for i, (start, end) in enumerate(encoding.offsets)
            if not encoding.special[i] and start < match.end() and end > match.start()
        ]
        if pieces:
            matches.append(WordSpan(match.group(0), match.start(), match.end(), pieces))
    if occurrence is not None:
        if occurrence < 1 or occurrence > len(matches):
            raise InputError(
                f"{word!r} occurs {len(matches)} time(s) in {_abbrev(encoding.text)!r}; "
                f"occurrence {occurrence} does not exist",
                hint=f"Use --occurrence between 1 and {max(len(matches), 1)}.",
            )
        return [matches[occurrence - 1]]
    return matches


def _abbrev(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
