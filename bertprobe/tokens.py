"""Word <-> word-piece alignment through offset mappings, shared by every command."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bertprobe.errors import InputError
from bertprobe.tokenizer import Encoding, Tokenizer


@dataclass(frozen=True)
class WordSpan:
    """One word of the text: its characters and the word pieces that cover them."""

    text: str
    start: int
    end: int
    pieces: list[int]


def words(encoding: Encoding) -> list[WordSpan]:
    """Group word pieces into words, as the tokenizer's own pre-tokenizer split them (its word ids).

    WordPiece (punctuation is a word of its own, as BERT's basic tokenizer splits it), byte-level
    BPE (``Ġbank``) and SentencePiece (``▁b an k``) alike; a word's span leaves out the space that
    BPE and SentencePiece pieces carry. Without word ids, a piece continues a word when no gap
    separates it from the last.
    """
    if encoding.word_ids:
        return _words_by_id(encoding)
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


def _words_by_id(encoding: Encoding) -> list[WordSpan]:
    groups: dict[tuple[int, int], list[int]] = {}
    for index, word in enumerate(encoding.word_ids):
        if word is None or encoding.special[index]:
            continue
        segment = encoding.type_ids[index] if encoding.type_ids else 0
        groups.setdefault((segment, word), []).append(index)
    spans = []
    for pieces in groups.values():
        start = min(encoding.offsets[i][0] for i in pieces)
        end = max(encoding.offsets[i][1] for i in pieces)
        while start < end and encoding.text[start].isspace():
            start += 1
        # A normaliser that strips or composes an accent ("e" + U+0301) may leave the mark in no piece's offsets.
        while end < len(encoding.text) and _is_mark(encoding.text[end]) and not _covered(encoding, end):
            end += 1
        if start < end:
            spans.append(WordSpan(encoding.text[start:end], start, end, pieces))
    return spans


def with_empty_pieces(encoding: Encoding, pieces: list[int]) -> list[int]:
    """``pieces`` plus the space-only pieces that open the same word.

    SentencePiece and byte-level BPE may write a word's leading space as a piece of its own
    (``▁`` or ``Ġ``, spanning the space or nothing, then ``b an k``); it belongs to the word that follows.
    """
    if not encoding.word_ids or not pieces:
        return pieces
    found = set(pieces)
    for index in pieces:
        before = index - 1
        while (
            before >= 0
            and not encoding.special[before]
            and not encoding.text[encoding.offsets[before][0] : encoding.offsets[before][1]].strip()
            and encoding.word_ids[before] is not None
            and encoding.word_ids[before] == encoding.word_ids[index]
        ):
            found.add(before)
            before -= 1
    return sorted(found)


# The ideograph blocks BERT's tokenizer splits character by character (``_is_chinese_char`` in BERT).
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef\U0002f800-\U0002fa1f"


@dataclass(frozen=True)
class Occurrence:
    """One whole-word occurrence of a word as written: its span when the model reads it on its own, else how the
    model reads it instead (``"[UNK]"`` for "🙂bank")."""

    start: int
    end: int
    span: WordSpan | None
    read_as: str


def occurrences(encoding: Encoding, word: str) -> list[Occurrence]:
    """Every whole-word, case-insensitive occurrence of ``word`` (which may hold spaces or hyphens) as written."""
    target = word.strip()
    if not target:
        raise InputError("the word to find is empty", hint="Give the word as it appears in the sentence.")
    # Either Unicode spelling of an accent ("café" typed composed, the sentence decomposed), and a word
    # glued to a CJK ideograph on either side (BERT reads each ideograph as a word of its own: "東京bank").
    forms = "|".join(dict.fromkeys(re.escape(unicodedata.normalize(f, target)) for f in ("NFC", "NFD")))
    before = rf"(?:(?<![^\W{_CJK}])|(?=[{_CJK}]))"
    after = rf"(?:(?![^\W{_CJK}])|(?<=[{_CJK}]))"
    pattern = re.compile(rf"{before}(?:{forms}){after}", re.IGNORECASE)
    found: list[Occurrence] = []
    for match in pattern.finditer(encoding.text):
        # A combining mark (decomposed "é" is "e" + U+0301) is part of the letter before it, though no \w.
        if _is_mark(encoding.text[match.end() : match.end() + 1]) or _is_mark(
            encoding.text[max(match.start() - 1, 0) : match.start()]
        ):
            continue
        pieces = [
            i
            for i, (start, end) in enumerate(encoding.offsets)
            if not encoding.special[i] and start < match.end() and end > match.start()
        ]
        # A piece that also covers text outside the match ([UNK] for "🙂bank") means the model never reads the
        # word on its own: its vectors and predictions would be another string's.
        shared = any(
            encoding.text[start : match.start()].strip() or encoding.text[match.end() : end].strip()
            for start, end in (encoding.offsets[i] for i in pieces)
        )
        read_as = " ".join(encoding.tokens[i] for i in pieces) or "no word piece"
        span = None
        if pieces and not shared:
            span = WordSpan(match.group(0), match.start(), match.end(), with_empty_pieces(encoding, pieces))
        found.append(Occurrence(match.start(), match.end(), span, read_as))
    return found


def find_word(encoding: Encoding, word: str, occurrence: int | None = None, where: str | None = None) -> list[WordSpan]:
    """Whole-word, case-insensitive matches of ``word`` (which may hold spaces or hyphens).

    Returns every match whose word pieces cover nothing else, or only the ``occurrence``-th (1-based, counted as
    written) when given; an occurrence the model never reads alone is then refused. ``where`` names the text in
    those refusals (default: the text itself, abbreviated).
    """
    written = occurrences(encoding, word)
    if occurrence is not None:
        where = where or repr(_abbrev(encoding.text))
        # Counted as written: skipping an occurrence the model cannot read alone would make "2" the third one.
        if occurrence < 1 or occurrence > len(written):
            raise InputError(
                f"{word!r} occurs {len(written)} time(s) in {where}; occurrence {occurrence} does not exist",
                hint=f"Use --occurrence between 1 and {max(len(written), 1)}.",
            )
        chosen = written[occurrence - 1]
        if chosen.span is None:
            raise InputError(
                f"occurrence {occurrence} of {word!r} in {where} is read together with the "
                f"characters next to it (as {chosen.read_as}), never alone",
                hint="Put a space on each side of it, or choose another --occurrence.",
            )
        return [chosen.span]
    return [o.span for o in written if o.span is not None]


def special_strings(tokenizer: Tokenizer, text: str) -> list[str]:
    """The special tokens written out in ``text`` ("[SEP]", "<s>") that the tokenizer reads as the token itself,
    not as its characters (transformers' tokenizers read them so too), in order of first appearance.

    Read from the encoding, not by searching the text: "[sep]" in an uncased BERT and "[SEP]" in RoBERTa are
    plain characters, and the [UNK] that stands for "🙂" was not written.
    """
    folded = text.casefold()
    if not any(token.casefold() in folded for token in tokenizer.special_tokens):
        return []  # most texts: no second encoding
    encoding = tokenizer.encode(text)
    found: list[str] = []
    for token_id, token, (start, end) in zip(encoding.ids, encoding.tokens, encoding.offsets, strict=True):
        # A written one has characters; the [CLS] and [SEP] the tokenizer adds span (0, 0). XLM-R's "<mask>"
        # takes the space before it into its span.
        written = text[start:end].strip()
        if written and tokenizer.is_special(token_id) and written.casefold() == token.casefold() and token not in found:
            found.append(token)
    return found


def special_notices(
    tokenizer: Tokenizer, inputs: Sequence[str | Sequence[str]], expected: Collection[str] = ()
) -> list[str]:
    """One plain-words notice for each special token written in ``inputs`` (each a text, or a pair of texts for
    NSP), leaving out the ones the command asks for (``expected``: fillmask's [MASK]); with several inputs it
    says how many hold the token."""
    holding: dict[str, int] = {}
    for texts in inputs:
        found = [special_strings(tokenizer, text) for text in ([texts] if isinstance(texts, str) else texts)]
        for token in dict.fromkeys(token for tokens in found for token in tokens):
            if token not in expected:
                holding[token] = holding.get(token, 0) + 1
    notices = []
    for token, count in holding.items():
        where = "your text" if len(inputs) == 1 else f"{count} of your {len(inputs)} texts"
        # A space inside breaks the match: "[ SEP ]" is read as the characters.
        keep = f"; write '{token[0]} {token[1:-1]} {token[-1]}' to have it read as text" if len(token) > 2 else ""
        notices.append(
            f"'{token}' in {where} is read as the model's special {token} token "
            f"({tokenizer.special_tokens[token]}), not as the characters{keep}"
        )
    return notices


def _covered(encoding: Encoding, char: int) -> bool:
    return any(start <= char < end for start, end in encoding.offsets)


def _is_mark(char: str) -> bool:
    return bool(char) and unicodedata.category(char).startswith("M")


def _abbrev(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
