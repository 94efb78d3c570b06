"""Audit of nsp and attention edge cases: each test pins a property a user relies on."""

from __future__ import annotations

from itertools import pairwise

import pytest

from bertprobe.errors import DataError


def test_shuffle_never_labels_a_pair_of_the_text_random():
    from bertprobe.nsp import shuffled_pairs

    # Repeated lines: position alone would let "It rained." follow "He sat down." and call the pair random.
    sentences = ["He sat down.", "It rained.", "He sat down.", "It rained.", "The end.", "He sat down.", "Snow fell."]
    in_text = set(pairwise(sentences))
    for seed in range(50):
        pairs, truth = shuffled_pairs(sentences, seed)
        assert shuffled_pairs(sentences, seed) == (pairs, truth)
        for (a, b), is_next in zip(pairs, truth, strict=True):
            assert is_next == ((a, b) in in_text), (seed, a, b)
            assert is_next or a != b


def test_shuffle_refuses_a_text_with_no_possible_random_follower():
    from bertprobe.nsp import shuffled_pairs

    with pytest.raises(DataError, match="random"):
        shuffled_pairs(["Ping.", "Pong.", "Ping.", "Pong."], seed=0)


def test_find_word_counts_an_ideograph_glued_to_latin_letters(minilm_path):
    from bertprobe import models
    from bertprobe.tokens import find_word

    # BERT reads each ideograph as a word of its own, whatever follows it: the first 京 is occurrence 1.
    encoding = models.load("minilm", device="cpu").tokenizer.encode("東京bank is far from 京都.")
    found = find_word(encoding, "京")
    assert [w.start for w in found] == [1, 19]
    assert [encoding.tokens[i] for w in found for i in w.pieces] == ["京", "京"]
    assert find_word(encoding, "京", occurrence=1)[0].start == 1
    assert [w.start for w in find_word(encoding, "東京")] == [0]


@pytest.mark.parametrize("kind", ["albert", "xlm-roberta"])
def test_tokens_name_the_pieces_the_model_reads_even_unknown_ones(family_path, kind):
    from transformers import AutoTokenizer

    from bertprobe import models

    path = family_path(kind)
    text = "The steep bank. Über 🙂"
    reference = AutoTokenizer.from_pretrained(str(path))
    ids = reference(text)["input_ids"]
    assert reference.unk_token_id in ids  # a SentencePiece vocabulary without "T" or "🙂": the model reads <unk>
    encoding = models.load(str(path), device="cpu").tokenizer.encode(text)
    assert encoding.ids == ids
    assert encoding.tokens == reference.convert_ids_to_tokens(ids)
