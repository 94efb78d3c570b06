"""Every BERT-family model runs every command: RoBERTa, DistilBERT, ALBERT, ELECTRA, XLM-R.

Tiny random checkpoints with tokenizers of their own kind (byte-level BPE, Unigram, WordPiece)
are built offline in fixtures; transformers' own pipeline is the reference for fill-mask.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import family

TEXT = "the cat sat on the [MASK] and the dog sat on the rug"
SENSES = ["a river bank is muddy", "she deposited money at the bank", "we sat on the grassy bank of the river"]


@pytest.mark.parametrize("kind", family.FAMILY)
def test_fill_mask_equals_the_transformers_pipeline(cli, family_path, kind):
    from transformers import pipeline

    path = family_path(kind)
    code, stdout, stderr = cli("fillmask", TEXT, "-m", path, "-k", 5, "--json")
    assert code == 0, stderr
    assert stderr == ""  # no load report, progress bar or warning from transformers
    ours = json.loads(stdout)["masks"][0]["predictions"]
    pipe = pipeline("fill-mask", model=str(path), device="cpu")
    theirs = pipe(TEXT.replace("[MASK]", pipe.tokenizer.mask_token), top_k=5)
    assert [p["token_id"] for p in ours] == [r["token"] for r in theirs]
    for p, r in zip(ours, theirs, strict=True):
        assert p["score"] == pytest.approx(r["score"], abs=1e-6)


@pytest.mark.parametrize("kind", ["roberta", "xlm-roberta", "albert"])
def test_multi_piece_targets_keep_a_stand_alone_space_piece(cli, family_path, kind):
    """ "zebra" written at the mask is "▁ z e b r a" (XLM-R) or "Ġ z e b r a" (RoBERTa): the lone space piece is
    part of the word (its offsets cover only the space), and the model must read it, as transformers would."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    path = family_path(kind)
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForMaskedLM.from_pretrained(str(path)).eval()
    masked = "the cat sat on the [MASK] .".replace("[MASK]", tok.mask_token)
    code, stdout, stderr = cli("fillmask", masked, "--targets", "zebra,cat", "-m", path, "--json")
    assert code == 0, stderr
    ours = {t["word"]: t for t in json.loads(stdout)["targets"][0]["targets"]}
    context = tok(masked)["input_ids"]
    first = context.index(tok.mask_token_id)
    before, after = context[:first], context[first + 1 :]
    for word in ("zebra", "cat"):
        written = tok(masked.replace(tok.mask_token, word).replace("  ", " "))["input_ids"]
        assert written[: len(before)] == before and written[len(written) - len(after) :] == after
        pieces = written[len(before) : len(written) - len(after)]
        assert [p["token_id"] for p in ours[word]["pieces"]] == pieces
        expected = 0.0
        for j, piece in enumerate(pieces):  # piece j given pieces < j, the rest of the word masked
            ids = before + pieces[:j] + [tok.mask_token_id] * (len(pieces) - j) + after
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids])).logits[0, len(before) + j]
            expected += float(logits.log_softmax(-1)[piece])
        assert ours[word]["log_prob"] == pytest.approx(expected, abs=1e-4)
    if kind != "albert":  # ALBERT's [MASK] leaves the "▁" before it in place, outside the slot
        assert tok.convert_ids_to_tokens(ours["zebra"]["pieces"][0]["token_id"]) in ("▁", "Ġ")
    # The top-1 fill writes the word in the mask's place with one space before it: the mask's absorbed space
    # and a BPE word's own leading space (" mudd") are one space, not two, nor none.
    top = json.loads(stdout)["masks"][0]["predictions"][0]["token_str"]
    assert json.loads(stdout)["filled"] == masked.replace(tok.mask_token, top.strip())


@pytest.mark.parametrize("kind", ["roberta", "xlm-roberta", "albert"])
def test_special_tokens_without_tokenizer_config_are_the_familys(cli, family_path, kind, tmp_path):
    """roberta-base, xlm-roberta-base and albert-base-v2 ship no tokenizer_config.json or special_tokens_map.json."""
    import shutil

    from transformers import AutoTokenizer

    from bertprobe import models

    path = tmp_path / kind
    shutil.copytree(family_path(kind), path)
    (path / "tokenizer_config.json").unlink()
    (path / "special_tokens_map.json").unlink(missing_ok=True)
    tok = models.load(str(path), head="mlm", device="cpu").tokenizer
    theirs = AutoTokenizer.from_pretrained(str(path))
    for role in ("mask", "cls", "sep", "pad", "unk"):
        assert tok.token_to_id(getattr(tok, f"{role}_token")) == getattr(theirs, f"{role}_token_id"), role
    assert tok.pad_token_id == theirs.pad_token_id  # padding and attribute's pad baseline use it
    code, stdout, stderr = cli("fillmask", TEXT, "-m", path, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["masks"][0]["predictions"]


@pytest.mark.parametrize("kind", family.FAMILY)
def test_every_command_runs_and_nsp_says_why_not(cli, family_path, kind, tmp_path):
    path = family_path(kind)

    def run(*args):
        code, stdout, stderr = cli(*args, "-m", path, "--json")
        assert code == 0, f"{args[0]}: {stderr}"
        return json.loads(stdout)

    for mode in ("each", "bert", "whole-word"):
        doc = run("fillmask", "the cat sat on the mat", "--mode", mode)
        assert doc
    run("fillmask", "the cat sat on the mat", "--mode", "word", "--mask-word", "cat")
    sense = run("sense", "bank", *[a for s in SENSES for a in ("-s", s)])
    assert [row["name"] for row in sense["layers"]][:2] == ["static", "embeddings"]
    attention = run("attention", "the river bank is muddy")
    assert len(attention["layers"]) == 2
    attribution = run("attribute", "the cat sat on the [MASK].", "--steps", 8)
    assert attribution["tokens"]

    data = tmp_path / "d.csv"
    rows = [(f"a gripping funny film number {i}", "positive") for i in range(10)]
    rows += [(f"a tedious mess of a film number {i}", "negative") for i in range(10)]
    with data.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    trained = run("cls-train", "--data", data, "--out", tmp_path / "probe")
    assert trained
    code, stdout, stderr = cli("cls-predict", tmp_path / "probe", "a gripping film", "--json")
    assert code == 0, stderr

    code, stdout, stderr = cli("nsp", "The cat sat.", "The dog ran.", "-m", path)
    assert code == 1 and stdout == ""
    assert "next-sentence prediction" in stderr.splitlines()[0] and "Traceback" not in stderr


def test_electra_discriminator_is_an_encoder_without_an_mlm_head(cli, family_path):
    path = family_path("electra-discriminator")
    code, stdout, stderr = cli("sense", "bank", "-m", path, *[a for s in SENSES for a in ("-s", s)], "--json")
    assert code == 0, stderr
    assert [row["name"] for row in json.loads(stdout)["layers"]] == ["static", "embeddings", "1", "2"]
    code, _, stderr = cli("fillmask", TEXT, "-m", path)
    assert code == 1 and "no MLM head" in stderr


def test_sense_finds_leading_space_pieces_through_offsets(family_path):
    from bertprobe import models, sense

    lm = models.load(str(family_path("roberta")), device="cpu")
    sentences = [sense.SenseSentence(text=s, sense=None, line=None) for s in SENSES]
    located, _ = sense.locate(lm, "bank", sentences)
    for where, text in zip(located, SENSES, strict=True):
        assert text[where.start : where.end] == "bank"
        assert "".join(where.wordpieces).lstrip("Ġ") == "bank"


def test_models_lists_the_family_in_the_hub_cache(cli, family_path, tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    for kind in ("roberta", "albert", "electra"):
        repo = tmp_path / f"models--tiny--{kind}"
        shutil.copytree(family_path(kind), repo / "snapshots" / "0123abcd")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0123abcd")
        (repo / "blobs").mkdir()
    # bertprobe reads the configured cache at call time (huggingface_hub binds its own default at import).
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    code, stdout, stderr = cli("models", "--json")
    assert code == 0, stderr
    listed = {row["name"]: row for row in json.loads(stdout)["models"]}
    assert {"tiny/roberta", "tiny/albert", "tiny/electra"} <= set(listed), stderr
    assert listed["tiny/albert"]["model_type"] == "albert" and "MLM" in listed["tiny/albert"]["heads"]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("roberta", [["Ġbank"], ["'", "s"]]),  # byte-level BPE: "'s" is a word of its own, the space is in Ġ
        # SentencePiece: words are what spaces separate; the tiny vocabulary has no "'", read as <unk>
        ("xlm-roberta", [["▁b", "an", "k", "<unk>", "s"]]),
        ("distilbert", [["bank"], ["'"], ["s"]]),  # WordPiece: punctuation is a word of its own
    ],
)
def test_words_follow_the_tokenizers_own_word_split(family_path, kind, expected):
    from bertprobe import models, tokens

    lm = models.load(str(family_path(kind)), head="mlm", device="cpu")
    text = "the river bank's edge"
    encoding = lm.tokenizer.encode(text)
    spans = tokens.words(encoding)
    assert [s.text for s in spans][:2] == ["the", "river"]  # never a leading space in a word
    near_bank = [[encoding.tokens[i] for i in s.pieces] for s in spans if 10 <= s.start < 16]
    assert near_bank == expected
    [river] = tokens.find_word(encoding, "river")
    assert text[river.start : river.end] == "river"
    assert "".join(encoding.tokens[i] for i in river.pieces).lstrip("Ġ▁") == "river"


def test_a_word_inside_another_piece_is_not_found(cli, family_path):
    """WordPiece reads 'bank' glued to an emoji as one [UNK]: that vector is not the word's, so it is no match."""
    from bertprobe import models, tokens

    path = family_path("distilbert")
    lm = models.load(str(path), head="mlm", device="cpu")
    text = "a \U0001f642bank and a river bank"
    encoding = lm.tokenizer.encode(text)
    [bank] = tokens.find_word(encoding, "bank")
    assert (bank.start, bank.end) == (text.rindex("bank"), len(text))
    assert [encoding.tokens[i] for i in bank.pieces] == ["bank"]
    masked = "the \U0001f642bank is open"
    code, stdout, stderr = cli("fillmask", masked, "--mode", "word", "--mask-word", "bank", "-m", path)
    assert code == 1 and stdout == "" and "does not occur in the text as a whole word" in stderr


def test_a_word_is_found_next_to_an_ideograph_and_in_either_accent_spelling(cli):
    """BERT reads each CJK ideograph as a word of its own, so "bank" in "東京bank" is a word; and "café" typed
    composed finds the decomposed "café" of the sentence (one spelling in Unicode, two byte sequences)."""
    import unicodedata

    from bertprobe import models, tokens

    lm = models.load("minilm", head="encoder", device="cpu")
    glued = lm.tokenizer.encode("東京bank is open")
    [bank] = tokens.find_word(glued, "bank")
    assert [glued.tokens[i] for i in bank.pieces] == ["bank"]
    assert tokens.find_word(lm.tokenizer.encode("embankment"), "bank") == []  # still whole words only
    sentence = unicodedata.normalize("NFD", "the café is open")
    [cafe] = tokens.find_word(lm.tokenizer.encode(sentence), unicodedata.normalize("NFC", "café"))
    assert sentence[cafe.start : cafe.end] == unicodedata.normalize("NFD", "café")
    code, stdout, stderr = cli("fillmask", sentence, "--mode", "word", "--mask-word", "café", "-m", "tiny-mlm",
                               "--json")  # fmt: skip
    assert code == 0, stderr and json.loads(stdout)["masks"]


def test_mpnet_positions_start_after_the_padding_row(tmp_path, minilm_path):
    """MPNet numbers positions from padding_idx + 1 = 2, as RoBERTa does: the first two rows hold no position."""
    import torch
    import transformers
    from conftest import _copy_tokenizer
    from transformers.models.mpnet.modeling_mpnet import create_position_ids_from_input_ids

    from bertprobe import models

    torch.manual_seed(0)
    config = transformers.MPNetConfig(vocab_size=30522, max_position_embeddings=64, **family.SIZES)
    transformers.MPNetForMaskedLM(config).save_pretrained(tmp_path)
    _copy_tokenizer(minilm_path, tmp_path)  # model_max_length 64: more than the 62 positions MPNet has here
    lm = models.load(str(tmp_path), head="mlm", device="cpu")
    ids = torch.tensor([lm.tokenizer.encode("a river bank").ids])
    _, offset = lm.backend.position_embeddings()
    assert offset == int(create_position_ids_from_input_ids(ids, padding_idx=1)[0, 0]) == 2
    assert lm.tokenizer.model_max_length == 62


@pytest.mark.parametrize("kind", ["distilbert", "roberta", "xlm-roberta"])
def test_a_combining_accent_belongs_to_the_word_it_follows(family_path, kind):
    """In decomposed text "café" is "cafe" + U+0301: "cafe" is not a whole word of it, nor "bank" of "ébank"
    (WordPiece reads "##bank" there, a piece of another word); the accent is no word boundary."""
    import unicodedata

    from bertprobe import models, tokens

    lm = models.load(str(family_path(kind)), head="mlm", device="cpu")
    text = unicodedata.normalize("NFD", "the café and the ébank bank")
    encoding = lm.tokenizer.encode(text)
    assert tokens.find_word(encoding, "cafe") == []
    [cafe] = tokens.find_word(encoding, "café")
    assert text[cafe.start : cafe.end] == unicodedata.normalize("NFD", "café")
    [bank] = tokens.find_word(encoding, "bank")
    assert bank.start == text.rindex("bank")


@pytest.mark.parametrize("kind", ["distilbert", "xlm-roberta"])
def test_a_words_span_keeps_its_combining_accent(family_path, kind):
    """XLM-R's NFKC composes "e" + U+0301 and gives "é" the offsets of the "e" alone: the word is still "café"."""
    import unicodedata

    from bertprobe import models, tokens

    lm = models.load(str(family_path(kind)), head="mlm", device="cpu")
    text = unicodedata.normalize("NFD", "the café is open")
    spans = tokens.words(lm.tokenizer.encode(text))
    assert [s.text for s in spans] == text.split(" ")
    assert [(s.start, s.end) for s in spans][1] == (4, 9)
