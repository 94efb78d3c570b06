"""Next Sentence Prediction: the probability BERT's NSP head gives that B follows A.

BERT was pretrained on pairs where B was the true next sentence half of the time and a
random sentence otherwise; the NSP head reads the pooled [CLS] vector. In Hugging Face
checkpoints, class 0 of ``seq_relationship_logits`` is "B follows A".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

from bertprobe.cls_origin import ClsOrigin
from bertprobe.errors import DataError, InputError
from bertprobe.features import Progress, batches, encode_all, encode_checked, pad_batch
from bertprobe.inputs import lines as text_lines
from bertprobe.inputs import read_rows, read_text
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered
from bertprobe.tokenizer import Encoding

_TRUE = {"1", "true", "yes", "next", "is_next", "isnext"}
_FALSE = {"0", "false", "no", "random", "not_next", "notnext"}


@dataclass
class ScoredPair:
    first: str
    second: str
    is_next_probability: float
    predicted_next: bool
    is_next: bool | None = None  # the truth, when known
    line: int | None = None  # where the pair came from in the user's file

    @property
    def correct(self) -> bool | None:
        return None if self.is_next is None else self.predicted_next == self.is_next


@dataclass
class NspResult(Rendered):
    model: str
    revision: str | None
    source: str  # "arguments", the pairs file, or the shuffled text file
    mode: str  # "pairs" or "shuffle"
    pairs: list[ScoredPair]
    accuracy: float | None  # over pairs whose truth is known
    accuracy_next: float | None  # on true next-sentence pairs
    accuracy_random: float | None  # on random pairs
    mean_probability_next: float | None
    mean_probability_random: float | None
    notices: list[str] = field(default_factory=list)
    cls_origin: ClsOrigin | None = None  # what this model's [CLS] was trained for


def is_next_probabilities(
    lm: LoadedModel,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 32,
    progress: Progress | None = None,
) -> list[float]:
    """P(B follows A) for each (A, B), batched with segment ids 0 / 1 as in pretraining."""
    encodings = encode_all(lm, [a for a, _ in pairs], [b for _, b in pairs])
    return _is_next(lm, encodings, batch_size, progress)


def _is_next(
    lm: LoadedModel, encodings: Sequence[Encoding], batch_size: int = 32, progress: Progress | None = None
) -> list[float]:
    """P(B follows A) for each pair already encoded (and checked for length)."""
    import torch

    probabilities = [0.0] * len(encodings)
    done = 0
    for batch in batches([len(e) for e in encodings], batch_size):
        input_ids, attention, token_types = pad_batch(lm, [encodings[i] for i in batch])
        with torch.inference_mode():
            logits = lm.backend.nsp_logits(input_ids.to(lm.device), attention.to(lm.device), token_types.to(lm.device))
            chance = logits.float().softmax(-1)[:, 0].cpu().tolist()
        for index, value in zip(batch, chance, strict=True):
            probabilities[index] = value
        done += len(batch)
        if progress:
            progress(done, len(encodings))
    return probabilities


def pair_problem(lm: LoadedModel, first: str, second: str) -> str | None:
    """Why a pair cannot be scored (a side with no words: empty, a zero-width space, control characters), or None.

    The NSP head would still give a probability, for a pair that is not two sentences: a number without meaning.
    """
    from bertprobe.masking import eligible_positions

    for side, text in (("A", first), ("B", second)):  # a typed [SEP] or an unknown emoji alone is no sentence either
        if not eligible_positions(lm.tokenizer.encode(text).ids, lm.tokenizer.special_ids):
            return f"sentence {side} has no words (only special or unknown tokens)"
    return None


def score(
    lm: LoadedModel,
    pairs: Sequence[tuple[str, str]],
    truth: Sequence[bool | None] | None = None,
    lines: Sequence[int | None] | None = None,
    source: str = "arguments",
    mode: str = "pairs",
    progress: Progress | None = None,
    probabilities: Sequence[float] | None = None,  # already computed (many pairs batched together)
) -> NspResult:
    if not pairs:
        raise InputError("no sentence pairs to score", hint='e.g. bertprobe nsp "I was hungry." "So I ate."')
    truth = list(truth) if truth is not None else [None] * len(pairs)
    lines = list(lines) if lines is not None else [None] * len(pairs)
    if probabilities is None:
        encodings: list[Encoding] = []
        for number, ((a, b), line) in enumerate(zip(pairs, lines, strict=True), start=1):
            where = f"{source}, line {line}: " if line is not None else f"pair {number}: " if len(pairs) > 1 else ""
            reason = pair_problem(lm, a, b)
            if reason is not None:
                raise InputError(where + reason, hint="Give two sentences with words in them.")
            # Named by its line, not as "text 2" of the batch; the checked encoding is the one the batch reads.
            encodings.append(encode_checked(lm, a, b, label=where + "the pair"))
        probabilities = _is_next(lm, encodings, progress=progress)
    scored = [
        ScoredPair(a, b, p, p >= 0.5, t, line)
        for (a, b), p, t, line in zip(pairs, probabilities, truth, lines, strict=True)
    ]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    known = [s for s in scored if s.is_next is not None]
    nexts = [s for s in known if s.is_next]
    randoms = [s for s in known if not s.is_next]
    return NspResult(
        model=lm.name,
        revision=lm.revision,
        source=source,
        mode=mode,
        pairs=scored,
        accuracy=mean([float(bool(s.correct)) for s in known]),
        accuracy_next=mean([float(bool(s.correct)) for s in nexts]),
        accuracy_random=mean([float(bool(s.correct)) for s in randoms]),
        mean_probability_next=mean([s.is_next_probability for s in nexts]),
        mean_probability_random=mean([s.is_next_probability for s in randoms]),
        notices=list(lm.notices),
        cls_origin=_cls_origin(lm),
    )


def _cls_origin(lm: LoadedModel) -> ClsOrigin:
    from bertprobe import cls_origin

    return cls_origin.of(lm)


def read_pairs(path: str | Path) -> tuple[list[tuple[str, str]], list[bool | None], list[int]]:
    """Pairs from a csv / tsv / jsonl file with ``sentence_a``, ``sentence_b`` and optional ``is_next``."""
    rows = read_rows(path, ["sentence_a", "sentence_b"], ["is_next"])
    pairs, truth, lines = [], [], []
    for row in rows:
        raw = row.values.get("is_next", "").strip().lower()
        if raw and raw not in _TRUE | _FALSE:
            raise DataError(
                f"{path}, line {row.line}: is_next is {raw!r}",
                hint="Write is_next as 1/0 or true/false (1 = B really follows A), or leave it empty.",
            )
        pairs.append((row.values["sentence_a"], row.values["sentence_b"]))
        truth.append(None if not raw else raw in _TRUE)
        lines.append(row.line)
    return pairs, truth, lines


def read_sentences(path: str | Path) -> list[str]:
    """Consecutive sentences of a plain text file, one per line (blank lines skipped)."""
    lines = text_lines(read_text(path, hint="Give a text file with one sentence per line, in order."))
    sentences = [line.strip() for line in lines if line.strip()]
    if len(sentences) < 3:
        raise DataError(
            f"{path}: {len(sentences)} sentence(s); --shuffle needs at least 3 consecutive sentences",
            hint="Put one sentence per line, in the order they appear in the text.",
        )
    return sentences


def shuffled_pairs(sentences: Sequence[str], seed: int) -> tuple[list[tuple[str, str]], list[bool]]:
    """BERT's NSP data: for each sentence, its true successor or (50%) a random other sentence.

    A random second sentence is never A itself nor one that follows A anywhere in the text: with repeated
    lines, a pair the text holds would otherwise be scored as random.
    """
    # Compared as an uncased model reads them: "The end." and "the end." are one sentence to it, so a "random"
    # pick of one could be A's true next sentence (excluding a few more candidates is harmless on a cased one).
    keys = [" ".join(sentence.casefold().split()) for sentence in sentences]
    followers: dict[str, set[str]] = {}
    for first, second in pairwise(keys):
        followers.setdefault(first, set()).add(second)
    distinct = set(keys)
    for index, first in enumerate(keys[:-1]):
        if len(followers[first] | {first}) == len(distinct):
            raise DataError(
                f"every sentence of the text follows {sentences[index]!r} somewhere, so none can be its random next "
                "sentence",
                hint="Give a longer text with more different sentences for --shuffle.",
            )
    rng = random.Random(seed)
    pairs, truth = [], []
    for index in range(len(sentences) - 1):
        if rng.random() < 0.5:
            pairs.append((sentences[index], sentences[index + 1]))
            truth.append(True)
        else:
            excluded = followers[keys[index]] | {keys[index]}
            choices = [j for j in range(len(sentences)) if keys[j] not in excluded]
            pairs.append((sentences[index], sentences[rng.choice(choices)]))
            truth.append(False)
    return pairs, truth
