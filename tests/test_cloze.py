"""cloze: precision@k computed right, and the shipped tiny-mlm meets its documented quality."""

from __future__ import annotations

import json

import pytest

from bertprobe import cloze


def test_precision_equals_a_plain_pipeline_count(cli, mlm_path):
    from transformers import pipeline

    code, stdout, _ = cli("cloze", "-m", mlm_path, "--json")
    assert code == 0
    doc = json.loads(stdout)
    fill = pipeline("fill-mask", model=str(mlm_path), device="cpu")
    hits1 = hits5 = copies = 0
    for item, mine in zip(cloze.builtin_items(), doc["items"], strict=True):
        top = [p["token_str"].strip().lower() for p in fill(item["text"], top_k=5)]
        assert top == [t.lower() for t in mine["top"]]
        hits1 += top[0] in item["answers"]
        hits5 += any(word in item["answers"] for word in top)
        copies += top[0] in item["text"].lower().replace("[mask]", " ").replace(".", " ").replace(",", " ").split()
    assert doc["precision_at_1"] == pytest.approx(hits1 / len(doc["items"]))
    assert doc["precision_at_k"] == pytest.approx(hits5 / len(doc["items"]))
    assert doc["copy_rate"] == pytest.approx(copies / len(doc["items"]))


def test_the_builtin_sets_are_well_formed_and_apart():
    builtin, heldout = cloze.builtin_items("builtin"), cloze.builtin_items("heldout")
    assert len(builtin) >= 50 and len(heldout) >= 100
    for item in builtin + heldout:
        assert item["text"].count("[MASK]") == 1
        assert item["answers"] and all(a == a.lower().strip() for a in item["answers"])
        assert len(item["answers"]) == len(set(item["answers"]))
    assert not {i["text"] for i in builtin} & {i["text"] for i in heldout}
    assert len({i["text"] for i in heldout}) == len(heldout)


def test_copy_rate_counts_top1_words_of_the_sentence_itself():
    assert cloze.sentence_words("The sun rises in the [MASK].") == {"the", "sun", "rises", "in"}
    assert "mask" not in cloze.sentence_words("It's a [mask] and a [MASK].")


def test_heldout_set_and_bad_set_names(cli):
    code, stdout, _ = cli("cloze", "-m", "tiny-mlm", "--set", "heldout", "--json")
    doc = json.loads(stdout)
    assert code == 0 and len(doc["items"]) == len(cloze.builtin_items("heldout")) and doc["cloze_set"] == "heldout"
    code, _, stderr = cli("cloze", "-m", "tiny-mlm", "--set", "nope")
    assert code == 1 and "--set 'nope'" in stderr


def test_shipped_tiny_mlm_meets_its_documented_quality(cli):
    # RECIPE.md reports these figures (on the answer sets tightened since: 0.300 / 0.650 before).
    code, stdout, _ = cli("cloze", "-m", "tiny-mlm", "--json")
    doc = json.loads(stdout)
    assert code == 0
    assert doc["precision_at_1"] == pytest.approx(11 / 60, abs=1e-9)
    assert doc["precision_at_k"] == pytest.approx(28 / 60, abs=1e-9)
    assert doc["copy_rate"] == pytest.approx(6 / 60, abs=1e-9)
    code, stdout, _ = cli("cloze", "-m", "minilm")
    assert code == 1  # an encoder without MLM head cannot be scored


def test_cloze_table_marks_hits(cli):
    code, table, _ = cli("cloze", "-m", "tiny-mlm", "-k", 3)
    assert code == 0 and "precision@1" in table and "precision@3" in table


def _cloze_file(tmp_path, *items):
    path = tmp_path / "cloze.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def test_a_sentence_with_two_masks_is_refused_not_half_scored(cli, tmp_path):
    data = _cloze_file(tmp_path, {"text": "The [MASK] sat on the [MASK].", "answers": ["cat"]})
    code, stdout, stderr = cli("cloze", "-m", "tiny-mlm", "--data", data)
    assert code == 1 and stdout == ""
    assert "line 1: 2 masks" in stderr and "Traceback" not in stderr


def test_top_k_above_the_vocabulary_ranks_the_whole_vocabulary(cli, tiny_roberta_path, tmp_path):
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(str(tiny_roberta_path)))
    data = _cloze_file(tmp_path, {"text": "the cat sat on the <mask>.", "answers": ["mat"]})
    code, stdout, stderr = cli("cloze", "-m", tiny_roberta_path, "--data", data, "-k", 100000, "--json")
    assert code == 0, stderr
    item = json.loads(stdout)["items"][0]
    assert len(item["top"]) == vocab and item["hit_rank"] is not None


def test_the_models_own_mask_token_is_not_a_word_of_the_sentence():
    # A RoBERTa top-1 "mask" must not count as copying its own sentence "... the <mask>."
    assert cloze.sentence_words("the cat sat on the <mask>.", "<mask>") == {"the", "cat", "sat", "on"}


def test_answers_no_single_word_piece_can_spell_are_announced(cli, tmp_path):
    data = _cloze_file(
        tmp_path,
        {"text": "Water freezes at zero degrees [MASK].", "answers": ["celsius", "centigrade"]},
        {"text": "The cat sat on the [MASK].", "answers": ["floor", "windowsill"]},
    )
    code, stdout, stderr = cli("cloze", "-m", "tiny-mlm", "--data", data, "--json")
    assert code == 0
    assert json.loads(stdout)["notices"][-1].startswith("1 of 2 sentence(s) have no answer that is one word piece")
    assert "can never count as hits" in stderr


def _predicting(monkeypatch, word: str):
    """tiny-mlm with its masked-LM head replaced by one whose top-1 is always ``word``."""
    import torch

    from bertprobe.models import load

    lm = load("tiny-mlm", head="mlm", device="cpu")
    piece = lm.tokenizer.token_to_id(word)

    def top1(lm, sequences, positions):
        logits = torch.zeros(len(sequences), lm.tokenizer.vocab_size)
        logits[:, piece] = 1.0
        return [row[None] for row in logits]

    monkeypatch.setattr(cloze, "masked_logits", top1)
    return lm


def test_an_answer_is_matched_as_the_model_spells_it(monkeypatch):
    # An uncased BERT reads "café" as "cafe" and can only ever write "cafe": that is a hit, and a copy of
    # the sentence's own "café", not a silent miss.
    lm = _predicting(monkeypatch, "cafe")
    items = [
        {"text": "We met at a [MASK] near the station.", "answers": ["Café"]},
        {"text": "The café was shut, so we tried another [MASK].", "answers": ["bar"]},
    ]
    result = cloze.evaluate(lm, items, top_k=3)
    assert [i.hit_rank for i in result.items] == [1, None]
    assert [i.copies for i in result.items] == [False, True]
    assert result.precision_at_1 == 0.5 and result.copy_rate == 0.5


def test_a_multi_word_answer_is_announced_as_out_of_reach(cli, tmp_path):
    # One mask predicts one piece: "ice cream" (two pieces) can never be a hit, though each word is one piece.
    data = _cloze_file(tmp_path, {"text": "For dessert we had [MASK].", "answers": ["ice cream"]})
    code, stdout, _ = cli("cloze", "-m", "tiny-mlm", "--data", data, "--json")
    assert code == 0
    assert json.loads(stdout)["notices"][-1].startswith("1 of 1 sentence(s) have no answer that is one word piece")


def test_a_word_in_quotation_marks_is_a_word_of_its_sentence(monkeypatch):
    # "He shouted 'fire' and ran for the fire." copies its sentence: the quote marks around 'fire' are not
    # part of the word (an apostrophe inside one, as in "dog's", is).
    lm = _predicting(monkeypatch, "fire")
    items = [
        {"text": "He shouted 'fire' and ran for the [MASK].", "answers": ["door"]},
        {"text": "'Fire,' she said, and pointed at the [MASK].", "answers": ["smoke"]},
        {"text": "The dogs' [MASK] was wet.", "answers": ["bed"]},
    ]
    result = cloze.evaluate(lm, items, top_k=3)
    assert [i.copies for i in result.items] == [True, True, False]
    assert result.copy_rate == pytest.approx(2 / 3)
    # The stem before an apostrophe is a word of the sentence too: BERT reads "dog's" as dog ' s.
    assert cloze.sentence_words("She brushed the dog's [MASK].") == {"she", "brushed", "the", "dog's", "dog"}


def test_a_top1_that_is_an_acceptable_answer_is_a_hit_not_a_copy(monkeypatch):
    # "way" stands in the sentence and is the answer: a right top-1, not the failure the copy rate counts.
    lm = _predicting(monkeypatch, "way")
    items = [
        {"text": "We walked all the way there, and took a taxi the [MASK] back.", "answers": ["way"]},
        {"text": "The way was long, so we asked for the [MASK] to the inn.", "answers": ["road", "path"]},
    ]
    result = cloze.evaluate(lm, items, top_k=3)
    assert [i.hit_rank for i in result.items] == [1, None]
    assert [i.copies for i in result.items] == [False, True]
    assert result.copy_rate == 0.5


def test_a_possessive_repeated_as_the_plain_word_is_a_copy(monkeypatch):
    lm = _predicting(monkeypatch, "dog")
    result = cloze.evaluate(lm, [{"text": "The dog's [MASK] wagged.", "answers": ["tail"]}], top_k=3)
    assert result.items[0].copies
