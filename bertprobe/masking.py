"""Masking schemes as pure, seeded functions over token ids: ids in, a :class:`MaskPlan` out.

Nothing here runs a model or imports torch; fill-mask uses these plans to show what BERT
sees, and pretraining code can use them to build its inputs and labels.

A plan is made in two independent steps, each with its own random stream, so the same seed
selects the same positions whatever is later done to them:

1. **Selection** of units (single tokens, whole words, or spans of whole words) among the
   non-special tokens, until ``round(rate * eligible tokens)`` tokens are covered (at least
   one unit, as BERT's ``create_pretraining_data.py`` always predicts at least one token).
2. **Actions** on every selected unit: ``mask`` (``[MASK]``), ``random`` (a random ordinary
   token) or ``keep`` (left as it is but still predicted), drawn once per unit with
   probabilities ``mask_prob`` / ``random_prob`` / the rest (BERT: 0.8 / 0.1 / 0.1). For
   single tokens this is BERT's per-token rule; for words and spans one draw covers the whole
   unit, as SpanBERT does, so a word is never half ``[MASK]`` and half random.

Random replacements come from :func:`replacement_ids`: ordinary vocabulary only, never a
special token nor a placeholder such as ``[unused12]``, ``<unk>`` or ``madeupword0000``.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

MASK, RANDOM, KEEP = "mask", "random", "keep"
ACTIONS = (MASK, RANDOM, KEEP)
SCHEMES = ("token", "whole-word", "span")

BERT_MASK_PROB = 0.8
BERT_RANDOM_PROB = 0.1
SPAN_GEOMETRIC_P = 0.2  # SpanBERT: span lengths (in words) ~ Geometric(0.2), clipped at 10
SPAN_MAX_WORDS = 10

# Vocabulary entries that are not ordinary text: [unused0]-style and [PAD]-style slots,
# <unk>/<s>/<0x0A>-style entries of BPE and SentencePiece vocabularies, fairseq's madeupwordNNNN.
_PLACEHOLDER = re.compile(r"^(\[[^\[\]\s]+\]|<[^<>\s]+>|madeupword\d+)$")
REPLACEMENT_RULE = (
    "uniform over the ordinary vocabulary: every id except special tokens and placeholder entries "
    "([unusedN], [PAD]-style, <unk>-style, <0x0A>-style byte tokens, madeupwordN)"
)


@dataclass(frozen=True)
class MaskPlan:
    """What to show the model and what it must predict.

    ``positions`` are the selected token positions in ascending order and ``actions[i]`` is
    what was done at ``positions[i]``; ``groups`` are the selected units (each a list of
    positions: one token, one word, or one span) in ascending order of their first position.
    """

    original_ids: list[int]
    input_ids: list[int]
    positions: list[int]
    actions: list[str]
    groups: list[list[int]]

    def action_at(self, position: int) -> str | None:
        try:
            return self.actions[self.positions.index(position)]
        except ValueError:
            return None

    def labels(self, ignore_index: int = -100) -> list[int]:
        """Targets for a masked-LM loss: the original id at selected positions, ``ignore_index`` elsewhere."""
        labels = [ignore_index] * len(self.original_ids)
        for position in self.positions:
            labels[position] = self.original_ids[position]
        return labels


def as_rng(seed: int | str | random.Random) -> random.Random:
    """A ``random.Random`` from a seed (int or str: both hash the same in every process)."""
    return seed if isinstance(seed, random.Random) else random.Random(seed)


def eligible_positions(ids: Sequence[int], special_ids: Collection[int]) -> list[int]:
    """Positions a scheme may select: every token that is not special ([CLS], [SEP], [PAD], [MASK], ...)."""
    return [i for i, token_id in enumerate(ids) if token_id not in special_ids]


def token_units(ids: Sequence[int], special_ids: Collection[int]) -> list[list[int]]:
    """Every non-special token as a unit of its own."""
    return [[i] for i in eligible_positions(ids, special_ids)]


def wordpiece_units(tokens: Sequence[str], special: Sequence[bool]) -> list[list[int]]:
    """Whole words from WordPiece strings: a ``##`` piece continues the word before it.

    (Callers with character offsets can pass ``[w.pieces for w in bertprobe.tokens.words(enc)]``
    instead, which also works for BPE vocabularies.)
    """
    units: list[list[int]] = []
    for index, (token, is_special) in enumerate(zip(tokens, special, strict=True)):
        if is_special:
            continue
        if token.startswith("##") and units and units[-1][-1] == index - 1:
            units[-1].append(index)
        else:
            units.append([index])
    return units


def budget(eligible: int, rate: float) -> int:
    """How many tokens to select: ``round(rate * eligible)``, at least one when anything is eligible."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must be in (0, 1], not {rate}")
    if eligible == 0:
        return 0
    return min(eligible, max(1, math.floor(eligible * rate + 0.5)))


def select_units(units: Sequence[Sequence[int]], rate: float, rng: random.Random) -> list[list[int]]:
    """Whole units in random order until the token budget is met (BERT's whole-word rule).

    A unit that would overshoot the budget is skipped, as in ``create_pretraining_data.py``;
    if no unit fits at all, the first one drawn is taken so something is always selected.
    With single-token units this is plain token selection.
    """
    target = budget(sum(len(u) for u in units), rate)
    order = list(range(len(units)))
    rng.shuffle(order)
    chosen: list[int] = []
    covered = 0
    for index in order:
        if covered >= target:
            break
        if covered + len(units[index]) > target:
            continue
        chosen.append(index)
        covered += len(units[index])
    if not chosen and order:
        chosen.append(order[0])
    return [list(units[i]) for i in sorted(chosen)]


def span_length_weights(p: float = SPAN_GEOMETRIC_P, max_words: int = SPAN_MAX_WORDS) -> list[float]:
    """P(span of 1..max_words words): Geometric(p) clipped at ``max_words`` and renormalised (mean 3.8 for p=0.2)."""
    raw = [p * (1 - p) ** (length - 1) for length in range(1, max_words + 1)]
    total = sum(raw)
    return [w / total for w in raw]


def select_spans(
    units: Sequence[Sequence[int]],
    rate: float,
    rng: random.Random,
    p: float = SPAN_GEOMETRIC_P,
    max_words: int = SPAN_MAX_WORDS,
) -> list[list[int]]:
    """SpanBERT's selection: spans of consecutive whole words with geometric lengths, up to the budget.

    Each round draws a length L (in words) and a random unselected start word, then takes up to
    L consecutive unselected words while the token budget allows. Whole words are never cut
    (SpanBERT cuts the last word at the budget); if every word is longer than the whole budget,
    one word is taken anyway so something is always selected.
    """
    target = budget(sum(len(u) for u in units), rate)
    lengths = list(range(1, max_words + 1))
    weights = span_length_weights(p, max_words)
    taken = [False] * len(units)
    spans: list[list[int]] = []
    covered = 0
    while covered < target:
        room = target - covered
        fitting = [i for i, unit in enumerate(units) if not taken[i] and len(unit) <= room]
        if not fitting:
            if not spans and units:  # every word is longer than the whole budget: take one anyway
                spans.append(list(units[rng.randrange(len(units))]))
            break
        length = rng.choices(lengths, weights)[0]
        start = fitting[rng.randrange(len(fitting))]
        span: list[int] = []
        index = start
        while index < len(units) and length > 0 and not taken[index] and len(units[index]) <= room:
            span.extend(units[index])
            room -= len(units[index])
            taken[index] = True
            index += 1
            length -= 1
        covered += len(span)
        spans.append(span)
    return sorted(spans)


def draw_actions(
    groups: Sequence[Sequence[int]],
    rng: random.Random,
    mask_prob: float = BERT_MASK_PROB,
    random_prob: float = BERT_RANDOM_PROB,
) -> list[str]:
    """One action per group: mask with ``mask_prob``, random with ``random_prob``, keep otherwise."""
    if mask_prob < 0 or random_prob < 0 or mask_prob + random_prob > 1 + 1e-9:
        raise ValueError("mask_prob and random_prob must be non-negative and sum to at most 1")
    actions = []
    for _ in groups:
        draw = rng.random()
        actions.append(MASK if draw < mask_prob else RANDOM if draw < mask_prob + random_prob else KEEP)
    return actions


def replacement_ids(vocab: Mapping[str, int], special_ids: Collection[int]) -> list[int]:
    """Ids random replacements are drawn from, in ascending order (see ``REPLACEMENT_RULE``)."""
    return sorted(
        token_id
        for token, token_id in vocab.items()
        if token_id not in special_ids and token.strip() and not _PLACEHOLDER.match(token)
    )


def apply(
    ids: Sequence[int],
    groups: Sequence[Sequence[int]],
    group_actions: Sequence[str],
    mask_id: int,
    replacements: Sequence[int] = (),
    rng: random.Random | None = None,
) -> MaskPlan:
    """Carry out the actions: every token of a ``random`` group gets its own random replacement."""
    if RANDOM in group_actions and (not replacements or rng is None):
        raise ValueError("random replacements need replacement ids and an rng")
    seen = list(ids)
    by_position: dict[int, str] = {}
    for group, action in zip(groups, group_actions, strict=True):
        for position in group:
            if action == MASK:
                seen[position] = mask_id
            elif action == RANDOM:
                seen[position] = replacements[rng.randrange(len(replacements))]
            by_position[position] = action
    positions = sorted(by_position)
    return MaskPlan(
        original_ids=list(ids),
        input_ids=seen,
        positions=positions,
        actions=[by_position[p] for p in positions],
        groups=sorted(list(g) for g in groups),
    )


def mask_plan(
    ids: Sequence[int],
    special_ids: Collection[int],
    mask_id: int,
    *,
    seed: int | str,
    rate: float = 0.15,
    scheme: str = "token",
    units: Sequence[Sequence[int]] | None = None,
    mask_prob: float = BERT_MASK_PROB,
    random_prob: float = BERT_RANDOM_PROB,
    replacements: Sequence[int] = (),
) -> MaskPlan:
    """Select and corrupt in one call (BERT's pretraining defaults).

    ``scheme``: ``token`` (single tokens), ``whole-word`` or ``span``; the latter two need
    ``units`` (the positions of each word, in order). Selection and actions use separate
    random streams derived from ``seed``, so changing ``mask_prob`` never changes the selection.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "token" or units is None:
        if scheme != "token":
            raise ValueError(f"the {scheme} scheme needs word units")
        units = token_units(ids, special_ids)
    else:
        units = [[p for p in unit if ids[p] not in special_ids] for unit in units]
        units = [u for u in units if u]
    select_rng = random.Random(f"select/{seed}")
    action_rng = random.Random(f"actions/{seed}")
    groups = select_spans(units, rate, select_rng) if scheme == "span" else select_units(units, rate, select_rng)
    actions = draw_actions(groups, action_rng, mask_prob, random_prob)
    return apply(ids, groups, actions, mask_id, replacements, action_rng)


def mask_positions(ids: Sequence[int], positions: Sequence[int], mask_id: int) -> MaskPlan:
    """A plan that masks exactly the given positions (one group each)."""
    groups = [[p] for p in sorted(set(positions))]
    return apply(ids, groups, [MASK] * len(groups), mask_id)


def mask_each(ids: Sequence[int], special_ids: Collection[int], mask_id: int) -> list[MaskPlan]:
    """One plan per non-special token, masking only it: the variants pseudo-log-likelihood scores."""
    return [mask_positions(ids, [p], mask_id) for p in eligible_positions(ids, special_ids)]
