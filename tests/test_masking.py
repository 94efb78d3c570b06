"""masking: BERT's selection rate and 80/10/10 split hold over many tokens; specials are never touched."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bertprobe import masking

CLS, SEP, PAD, MASK_ID, UNK = 101, 102, 0, 103, 100
SPECIAL = {CLS, SEP, PAD, MASK_ID, UNK}
# A vocabulary shaped like BERT's: specials, [unusedN] slots, then ordinary pieces.
VOCAB = {"[PAD]": PAD, "[UNK]": UNK, "[CLS]": CLS, "[SEP]": SEP, "[MASK]": MASK_ID}
VOCAB |= {f"[unused{i}]": i + 1 for i in range(99)}
VOCAB |= {f"[unused{i}]": i + 5 for i in range(99, 995)}
VOCAB |= {f"word{i}": i for i in range(1000, 3000)}
VOCAB |= {f"##piece{i}": i for i in range(3000, 3500)}
ORDINARY = set(range(1000, 3500))


def _corpus(sequences: int, seed: int = 0) -> list[tuple[list[int], list[list[int]]]]:
    """Sequences with [CLS] ... [SEP] [PAD]..., a few [UNK]s, and words of one to four pieces."""
    rng = random.Random(seed)
    corpus = []
    for _ in range(sequences):
        ids, units = [CLS], []
        for _ in range(rng.randrange(20, 120)):
            if rng.random() < 0.02:
                ids.append(UNK)
                continue
            size = rng.choice([1, 1, 1, 1, 2, 2, 3, 4])
            units.append(list(range(len(ids), len(ids) + size)))
            ids.extend(rng.randrange(1000, 3000) for _ in range(size))
        ids.append(SEP)
        ids.extend([PAD] * rng.randrange(0, 5))
        corpus.append((ids, units))
    return corpus


CORPUS = _corpus(400)
REPLACEMENTS = masking.replacement_ids(VOCAB, SPECIAL)


def _plans(scheme: str, rate: float = 0.15, mask_prob: float = 0.8, random_prob: float = 0.1):
    for number, (ids, units) in enumerate(CORPUS):
        yield (
            ids,
            units,
            masking.mask_plan(
                ids,
                SPECIAL,
                MASK_ID,
                seed=number,
                rate=rate,
                scheme=scheme,
                units=None if scheme == "token" else units,
                mask_prob=mask_prob,
                random_prob=random_prob,
                replacements=REPLACEMENTS,
            ),
        )


@pytest.mark.parametrize("scheme", ["token", "whole-word", "span"])
def test_rate_and_80_10_10_split_over_many_tokens(scheme):
    selected = eligible = 0
    actions: Counter[str] = Counter()
    for ids, _, plan in _plans(scheme):
        eligible += sum(1 for i in ids if i not in SPECIAL)
        selected += len(plan.positions)
        actions.update(plan.actions)
    assert eligible > 20_000
    assert selected / eligible == pytest.approx(0.15, abs=0.01)
    total = sum(actions.values())
    if scheme == "token":  # per-token draws; word and span draws are per unit, so count units below
        assert actions["mask"] / total == pytest.approx(0.8, abs=0.02)
        assert actions["random"] / total == pytest.approx(0.1, abs=0.02)
        assert actions["keep"] / total == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("scheme", ["whole-word", "span"])
def test_unit_level_actions_split_80_10_10(scheme):
    per_unit: Counter[str] = Counter()
    for _, _, plan in _plans(scheme, rate=0.4):
        for group in plan.groups:
            kinds = {plan.action_at(p) for p in group}
            assert len(kinds) == 1, "a word or span is never half [MASK], half random"
            per_unit.update(kinds)
    total = sum(per_unit.values())
    assert total > 2500
    assert per_unit["mask"] / total == pytest.approx(0.8, abs=0.02)
    assert per_unit["random"] / total == pytest.approx(0.1, abs=0.02)
    assert per_unit["keep"] / total == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("scheme", ["token", "whole-word", "span"])
def test_specials_are_never_selected_and_random_tokens_are_ordinary(scheme):
    randoms = 0
    for ids, _, plan in _plans(scheme, rate=0.5, mask_prob=0.2, random_prob=0.6):
        assert not {ids[p] for p in plan.positions} & SPECIAL
        untouched = set(range(len(ids))) - set(plan.positions)
        assert all(plan.input_ids[p] == ids[p] for p in untouched)
        for position, action in zip(plan.positions, plan.actions, strict=True):
            seen = plan.input_ids[position]
            if action == "mask":
                assert seen == MASK_ID
            elif action == "keep":
                assert seen == ids[position]
            else:
                randoms += 1
                assert seen in ORDINARY, f"random replacement {seen} is special or an [unusedN] slot"
    assert randoms > 1000


def test_replacement_vocabulary_of_a_real_bert_tokenizer(mlm_path):
    from bertprobe.tokenizer import Tokenizer

    tok = Tokenizer.from_dir(mlm_path, 512)
    vocab = tok.backend.get_vocab(with_added_tokens=True)
    allowed = set(masking.replacement_ids(vocab, tok.special_ids))
    by_id = {i: t for t, i in vocab.items()}
    assert not allowed & set(tok.special_ids)
    assert not [by_id[i] for i in allowed if by_id[i].startswith("[") and by_id[i].endswith("]")]
    unused = [i for t, i in vocab.items() if t.startswith("[unused")]
    assert len(unused) > 900 and not allowed & set(unused)
    for ordinary in ("cat", "the", "##ing", ".", "[", "]", "<"):
        if ordinary in vocab:
            assert vocab[ordinary] in allowed
    assert len(allowed) == len(vocab) - len(unused) - 5  # everything but [unusedN] and the 5 specials


def test_bpe_style_placeholders_are_excluded():
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "Ġthe": 4, "<": 5, "madeupword0001": 6, "<0x0A>": 7, "a": 8}
    assert masking.replacement_ids(vocab, {0, 1, 2, 3}) == [4, 5, 8]


def test_whole_words_and_spans_are_never_cut():
    for scheme in ("whole-word", "span"):
        for ids, units, plan in _plans(scheme):
            starts = {unit[0]: unit for unit in units}
            for group in plan.groups:
                # a group is a run of complete, consecutive words
                cursor = 0
                words = 0
                while cursor < len(group):
                    unit = starts[group[cursor]]
                    assert group[cursor : cursor + len(unit)] == unit
                    cursor += len(unit)
                    words += 1
                between = set(range(group[0], group[-1] + 1)) - set(group)
                assert all(ids[p] in SPECIAL for p in between)  # only an [UNK] may sit inside a span
                assert words <= (1 if scheme == "whole-word" else masking.SPAN_MAX_WORDS)


def test_span_lengths_are_spanbert_geometric():
    weights = masking.span_length_weights()
    assert len(weights) == 10 and sum(weights) == pytest.approx(1.0)
    assert sum(length * w for length, w in enumerate(weights, start=1)) == pytest.approx(3.8, abs=0.01)  # paper: 3.8
    multi_word = total = 0
    for _, units, plan in _plans("span"):
        first_pieces = {unit[0] for unit in units}
        for group in plan.groups:
            total += 1
            multi_word += sum(p in first_pieces for p in group) > 1
    assert multi_word / total > 0.5


def test_same_seed_same_plan_and_selection_does_not_depend_on_the_actions():
    ids, _ = CORPUS[0]
    one = masking.mask_plan(ids, SPECIAL, MASK_ID, seed=7, replacements=REPLACEMENTS)
    assert one == masking.mask_plan(ids, SPECIAL, MASK_ID, seed=7, replacements=REPLACEMENTS)
    others = {
        tuple(masking.mask_plan(ids, SPECIAL, MASK_ID, seed=s, replacements=REPLACEMENTS).positions) for s in range(8)
    }
    assert len(others) > 4
    all_mask = masking.mask_plan(ids, SPECIAL, MASK_ID, seed=7, mask_prob=1.0, random_prob=0.0)
    assert all_mask.positions == one.positions and set(all_mask.actions) == {"mask"}


def test_labels_mark_exactly_the_selected_positions():
    ids, _ = CORPUS[1]
    plan = masking.mask_plan(ids, SPECIAL, MASK_ID, seed=3, replacements=REPLACEMENTS)
    labels = plan.labels()
    assert [i for i, label in enumerate(labels) if label != -100] == plan.positions
    assert all(labels[p] == ids[p] for p in plan.positions)


def test_short_texts_still_get_one_selection_and_each_masks_every_token():
    ids = [CLS, 1500, 1501, SEP]
    plan = masking.mask_plan(ids, SPECIAL, MASK_ID, seed=0, mask_prob=1.0, random_prob=0.0)
    assert len(plan.positions) == 1 and plan.positions[0] in (1, 2)
    # a word longer than the whole budget is still taken when nothing else fits
    plan = masking.mask_plan([CLS, 1500, 1501, 1502, SEP], SPECIAL, MASK_ID, seed=0, scheme="span", units=[[1, 2, 3]])
    assert plan.positions == [1, 2, 3]
    each = masking.mask_each([CLS, 1500, UNK, 1501, SEP], SPECIAL, MASK_ID)
    assert [p.positions for p in each] == [[1], [3]]
    assert each[0].input_ids == [CLS, MASK_ID, UNK, 1501, SEP]


def test_wordpiece_units_join_continuations():
    tokens = ["[CLS]", "the", "os", "##tric", "##h", "ran", "[SEP]"]
    special = [True, False, False, False, False, False, True]
    assert masking.wordpiece_units(tokens, special) == [[1], [2, 3, 4], [5]]


def test_bad_rates_are_refused():
    for rate in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            masking.budget(100, rate)
