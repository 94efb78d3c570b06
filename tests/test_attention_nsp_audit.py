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


def _attention_result(layers, tokens, special, cls_rows):
    """An AttentionResult with the given per-layer (entropy, special share) and [CLS] rows, for its readings."""
    from bertprobe.attention import AttentionResult, LayerSummary

    summaries = []
    for number, ((entropy, share), row) in enumerate(zip(layers, cls_rows, strict=True), start=1):
        best = max((i for i, s in enumerate(special) if not s), key=lambda i, row=row: row[i])
        summaries.append(LayerSummary(number, entropy, share / 2, share / 2, share, tokens[best], row[best]))
    return AttentionResult(
        model="m", revision=None, text=" ".join(tokens), tokens=tokens, special=special, num_layers=len(layers),
        num_heads=2, head=None, layer=None, layers=summaries, cls_to_token=cls_rows, token_to_cls=cls_rows,
        token_to_sep=cls_rows,
    )  # fmt: skip


def test_attention_reading_never_shows_50_percent_beside_more_than_on_the_words():
    from bertprobe.render.attention import readings

    tokens, special = ["[CLS]", "cat", "[SEP]"], [True, False, True]
    over = _attention_result([(1.0, 0.5004)], tokens, special, [[0.3, 0.4, 0.3]])
    line = " ".join(readings(over))
    # 50.04% of the attention on [CLS] and [SEP] is more than the words get, but "50%" beside it says it is not.
    assert "more than on the words" in line and "50.04%" in line and " 50%" not in line


def test_attention_reading_says_cls_looks_most_at_a_word_only_among_the_words(cli, minilm_path):
    # minilm's last layer: [CLS] keeps 0.36 on itself and gives 'mat', the word it looks at most, 0.18.
    code, table, _ = cli("attention", "The cat sat on the mat.", "-m", "minilm", "--json")
    doc = __import__("json").loads(table)
    last = doc["cls_to_token"][-1]
    assert code == 0 and max(last) > doc["layers"][-1]["cls_top_weight"] and doc["layers"][-1]["cls_top_token"] == "mat"
    code, table, _ = cli("attention", "The cat sat on the mat.", "-m", "minilm")
    reading = " ".join(table.split())
    assert code == 0 and "In the last layer [CLS] looks most at 'mat'" not in reading
    assert "of the words, [CLS] looks most at 'mat' (0.18)" in reading


def test_attention_reading_names_no_single_layer_or_word_where_the_numbers_tie():
    from bertprobe.render.attention import readings

    tokens, special = ["[CLS]", "the", "cat", ".", "[SEP]"], [True, False, False, False, True]
    even = [0.2] * 5
    # Near-uniform attention (a fresh or barely trained model): layers and words differ only in float noise.
    tied = _attention_result([(2.3219, 0.4), (2.32191, 0.4)], tokens, special, [even, [0.2, 0.2, 0.2, 0.2000001, 0.2]])
    line = " ".join(readings(tied))
    assert "most spread out in layer" not in line and "equally spread out in every layer (2.32 bits)" in line
    assert "looks most at" not in line and "looks at the 3 words equally (0.20 each)" in line
    some = _attention_result(
        [(2.0, 0.4), (2.3219, 0.4), (2.32191, 0.4)], tokens, special, [even, even, [0.2, 0.3, 0.1, 0.3, 0.1]]
    )
    line = " ".join(readings(some))
    assert "most spread out in layers 2 and 3 (2.32 bits)" in line
    assert "In the last layer [CLS] looks most at 'the' and '.' (0.30 each)" in line
    one = " ".join(readings(_attention_result([(1.5, 0.4)], tokens, special, [[0.2, 0.5, 0.1, 0.1, 0.1]])))
    assert "most spread out" not in one and "1.50 bits" in one and "looks most at 'the' (0.50)" in one


def test_nsp_tables_never_round_a_probability_across_the_cut_or_to_certainty(
    cli, tiny_pretraining_path, monkeypatch, tmp_path
):
    import io

    from rich.console import Console

    from bertprobe import models, nsp
    from bertprobe.render.nsp import nsp_table

    # 0.4996 as "0.500" beside a red "random" bar, 0.99996 (a real BERT's usual true-next pair) as a certain "1.000".
    lm = models.load(str(tiny_pretraining_path), "nsp", device="cpu")
    pairs = [("I was hungry.", "So I ate."), ("I was hungry.", "Cats purr.")]
    result = nsp.score(lm, pairs, [True, False], probabilities=[0.99996, 0.4996])
    console = Console(file=io.StringIO(), width=200)
    nsp_table(result, console)
    table = console.file.getvalue()
    rows = {line.split("│")[2].strip(): line for line in table.splitlines() if "So I ate." in line or "Cats" in line}
    assert "0.99996" in rows["So I ate."] and "0.4996" in rows["Cats purr."] and "1.000" not in table

    monkeypatch.setattr(nsp, "is_next_probabilities", lambda lm, pairs, progress=None: [0.4996] * len(pairs))
    pairs_file = tmp_path / "pairs.csv"
    pairs_file.write_text("sentence_a,sentence_b\nI was hungry.,Cats purr.\n")
    code, table, _ = cli("nsp", "--input", pairs_file, "-m", tiny_pretraining_path)
    assert (
        code == 0
        and "0.4996" in table
        and "0.500" not in table
        and "at 0.5 or above it predicts" in " ".join(table.split())
    )


def test_a_pair_too_long_for_the_model_is_named_by_its_line_or_number(cli, tiny_pretraining_path, tmp_path):
    long = " ".join(["word"] * 40) + "."
    table = tmp_path / "pairs.csv"
    table.write_text(f"sentence_a,sentence_b,is_next\nI was hungry.,So I ate.,1\n{long},{long},1\n")
    code, stdout, stderr = cli("nsp", "--pairs", table, "-m", tiny_pretraining_path)
    message = " ".join(stderr.split())
    assert code == 1 and stdout == "" and "Traceback" not in stderr
    assert f"{table}, line 3: the pair is 85 word pieces long" in message and "text 2" not in message
    code, _, stderr = cli("nsp", long, long, "-m", tiny_pretraining_path)
    message = " ".join(stderr.split())
    assert code == 1 and "the pair is 85 word pieces long" in message and "text 1" not in message


def test_attention_tables_never_show_some_attention_as_zero():
    # 0.004 of [CLS]'s attention on a token printed "0.00", as if it attended to nothing there.
    from bertprobe.render.attention import _shade

    assert _shade(0.004, 0.5).plain == "0.004"
    assert _shade(0.25, 0.5).plain == "0.25"
    assert _shade(0.0, 0.5).plain == "0.00"


def test_shuffle_never_draws_a_random_sentence_an_uncased_model_reads_as_the_true_next():
    # "The end." and "the end." are one sentence to an uncased BERT: after "It rained.", whose next line is
    # "The end.", a "random" pick of "the end." would be the true next sentence, scored as random.
    from bertprobe.nsp import shuffled_pairs

    sentences = ["It rained.", "The end.", "We slept.", "the end.", "Cats purr.", "Dogs bark.", "Birds sing."]
    for seed in range(40):
        pairs, truth = shuffled_pairs(sentences, seed)
        for (first, second), is_next in zip(pairs, truth, strict=True):
            if first == "It rained." and not is_next:
                assert second.casefold() != "the end."
