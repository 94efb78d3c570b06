"""nsp and attention: values equal plain transformers calls; refusals are clear."""

from __future__ import annotations

import json

import pytest
import torch

PAIRS = [
    ("The storm knocked out the power.", "We lit candles and waited."),
    ("She opened the fridge.", "Penguins live in the Southern Hemisphere."),
    ("A short one.", "Another sentence that is a good deal longer than the first one is."),
]


def test_nsp_probabilities_equal_plain_bert_for_pretraining(cli, tiny_pretraining_path, tmp_path):
    from transformers import AutoTokenizer, BertForPreTraining

    tok = AutoTokenizer.from_pretrained(str(tiny_pretraining_path))
    ref = BertForPreTraining.from_pretrained(str(tiny_pretraining_path)).eval()
    expected = []
    for a, b in PAIRS:
        with torch.no_grad():
            logits = ref(**tok(a, b, return_tensors="pt")).seq_relationship_logits
        expected.append(float(logits.softmax(-1)[0, 0]))  # class 0 = "B follows A"

    pairs_file = tmp_path / "pairs.tsv"
    pairs_file.write_text("sentence_a\tsentence_b\tis_next\n" + "".join(f"{a}\t{b}\t1\n" for a, b in PAIRS))
    code, stdout, _ = cli("nsp", "--pairs", pairs_file, "-m", tiny_pretraining_path, "--json")
    assert code == 0
    doc = json.loads(stdout)
    got = [p["is_next_probability"] for p in doc["pairs"]]
    assert got == pytest.approx(expected, abs=1e-5)
    assert [p["line"] for p in doc["pairs"]] == [2, 3, 4]
    assert doc["accuracy"] == pytest.approx(sum(p >= 0.5 for p in expected) / 3)

    # Only true next pairs: the footer must not promise a 50% chance level that an always-"next" head beats.
    code, table, _ = cli("nsp", "--pairs", pairs_file, "-m", tiny_pretraining_path)
    assert code == 0 and "chance level is 50%" not in table and "every pair here is a true next pair" in table

    code, stdout, _ = cli("nsp", PAIRS[0][0], PAIRS[0][1], "-m", tiny_pretraining_path, "--json")
    assert json.loads(stdout)["pairs"][0]["is_next_probability"] == pytest.approx(expected[0], abs=1e-5)


def test_nsp_score_encodes_each_pair_once_and_scores_it_as_before(tiny_pretraining_path, monkeypatch):
    # One pair encoding serves the length check and the batch: the same numbers, refusals and order as before.
    from bertprobe import models, nsp
    from bertprobe.errors import InputError, TextTooLongError

    lm = models.load(str(tiny_pretraining_path), "nsp", device="cpu")
    before = nsp.is_next_probabilities(lm, PAIRS)  # encodes every pair for the batch, as score did
    encoded = []
    plain = lm.tokenizer.encode

    def counting(text, pair=None):
        if pair is not None:
            encoded.append((text, pair))
        return plain(text, pair)

    monkeypatch.setattr(lm.tokenizer, "encode", counting)
    result = nsp.score(lm, PAIRS, progress=lambda done, total: None)
    assert encoded == PAIRS
    assert [p.is_next_probability for p in result.pairs] == before
    # Refusals still name the pair and come before any pair is scored.
    monkeypatch.setattr(lm.backend, "nsp_logits", lambda *args: pytest.fail("scored before every pair was checked"))
    with pytest.raises(InputError, match=r"^pair 2: sentence B has no words"):
        nsp.score(lm, [PAIRS[0], ("I was hungry.", "")])
    with pytest.raises(TextTooLongError, match=r"^pair 2: the pair is [0-9]+ word pieces long"):
        nsp.score(lm, [PAIRS[0], ("word " * 100, "Hello.")])


def test_shuffle_builds_half_true_half_random_pairs_reproducibly(cli, tiny_pretraining_path, tmp_path):
    from bertprobe.nsp import shuffled_pairs

    sentences = [f"Sentence number {i} of the story." for i in range(400)]
    pairs, truth = shuffled_pairs(sentences, seed=3)
    assert 0.43 < sum(truth) / len(truth) < 0.57
    for (a, b), is_next in zip(pairs, truth, strict=True):
        follows = sentences.index(b) == sentences.index(a) + 1
        assert follows == is_next
    assert shuffled_pairs(sentences, seed=3) == (pairs, truth)

    story = tmp_path / "story.txt"
    story.write_text("\n".join(sentences[:12]) + "\n")
    code, stdout, _ = cli("nsp", "--shuffle", story, "-m", tiny_pretraining_path, "--json", "--seed", 3)
    doc = json.loads(stdout)
    assert code == 0 and doc["mode"] == "shuffle" and len(doc["pairs"]) == 11
    assert doc["accuracy"] is not None
    code, table, _ = cli("nsp", "--shuffle", story, "-m", tiny_pretraining_path, "--seed", 3)
    assert code == 0 and "NSP accuracy" in table and "chance level is 50%" in table


def test_models_without_nsp_head_are_refused_with_the_reason(cli, minilm_path, mlm_path):
    code, _, stderr = cli("nsp", "a", "b", "-m", "minilm")
    assert code == 1 and "no NSP head" in stderr and "Traceback" not in stderr
    code, _, stderr = cli("nsp", "a", "b", "-m", mlm_path)
    assert code == 1 and "no NSP head" in stderr


def test_nsp_input_errors(cli, tiny_pretraining_path, tmp_path):
    code, _, stderr = cli("nsp", "only one sentence", "-m", tiny_pretraining_path)
    assert code == 1 and "give two sentences" in stderr
    bad = tmp_path / "pairs.csv"
    bad.write_text("sentence_a,sentence_b,is_next\na,b,maybe\n")
    code, _, stderr = cli("nsp", "--pairs", bad, "-m", tiny_pretraining_path)
    assert code == 1 and "line 2" in stderr and "is_next" in stderr


def test_attention_equals_plain_transformers_and_rows_sum_to_one(cli, minilm_path):
    from transformers import AutoModel, AutoTokenizer

    text = "The bank raised its interest rates."
    code, stdout, _ = cli("attention", text, "-m", "minilm", "--layer", 4, "--json")
    assert code == 0
    doc = json.loads(stdout)
    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    ref = AutoModel.from_pretrained(str(minilm_path), attn_implementation="eager").eval()
    with torch.no_grad():
        attentions = ref(**tok(text, return_tensors="pt"), output_attentions=True).attentions
    mean = torch.stack([a[0] for a in attentions]).mean(1)  # [layers, T, T]
    assert doc["tokens"] == tok.convert_ids_to_tokens(tok(text)["input_ids"])
    torch.testing.assert_close(torch.tensor(doc["cls_to_token"]), mean[:, 0, :], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.tensor(doc["token_to_cls"]), mean[:, :, 0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.tensor(doc["token_to_sep"]), mean[:, :, -1], atol=1e-5, rtol=1e-4)
    matrix = torch.tensor(doc["matrix"])
    torch.testing.assert_close(matrix, mean[3], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(matrix.sum(-1), torch.ones(matrix.shape[0]), atol=1e-5, rtol=0)
    probs = attentions[2][0]  # layer 3: [heads, T, T]
    entropy = -(probs * probs.clamp_min(1e-12).log2()).sum(-1).mean()
    assert doc["layers"][2]["entropy_bits"] == pytest.approx(float(entropy), abs=1e-4)
    special = probs.mean(0)[:, [0, probs.shape[-1] - 1]].sum(-1).mean()
    assert doc["layers"][2]["special_share"] == pytest.approx(float(special), abs=1e-5)


def test_attention_single_head_table_and_plot(cli, minilm_path, tmp_path):
    code, stdout, _ = cli("attention", "a cat [MASK] here", "-m", "minilm", "--head", 2, "--json")
    doc = json.loads(stdout)
    assert code == 0 and doc["head"] == 2
    for row in doc["cls_to_token"]:
        assert sum(row) == pytest.approx(1.0, abs=1e-5)
    plot = tmp_path / "attention.png"
    code, table, stderr = cli("attention", "The cat sat on the mat.", "-m", "minilm", "--layer", 2, "--plot", plot)
    assert code == 0 and plot.stat().st_size > 5000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert "[CLS] attends to each token" in table and "layer 2" in table
    code, _, stderr = cli("attention", "x", "-m", "minilm", "--plot", tmp_path / "missing" / "a.png")
    assert code == 1 and "does not exist" in stderr and "Traceback" not in stderr
    code, _, stderr = cli("attention", "", "-m", "minilm")
    assert code == 1 and "no words to look at" in stderr
    code, _, stderr = cli("attention", "x", "-m", "minilm", "--layer", 9)
    assert code == 1 and "has layers 1 to 6" in stderr


def test_nsp_reading_judges_the_head_only_where_the_pairs_can_show_it(cli, tiny_pretraining_path, tmp_path):
    from bertprobe import models, nsp
    from bertprobe.render.nsp import readings

    lm = models.load(str(tiny_pretraining_path), "nsp", device="cpu")
    pairs = [(f"Sentence {i}.", f"Sentence {i + 1}.") for i in range(10)]

    def reading(truth, probabilities):
        result = nsp.score(lm, pairs[: len(truth)], truth, probabilities=probabilities)
        return " ".join(readings(result))

    # A head that says "next" to everything: 80% right on 8 true and 2 random pairs, yet it tells nothing apart.
    always = reading([True] * 8 + [False] * 2, [0.9] * 10)
    assert "80% of 10 pairs" in always and "carries" not in always and "no better than guessing" in always
    only_next = reading([True] * 10, [0.9] * 10)
    assert "carries" not in only_next and "every pair is a true next pair" in only_next
    few = reading([True, False, True], [0.9, 0.1, 0.9])
    assert "carries" not in few and "too few" in few
    good = reading([True, False] * 5, [0.9, 0.1] * 5)
    assert "so [CLS] carries what next-sentence prediction trained it for" in good

    story = tmp_path / "story.txt"
    story.write_text("The storm knocked out the power.\nWe lit candles and waited.\nBy morning it was back.\n")
    code, table, _ = cli("nsp", "--shuffle", story, "-m", tiny_pretraining_path)
    assert code == 0 and "too few" in " ".join(table.split())


def test_attention_counts_a_typed_sep_as_sep_everywhere(cli, minilm_path):
    from transformers import AutoModel, AutoTokenizer

    text = "The cat sat. [SEP] It purred."
    code, stdout, _ = cli("attention", text, "-m", "minilm", "--json")
    assert code == 0
    doc = json.loads(stdout)
    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    ref = AutoModel.from_pretrained(str(minilm_path), attn_implementation="eager").eval()
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        attentions = ref(**enc, output_attentions=True).attentions
    mean = torch.stack([a[0] for a in attentions]).mean(1)  # [layers, T, T]
    ids = enc["input_ids"][0].tolist()
    specials = [i for i, t in enumerate(ids) if t in (tok.cls_token_id, tok.sep_token_id)]
    assert len(specials) == 3
    for row, layer in zip(doc["layers"], mean, strict=True):
        assert row["special_share"] == pytest.approx(float(layer[:, specials].sum(-1).mean()), abs=1e-5)
        assert row["special_share"] >= row["to_cls"] + row["to_sep"] - 1e-6
        assert row["cls_top_token"] not in ("[CLS]", "[SEP]")
    assert [doc["tokens"][i] for i, s in enumerate(doc["special"]) if s] == ["[CLS]", "[SEP]", "[SEP]"]


def test_attention_input_names_a_line_with_no_words_before_any_work_and_skip_leaves_it_out(
    cli, tiny_pretraining_path, tmp_path
):
    # A zero-width space, control characters or a typed [SEP] leave only special tokens: no words to look at.
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The cat sat.\n\u200b\nA dog ran.\n\x01\x02\n[SEP]\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = cli("attention", "--input", corpus, "--out", out, "-m", tiny_pretraining_path)
    message = stderr.replace("\n", " ")
    assert code == 1 and stdout == "" and not out.exists() and "Traceback" not in stderr
    assert "line 2: the text has no words to look at" in message and "nothing was computed" in message
    assert "4: the text has no words" in message and "5: the text has no words" in message
    assert "--on-bad skip" in message

    code, stdout, stderr = cli(
        "attention", "--input", corpus, "--on-bad", "skip", "--json", "-m", tiny_pretraining_path
    )
    assert code == 0, stderr
    assert [(d["index"], d["line"]) for d in map(json.loads, stdout.splitlines())] == [(1, 1), (3, 3)]
    assert "skipped 3 bad line 2: the text has no words" in stderr.replace("\n", " ")


def test_a_pair_with_a_side_that_has_no_words_is_refused_everywhere(cli, tiny_pretraining_path, tmp_path):
    # An empty sentence, a zero-width space or control characters: the head would still give a probability, for
    # a pair that is not two sentences.
    code, stdout, stderr = cli("nsp", "", "The room was dark.", "-m", tiny_pretraining_path)
    assert code == 1 and stdout == "" and "sentence A has no words" in stderr and "Traceback" not in stderr
    code, _, stderr = cli("nsp", "I was hungry.", "\u200b", "-m", tiny_pretraining_path)
    assert code == 1 and "sentence B has no words" in stderr
    code, _, stderr = cli("nsp", "[SEP]", "Hello.", "-m", tiny_pretraining_path)
    assert code == 1 and "sentence A has no words" in stderr
    table = tmp_path / "pairs.csv"
    table.write_text("sentence_a,sentence_b\nI was hungry.,So I ate.\n\u200b,The room was dark.\n", encoding="utf-8")
    code, _, stderr = cli("nsp", "--pairs", table, "-m", tiny_pretraining_path)
    assert code == 1 and f"{table}, line 3: sentence A has no words" in stderr.replace("\n", " ")
    code, _, stderr = cli("nsp", "--input", table, "-m", tiny_pretraining_path)
    assert code == 1 and "line 3: sentence A has no words" in stderr.replace("\n", " ")
    code, stdout, stderr = cli("nsp", "--input", table, "--on-bad", "skip", "--json", "-m", tiny_pretraining_path)
    assert code == 0, stderr
    assert [(d["index"], d["line"]) for d in map(json.loads, stdout.splitlines())] == [(1, 2)]


def test_nsp_reading_never_rounds_a_miss_away_and_counts_one_pair_as_one(cli, tiny_pretraining_path):
    from bertprobe import models, nsp
    from bertprobe.render.nsp import readings

    lm = models.load(str(tiny_pretraining_path), "nsp", device="cpu")
    pairs = [(f"Sentence {i}.", f"Sentence {i + 1}.") for i in range(200)]
    # 199 of 200 right is 99.5%: "100%" would say the head never missed.
    truth = [True, False] * 100
    probabilities = [0.9, 0.1] * 99 + [0.9, 0.9]
    result = nsp.score(lm, pairs, truth, probabilities=probabilities)
    line = " ".join(readings(result))
    assert "right on 99.5% of 200 pairs" in line and "99% of the random ones" in line
    one = " ".join(readings(nsp.score(lm, pairs[:1], [True], probabilities=[0.9])))
    assert "of 1 pair," in one and "1 pairs" not in one


def test_percentages_read_100_or_0_only_when_exact():
    from bertprobe.render import percent

    assert percent(0.9975) == "99.8%" and percent(0.99996, 1) == "99.996%" and percent(1.0) == "100%"
    assert percent(0.001) == "0.1%" and percent(0.0) == "0%" and percent(0.5) == "50%" and percent(0.8331, 1) == "83.3%"


def test_attention_reading_names_the_head_and_never_rounds_the_words_share_away(cli, minilm_path, tmp_path):
    # minilm's head 5 puts 99.8% of its layer-4 attention on [CLS] and [SEP] for "Hi": "100% of all attention"
    # would say the words get none, and that every head does it.
    from bertprobe import models
    from bertprobe.attention import attention
    from bertprobe.render import percent
    from bertprobe.render.jsonl import summarise_cells

    result = attention(models.load("minilm", device="cpu"), "Hi", head=5)
    heaviest = max(result.layers, key=lambda row: row.special_share)
    assert 0.995 < heaviest.special_share < 1
    code, table, _ = cli("attention", "Hi", "-m", "minilm", "--head", 5)
    reading = " ".join(table.split())
    assert code == 0 and f"In layer {heaviest.layer}, 99.8% of head 5's attention lands on [CLS] and [SEP]" in reading
    assert "100%" not in reading and "all attention" not in reading
    cell = summarise_cells(result)[0]
    assert cell.startswith(f"last layer: {percent(result.layers[-1].special_share)} of head 5's attention on special")
    code, table, _ = cli("attention", "Hi", "-m", "minilm")
    assert code == 0 and "of all attention lands on [CLS] and [SEP]" in " ".join(table.split())


def test_attention_input_with_a_layer_or_head_the_model_lacks_is_one_error_not_a_bad_line(cli, tmp_path):
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The cat sat.\nA dog ran.\n")
    for option, message in (("--layer", "--layer 9 does not exist"), ("--head", "--head 13 does not exist")):
        value = 9 if option == "--layer" else 13
        for on_bad in ("stop", "skip"):
            code, stdout, stderr = cli(
                "attention", "--input", corpus, option, value, "-m", "minilm", "--on-bad", on_bad
            )
            first = stderr.splitlines()[0]
            assert code == 1 and stdout == "" and first.startswith(f"error: {message}"), stderr
            assert "line" not in first and "--on-bad" not in stderr and "Traceback" not in stderr


def _nsp_reading(model_path, per_kind: int, right: int) -> str:
    """The reading of a head that is right on ``right`` of ``per_kind`` true next and as many random pairs."""
    return _nsp_mix_reading(model_path, (right, per_kind - right), (right, per_kind - right))


def _nsp_mix_reading(model_path, nexts: tuple[int, int], randoms: tuple[int, int]) -> str:
    """The reading of a head right and wrong on (right, wrong) true next pairs and (right, wrong) random ones."""
    from bertprobe import models, nsp
    from bertprobe.render.nsp import readings

    lm = models.load(str(model_path), "nsp", device="cpu")
    pairs = [(f"Sentence {i}.", f"Sentence {i + 1}.") for i in range(sum(nexts) + sum(randoms))]
    truth = [True] * sum(nexts) + [False] * sum(randoms)
    probabilities = [0.9] * nexts[0] + [0.1] * nexts[1] + [0.1] * randoms[0] + [0.9] * randoms[1]
    return " ".join(" ".join(readings(nsp.score(lm, pairs, truth, probabilities=probabilities))).split())


def test_nsp_reading_calls_a_head_no_better_than_guessing_only_when_it_is_not(tiny_pretraining_path):
    # 60% of each kind over 1,000 pairs: far beyond luck, so "no better than guessing" would be false.
    line = _nsp_reading(tiny_pretraining_path, 500, 300)
    assert "60% of the true next ones, 60% of the random ones" in line
    assert "no better than guessing" not in line and "little better than guessing" in line
    assert "no better than guessing" in _nsp_reading(tiny_pretraining_path, 500, 250)  # 50% of each: guessing


def test_nsp_reading_never_calls_a_head_better_than_guessing_when_luck_explains_it(tiny_pretraining_path):
    # 55% of each kind over 40 pairs happens by guessing far more often than 1 in 20: "little better" would be false.
    line = _nsp_reading(tiny_pretraining_path, 20, 11)
    assert "55% of the true next ones, 55% of the random ones" in line
    assert "better than guessing" not in line and "too few to tell that from lucky guessing" in line


def test_probabilities_in_readings_never_round_across_the_cut_off_their_words_depend_on():
    # P = 0.4996 printed as "0.50" beside "takes B for a random sentence" (and fill-mask's 0.4996 as "p=0.50"
    # beside "leans that way", while 0.50 reads "fairly sure"): the digits grow until the side is right.
    from bertprobe.render import probability

    assert probability(0.4996, cuts=(0.5,)) == "0.4996" and probability(0.5, cuts=(0.5,)) == "0.50"
    assert probability(0.42, cuts=(0.5,)) == "0.42" and probability(0.19996, cuts=(0.2, 0.5)) == "0.19996"
    assert probability(0.9977) == "0.998" and probability(4e-5) == "0.00004" and probability(1.0) == "1.00"


def test_nsp_verdict_is_not_fooled_by_a_mix_with_few_pairs_of_one_kind(tiny_pretraining_path):
    # A head that answers "next" to 4 pairs in 5 whatever they are, on 200 true next and 5 random pairs: 80% right
    # overall, and 3 of the 5 random ones by luck (their mean with the next ones is 70%). Blind answers as often
    # "next" do as well 6% of the time, so neither "carries" nor "better than guessing" may be read.
    line = _nsp_mix_reading(tiny_pretraining_path, (160, 40), (3, 2))
    assert "carries" not in line and "better than guessing" not in line
    assert "right on 80% of 205 pairs" in line and "80% of the 200 true next ones, 60% of the 5 random ones" in line
    assert "always answering 'next' would get 98% of these pairs" in line and "their mean, 70%" in line
    assert "200 true next and 5 random pairs are too few to tell that from lucky guessing" in line
    assert "score more random pairs" in line
    # The same with the kinds swapped.
    swapped = _nsp_mix_reading(tiny_pretraining_path, (3, 2), (160, 40))
    assert "always answering 'random' would get 98%" in swapped and "carries" not in swapped
    assert "too few to tell that from lucky guessing" in swapped and "score more true next pairs" in swapped
    # Right on all 20 pairs, but one is random: a head that says "random" once lands on it 1 time in 20.
    one_random = _nsp_mix_reading(tiny_pretraining_path, (19, 0), (1, 0))
    assert "carries" not in one_random and "better than guessing" not in one_random
    assert "19 true next and 1 random pair are too few to judge the head" in one_random


def test_nsp_verdict_still_finds_a_head_that_tells_the_kinds_apart_in_an_unbalanced_mix(tiny_pretraining_path):
    line = _nsp_mix_reading(tiny_pretraining_path, (190, 10), (16, 4))
    assert "95% of the 200 true next ones, 80% of the 20 random ones" in line and "their mean, 88%" in line
    assert "so [CLS] carries what next-sentence prediction trained it for" in line
    # 201 of 205 right against 200 for always answering "next": digits enough to show them apart, and a mean
    # of 69.75% is not rounded up to the 70% that "carries" needs.
    close = _nsp_mix_reading(tiny_pretraining_path, (199, 1), (2, 3))
    assert "right on 98.0% of 205 pairs" in close and "always answering 'next' would get 97.6% of these" in close
    assert "their mean, 69.8%" in close and "somewhat better than guessing" in close
    # Equal kinds: the mean is the accuracy, and the reading stays as short as before.
    even = _nsp_reading(tiny_pretraining_path, 20, 18)
    assert "(90% of the true next ones, 90% of the random ones; guessing gets 50% of each)" in even
    assert "always answering" not in even and "carries what" in even


def test_nsp_input_records_name_their_file_and_line(cli, tiny_pretraining_path, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence_a,sentence_b\nI was hungry.,So I ate.\nThe sun set.,We went home.\n")
    code, stdout, stderr = cli("nsp", "--input", pairs, "-m", tiny_pretraining_path, "--json")
    assert code == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    # The record's own line and its scored pair's agree, and its source is the file (it read "arguments", null).
    named = [(r["line"], r["pairs"][0]["line"], r["source"]) for r in records]
    assert named == [(2, 2, str(pairs)), (3, 3, str(pairs))]
