"""Non-BERT checkpoints go through transformers: same promises, other mask token."""

from __future__ import annotations

import json

import pytest


def test_roberta_fill_mask_equals_the_pipeline(cli, tiny_roberta_path):
    from transformers import pipeline

    text = "the cat sat on the <mask> and the dog sat on the rug"
    code, stdout, _ = cli("fillmask", text, "--model", tiny_roberta_path, "-k", 6, "--json")
    assert code == 0
    ours = json.loads(stdout)["masks"][0]["predictions"]
    theirs = pipeline("fill-mask", model=str(tiny_roberta_path), device="cpu")(text, top_k=6)
    assert [p["token_id"] for p in ours] == [r["token"] for r in theirs]
    for p, r in zip(ours, theirs, strict=True):
        assert p["score"] == pytest.approx(r["score"], abs=1e-5)
    # [MASK] is accepted for any model and rewritten as the tokenizer's own mask token.
    code, stdout_bracket, _ = cli("fillmask", text.replace("<mask>", "[MASK]"), "-m", tiny_roberta_path, "-k", 6,
                                  "--json")  # fmt: skip
    assert code == 0 and json.loads(stdout_bracket)["masks"] == json.loads(stdout)["masks"]


def test_roberta_is_refused_for_nsp_with_the_reason(cli, tiny_roberta_path):
    code, _, stderr = cli("nsp", "a", "b", "-m", tiny_roberta_path)
    assert code == 1 and "RoBERTa dropped next-sentence prediction" in stderr


def test_attention_through_transformers_equals_output_attentions(cli, tiny_roberta_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    text = "the river bank is muddy"
    code, stdout, _ = cli("attention", text, "-m", tiny_roberta_path, "--json")
    assert code == 0
    doc = json.loads(stdout)
    tok = AutoTokenizer.from_pretrained(str(tiny_roberta_path))
    model = AutoModel.from_pretrained(str(tiny_roberta_path), attn_implementation="eager").eval()
    with torch.no_grad():
        attentions = model(**tok(text, return_tensors="pt"), output_attentions=True).attentions
    mean = torch.stack([a[0] for a in attentions]).mean(1)
    torch.testing.assert_close(torch.tensor(doc["cls_to_token"]), mean[:, 0, :], atol=1e-5, rtol=1e-4)


def test_sense_runs_on_a_non_bert_encoder(cli, tiny_roberta_path):
    code, stdout, _ = cli("sense", "bank", "-m", tiny_roberta_path, "-s", "a river bank is muddy",
                          "-s", "a money bank is busy", "-s", "the bank sat on the mat", "--json")  # fmt: skip
    assert code == 0
    layers = [row["name"] for row in json.loads(stdout)["layers"]]
    assert layers == ["static", "embeddings", "1", "2"]


def test_nsp_through_transformers_equals_the_native_bert(cli, tiny_pretraining_path, monkeypatch):
    """BERTPROBE_BACKEND=transformers runs BertForNextSentencePrediction (its logits are named ``logits``)."""
    pair = ("The cat sat on the mat.", "It was tired.")
    code, native, stderr = cli("nsp", *pair, "-m", tiny_pretraining_path, "--json")
    assert code == 0, stderr
    monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
    code, through_transformers, stderr = cli("nsp", *pair, "-m", tiny_pretraining_path, "--json")
    assert code == 0 and stderr == ""
    ours, theirs = (json.loads(doc)["pairs"][0]["is_next_probability"] for doc in (native, through_transformers))
    assert ours == pytest.approx(theirs, abs=1e-6)
