"""Sentence scores at corpus scale: pseudo-log-likelihood of many texts, and minimal-pair accuracy.

A text's pseudo-log-likelihood (PLL; Salazar et al. 2020) is the sum, over its tokens, of
ln P(token | the text with that token masked). Every masked copy of every text in a chunk goes
through :func:`bertprobe.mlm.masked_logits` together, packed by length into forward passes
of at most ``max_tokens`` padded word pieces, so short sentences share passes with each other
instead of each sentence paying for its own. The MLM head runs only at the one scored position
of each copy. Results come back in input order whatever the packing.

Memory: one forward pass holds about ``max_tokens`` x (4 x hidden + intermediate) floats of
activations plus the attention maps (heads x length^2 per copy), and each scored copy returns
one row of vocabulary logits (4 x vocab bytes: 122 KB for BERT's 30,522 pieces) until its pass
is reduced to one number. With the default budget (4,096 word pieces) a bert-base pass needs
about 150 MB; a chunk of texts is scored, written and dropped before the next is read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bertprobe.errors import InputError, MaskError, TextTooLongError
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered

METRICS = ("original", "within-word-l2r")
UNK_CHOICES = ("skip", "score")
DEFAULT_MAX_TOKENS = 4096

Progress = Callable[[int, int], None]

METRIC_DEFINITIONS = {
    "original": "log_prob = ln P(token | the text with only that token masked) (Salazar et al. 2020)",
    "within-word-l2r": "log_prob = ln P(token | the text with that token and the later word pieces of the same word "
    "masked) (Kauf & Ivanova 2023, minicons' within_word_l2r)",
}
UNK_DEFINITIONS = {
    "skip": "[UNK] tokens are left out like [CLS] and [SEP] (as fillmask --mode each does): the model's "
    "probability of 'unknown' says nothing about the word that was there",
    "score": "[UNK] tokens are scored like any other token (as minicons does)",
}
PLL_SUM = "pll = sum of log_prob over the scored tokens; pseudo_perplexity = exp(-pll / scored_tokens)"


@dataclass
class TokenScore:
    position: int  # index among the word pieces ([CLS] at 0)
    token: str
    token_id: int
    char_start: int
    char_end: int
    log_prob: float


@dataclass
class SentenceScore(Rendered):
    model: str
    revision: str | None
    source: str
    text: str
    metric: str
    unk: str
    pll: float
    pseudo_perplexity: float
    scored_tokens: int
    tokens: list[str]  # every word piece, special ones included
    scores: list[TokenScore]  # one per scored token, left to right
    left_out: int  # [UNK] tokens left out (--unk skip)
    definition: str
    notices: list[str] = field(default_factory=list)
    vocab_size: int | None = None  # what a blind, uniform guess would make the pseudo-perplexity


@dataclass
class MinimalPair:
    good: str
    bad: str
    group: str | None = None
    index: int = 0  # 1-based position in the file
    line: int | None = None


@dataclass
class PairScore:
    index: int
    line: int | None
    group: str
    good: str
    bad: str
    good_pll: float
    bad_pll: float
    good_tokens: int
    bad_tokens: int
    difference: float  # good_pll - bad_pll
    correct: bool  # good scored strictly above bad
    tie: bool


@dataclass
class GroupAccuracy:
    accuracy: float
    n: int
    correct: int
    ties: int


@dataclass
class PairsResult(Rendered):
    model: str
    revision: str | None
    source: str
    file: str
    metric: str
    unk: str
    accuracy: float
    n: int
    correct: int
    ties: int
    group_column: str | None
    by_group: dict[str, GroupAccuracy]
    pairs: list[PairScore]
    definition: str
    skipped: list[str] = field(default_factory=list)  # bad lines left out (--on-bad skip)
    notices: list[str] = field(default_factory=list)


def definition(metric: str, unk: str) -> str:
    return f"{METRIC_DEFINITIONS[metric]}; {PLL_SUM}; {UNK_DEFINITIONS[unk]}"


def check_options(metric: str, unk: str, max_tokens: int) -> None:
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r}", hint=f"Choose one of {', '.join(METRICS)}.")
    if unk not in UNK_CHOICES:
        raise InputError(f"unknown --unk {unk!r}", hint=f"Choose one of {', '.join(UNK_CHOICES)}.")
    if max_tokens < 1:
        raise InputError("--batch-size must be at least 1 word piece", hint=f"e.g. --batch-size {DEFAULT_MAX_TOKENS}")


@dataclass
class _Prepared:
    encoding: Any
    positions: list[int]  # scored positions
    copies: list[list[int]]  # one masked copy per scored position
    left_out: int


def _prepare(lm: LoadedModel, text: str, metric: str, unk: str, label: str) -> _Prepared:
    from bertprobe.mlm import normalise_masks

    tok = lm.tokenizer
    if tok.mask_token_id is None:
        raise MaskError(f"{lm.name}'s tokenizer has no mask token", hint="Pick a masked-LM checkpoint.")
    if not text.strip():
        raise InputError(f"{label} is empty", hint="Give a sentence to score.")
    encoding = tok.encode(normalise_masks(text, tok.mask_token))
    if len(encoding) > tok.model_max_length:
        raise TextTooLongError(
            f"{label} is {len(encoding)} word pieces long; {lm.name} reads at most {tok.model_max_length}"
        )
    if tok.mask_token_id in encoding.ids:
        raise MaskError(f"{label} holds a [MASK]; score masks each token itself", hint="Write the text without [MASK].")
    unk_id = tok.token_to_id(tok.unk_token)
    special = set(tok.special_ids)
    if unk == "score" and unk_id is not None:
        special.discard(unk_id)
    positions = [i for i, token_id in enumerate(encoding.ids) if token_id not in special]
    if not positions:
        raise InputError(f"{label} has no tokens to score (only special or unknown ones)", hint="Give a sentence.")
    word_ids: list[int | None] = []
    if metric == "within-word-l2r":
        # The tokenizer's own words (its pre-tokenizer's split), as Kauf & Ivanova and minicons use them.
        word_ids = list(tok.backend.encode(encoding.text, add_special_tokens=True).word_ids)
    copies = []
    for p in positions:
        copy = list(encoding.ids)
        copy[p] = tok.mask_token_id
        if word_ids and word_ids[p] is not None:
            q = p + 1
            while q < len(copy) and word_ids[q] == word_ids[p]:
                copy[q] = tok.mask_token_id
                q += 1
        copies.append(copy)
    left_out = sum(1 for i in encoding.ids if i == unk_id) if unk == "skip" else 0
    return _Prepared(encoding, positions, copies, left_out)


def text_problem(lm: LoadedModel, metric: str, unk: str) -> Callable[[Any], tuple[str | None, int]]:
    """For inputs.TextSource.check: why a text cannot be scored (or None), and its number of masked copies."""

    def problem(item: Any) -> tuple[str | None, int]:
        try:
            prepared = _prepare(lm, item.text, metric, unk, "the text")
        except InputError as err:
            return err.message, 0
        return None, len(prepared.copies)

    return problem


def pairs_columns(group_column: str | None) -> Any:
    """The columns of a minimal-pairs file: BLiMP's own names or good/bad, and the group column."""
    from bertprobe import inputs

    return inputs.Columns(
        text=("sentence_good", "good"),
        pair=("sentence_bad", "bad"),
        group=(group_column,) if group_column else ("phenomenon", "UID", "linguistics_term"),
        group_required=group_column is not None,
        option="--pairs",
    )


def pair_problem(lm: LoadedModel, metric: str, unk: str) -> Callable[[Any], tuple[str | None, int]]:
    """For inputs.TextSource.check on pairs: which sentence of a pair cannot be scored, and the pair's copies."""
    single = text_problem(lm, metric, unk)

    def problem(item: Any) -> tuple[str | None, int]:
        from bertprobe.inputs import InputText

        reason, work = single(item)
        if reason is None and item.pair is not None:
            reason, more = single(InputText(item.index, item.line, item.pair))
            return (None if reason is None else f"bad sentence: {reason}"), work + more
        return (None if reason is None else f"good sentence: {reason}"), work

    return problem


def score_texts(
    lm: LoadedModel,
    texts: Sequence[str],
    metric: str = "original",
    unk: str = "skip",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    progress: Progress | None = None,
    labels: Sequence[str] | None = None,
) -> list[SentenceScore]:
    """Score every text (see :func:`definition`); all their masked copies share forward passes.

    Identical texts, and texts that read as the same word pieces, are scored once. ``progress(done, total)``
    counts masked copies.
    """
    import torch

    from bertprobe.features import batches
    from bertprobe.mlm import masked_logits

    check_options(metric, unk, max_tokens)
    unique: dict[str, int] = {}
    prepared: list[_Prepared] = []
    for number, text in enumerate(texts):
        if text not in unique:
            label = labels[number] if labels is not None else f"text {number + 1}"
            unique[text] = len(prepared)
            prepared.append(_prepare(lm, text, metric, unk, label))
    # Texts that read as the same word pieces (case, spacing or accents the tokenizer drops) share one set of
    # copies: in different forward passes, padding noise would tell them apart in the last digits, and a minimal
    # pair the model cannot tell apart would count as right or wrong instead of as a tie.
    computed: dict[tuple[Any, ...], int] = {}
    starts: list[int] = []  # each prepared text's first row in sequences
    sequences: list[list[int]] = []
    targets: list[list[int]] = []
    gold_ids: list[int] = []
    for p in prepared:
        key = (tuple(p.encoding.ids), *map(tuple, p.copies))
        if key not in computed:
            computed[key] = len(sequences)
            sequences.extend(p.copies)
            targets.extend([pos] for pos in p.positions)
            gold_ids.extend(p.encoding.ids[pos] for pos in p.positions)
        starts.append(computed[key])
    gold = torch.tensor(gold_ids, dtype=torch.long)
    log_probs = torch.empty(len(sequences), dtype=torch.float64)
    done = 0
    for pack in batches([len(s) for s in sequences], batch_size=len(sequences), max_tokens=max_tokens):
        rows = torch.cat(
            masked_logits(lm, [sequences[i] for i in pack], [targets[i] for i in pack], max_tokens=max_tokens)
        )
        index = torch.tensor(pack, dtype=torch.long)
        picked = rows.log_softmax(dim=-1).gather(1, gold[index].unsqueeze(1)).squeeze(1)
        log_probs[index] = picked.double()
        done += len(pack)
        if progress is not None:
            progress(done, len(sequences))
    per_text: list[SentenceScore] = []
    tok = lm.tokenizer
    notices = list(lm.notices)
    described = definition(metric, unk)
    for p, start in zip(prepared, starts, strict=True):
        values = log_probs[start : start + len(p.positions)].tolist()
        scores = [
            TokenScore(
                position=pos,
                token=tok.id_to_token(p.encoding.ids[pos]),
                token_id=p.encoding.ids[pos],
                char_start=p.encoding.offsets[pos][0],
                char_end=p.encoding.offsets[pos][1],
                log_prob=value,
            )
            for pos, value in zip(p.positions, values, strict=True)
        ]
        pll = math.fsum(values)
        text_notices = list(notices)
        if p.left_out:
            text_notices.append(f"{p.left_out} {tok.unk_token} token(s) left out of the PLL (--unk score scores them)")
        per_text.append(
            SentenceScore(
                model=lm.name,
                revision=lm.revision,
                source=lm.source,
                text=p.encoding.text,
                metric=metric,
                unk=unk,
                pll=pll,
                pseudo_perplexity=math.exp(-pll / len(values)),
                scored_tokens=len(values),
                tokens=list(p.encoding.tokens),
                scores=scores,
                left_out=p.left_out,
                definition=described,
                notices=text_notices,
                vocab_size=tok.vocab_size,
            )
        )
    out = []
    for text in texts:
        result = per_text[unique[text]]
        out.append(result if result.text == text else _with_text(result, text))
    return out


def _with_text(result: SentenceScore, text: str) -> SentenceScore:
    import dataclasses

    return dataclasses.replace(result, text=text)


# ---------------------------------------------------------------------------------------------
# minimal pairs


def score_pair_chunk(
    lm: LoadedModel, items: Sequence[Any], source_label: str, metric: str, unk: str, max_tokens: int
) -> list[tuple[SentenceScore, SentenceScore]]:
    """The (good, bad) scores of one chunk of pairs; both sentences of every pair share the forward passes."""
    texts = [t for i in items for t in (i.text, i.pair or "")]
    labels = [f"{source_label}, line {i.line} ({side})" for i in items for side in ("good", "bad")]
    flat = score_texts(lm, texts, metric, unk, max_tokens, None, labels)
    return [(flat[2 * n], flat[2 * n + 1]) for n in range(len(items))]


def pairs_result(
    lm: LoadedModel,
    pairs: Sequence[MinimalPair],
    scores: Sequence[SentenceScore],
    metric: str,
    unk: str,
    file: str = "",
    group_column: str | None = None,
    skipped: Sequence[str] = (),
) -> PairsResult:
    """Accuracy from the sentence scores of the pairs (``scores`` = good, bad, good, bad, ...)."""
    scored: list[PairScore] = []
    for n, pair in enumerate(pairs):
        good, bad = scores[2 * n], scores[2 * n + 1]
        scored.append(
            PairScore(
                index=pair.index or n + 1,
                line=pair.line,
                # With a group column, a pair without a group is not "all": that names the total row
                group=pair.group if pair.group is not None else ("(no group)" if group_column else "all"),
                good=pair.good,
                bad=pair.bad,
                good_pll=good.pll,
                bad_pll=bad.pll,
                good_tokens=good.scored_tokens,
                bad_tokens=bad.scored_tokens,
                difference=good.pll - bad.pll,
                correct=good.pll > bad.pll,
                tie=good.pll == bad.pll,
            )
        )
    by_group: dict[str, GroupAccuracy] = {}
    for group in sorted({s.group for s in scored}):
        members = [s for s in scored if s.group == group]
        by_group[group] = _accuracy(members)
    overall = _accuracy(scored)
    notices = list(lm.notices)
    ties = [s.index for s in scored if s.tie]
    if ties:
        shown = ", ".join(map(str, ties[:10])) + (" ..." if len(ties) > 10 else "")
        notices.append(f"{len(ties)} pair(s) scored exactly equal and count as wrong: pair {shown}")
    unknown = sum(1 for s in scores if s.left_out)
    if unknown:
        # Leaving the same number out of both sides keeps a pair even; only pairs that lose more on one side
        # compare sums over a different share of their sentences. Say how many, in the model's own unk token.
        uneven = sum(1 for n in range(len(pairs)) if scores[2 * n].left_out != scores[2 * n + 1].left_out)
        unk_token = lm.tokenizer.unk_token
        notices.append(
            f"{unknown} sentence(s) hold {unk_token} tokens, left out of their PLL"
            + (
                f": in {uneven} pair(s) one sentence loses more of them than the other (--unk score scores them)"
                if uneven
                else f"; each pair loses as many on both sides (--unk score scores the {unk_token} tokens)"
            )
        )
    return PairsResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        file=file,
        metric=metric,
        unk=unk,
        accuracy=overall.accuracy,
        n=overall.n,
        correct=overall.correct,
        ties=overall.ties,
        group_column=group_column,
        by_group=by_group,
        pairs=scored,
        definition=definition(metric, unk) + "; a pair is correct when the good sentence's pll is strictly higher",
        skipped=list(skipped),
        notices=notices,
    )


def _accuracy(members: Sequence[PairScore]) -> GroupAccuracy:
    correct = sum(s.correct for s in members)
    return GroupAccuracy(correct / len(members) if members else 0.0, len(members), correct, sum(s.tie for s in members))
