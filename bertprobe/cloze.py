"""Cloze evaluation: precision@k of fill-mask predictions on sentences with known answers.

Two built-in sets of everyday sentences written for this project, each with one ``[MASK]``
and the few words a speaker would put there: ``builtin`` (``data/cloze.jsonl``, 60 sentences,
looked at while the shipped models were made) and ``heldout`` (``data/cloze_heldout.jsonl``,
112 sentences, never trained or tuned on: the honest figure). Both are kept out of any
training text bertprobe ships (``scripts/build_corpus.py`` drops matching lines).

Besides precision@1 and @k, the copy rate: how often the top-1 word is a word of the sentence
itself and not an acceptable answer ("The sun rises in the sun."), a failure of small models that
accuracy alone hides.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bertprobe.errors import BertprobeError, DataError
from bertprobe.inputs import lines, read_text
from bertprobe.mlm import masked_logits, normalise_masks, require_masks
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered


@dataclass
class ClozeItem:
    text: str
    answers: list[str]
    top: list[str]
    hit_rank: int | None  # 1-based rank of the first acceptable answer in the top list
    copies: bool = False  # the top-1 word is a word of the sentence itself, and not an acceptable answer


@dataclass
class ClozeResult(Rendered):
    model: str
    revision: str | None
    top_k: int
    items: list[ClozeItem]
    precision_at_1: float
    precision_at_k: float
    copy_rate: float = 0.0  # share of sentences whose top-1 word is wrong and already occurs in the sentence
    cloze_set: str = "builtin"  # builtin, heldout, or the --data file
    notices: list[str] = field(default_factory=list)


SETS = {"builtin": "data/cloze.jsonl", "heldout": "data/cloze_heldout.jsonl"}


def builtin_items(name: str = "builtin") -> list[dict]:
    """The items of a built-in set: ``builtin`` or ``heldout``."""
    text = resources.files("bertprobe").joinpath(SETS[name]).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def sentence_words(text: str, mask_token: str = "[MASK]") -> set[str]:
    """The words of a cloze sentence around its mask (``[MASK]`` or the model's own, e.g. ``<mask>``), lower-cased."""
    unmasked = normalise_masks(text, mask_token).replace(mask_token, " ")
    # An apostrophe joins a word ("dog's") but a quote mark is not part of one ('fire' is the word fire). The
    # stem before it is a word of the sentence too: "dog" after "The dog's" repeats it (BERT reads dog ' s).
    words = set(re.findall(r"\w+(?:'\w+)*", unmasked.lower()))
    return words | {word.split("'")[0] for word in words}


def read_items(path: str | Path) -> list[dict]:
    """Items of a jsonl file, each ``{"text": "... [MASK] ...", "answers": ["word", ...]}``."""
    items = []
    text = read_text(path, hint="Check the path given to --data.")
    for number, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        answers = item.get("answers") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not isinstance(answers, list)
            or not answers
            or not all(isinstance(a, str) and a.strip() for a in answers)
        ):
            raise DataError(
                f"{path}, line {number}: expected a JSON object with a text and a list of answer words",
                hint='e.g. {"text": "The cat sat on the [MASK].", "answers": ["mat", "floor"]}',
            )
        items.append(
            {"text": item["text"], "answers": [a.strip().lower() for a in answers], "where": f"{path}, line {number}"}
        )
    return items


def evaluate(lm: LoadedModel, items: list[dict], top_k: int = 5, cloze_set: str = "builtin") -> ClozeResult:
    """Precision@1 and @k: an item counts when an acceptable answer is among the top k predictions.

    Predictions are compared as decoded words, lower-cased; a word-piece continuation (``##s``)
    never matches an answer.
    """
    if not items:
        raise DataError("no cloze sentences to score", hint='Each line: {"text": "... [MASK] ...", "answers": [...]}')
    encoded = []
    for number, item in enumerate(items, start=1):
        where = item.get("where", f"cloze sentence {number}")
        try:
            encoding, positions = require_masks(lm, item["text"])
        except BertprobeError as err:
            raise DataError(f"{where}: {err.message}", hint=err.hint) from None
        if len(positions) != 1:
            # Only one slot can be scored against one answer list: a second mask would be silently ignored.
            raise DataError(
                f"{where}: {len(positions)} masks; a cloze sentence has exactly one",
                hint='Keep one [MASK] per line, e.g. {"text": "The cat sat on the [MASK].", "answers": ["mat"]}',
            )
        encoded.append((encoding, positions))
    all_logits = [rows[0] for rows in masked_logits(lm, [e.ids for e, _ in encoded], [p for _, p in encoded])]
    tok = lm.tokenizer
    scored = []
    unreachable = 0
    for item, logits in zip(items, all_logits, strict=True):
        top = [tok.decode([i]).strip() for i in logits.topk(min(top_k, logits.shape[-1])).indices.tolist()]
        answers = {_spelling(lm, a) for a in item["answers"]}
        rank = next((r for r, word in enumerate(top, start=1) if _spelling(lm, word) in answers), None)
        words = {_spelling(lm, word) for word in sentence_words(item["text"], tok.mask_token)}
        # A copy is a failure: a top-1 that is an acceptable answer and also stands in the sentence ("way" in
        # "all the way ... the [MASK] home") is a hit, not a copy.
        copies = bool(top) and rank != 1 and _spelling(lm, top[0]) in words
        scored.append(ClozeItem(item["text"], sorted(answers), top, rank, copies))
        unreachable += not any(_one_piece(lm, answer) for answer in answers)
    count = max(len(scored), 1)
    notices = list(lm.notices)
    if unreachable:
        notices.append(
            f"{unreachable} of {len(scored)} sentence(s) have no answer that is one word piece of {lm.name}: "
            "one mask predicts one piece, so they can never count as hits"
        )
    return ClozeResult(
        model=lm.name,
        revision=lm.revision,
        top_k=top_k,
        items=scored,
        precision_at_1=sum(i.hit_rank == 1 for i in scored) / count,
        precision_at_k=sum(i.hit_rank is not None for i in scored) / count,
        copy_rate=sum(i.copies for i in scored) / count,
        cloze_set=cloze_set,
        notices=notices,
    )


def _one_piece(lm: LoadedModel, answer: str) -> bool:
    """Whether one word piece of the model decodes to ``answer`` (compared without case, as the hits are)."""
    for spelling in {answer, answer.capitalize(), answer.upper()}:
        for written in (spelling, f"a {spelling}"):  # alone, and after a space (BPE's Ġ and SentencePiece's ▁)
            encoding = lm.tokenizer.encode(written)
            pieces = [t for t, special in zip(encoding.ids, encoding.special, strict=True) if not special]
            # Each word one piece is not enough: the last piece alone must spell the whole answer ("ice cream").
            if len(pieces) == written.count(" ") + 1 and _spelling(lm, lm.tokenizer.decode(pieces[-1:])) == answer:
                return True
    return False


def _spelling(lm: LoadedModel, word: str) -> str:
    """A word as the model reads it, without case: an uncased BERT reads "Café" as "cafe" and can only write that."""
    normalizer = getattr(lm.tokenizer.backend, "normalizer", None)
    word = unicodedata.normalize("NFC", word)
    return (normalizer.normalize_str(word) if normalizer is not None else word).strip().lower()
