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
    hits1 = hits5 = 0
    for item, mine in zip(cloze.builtin_items(), doc["items"], strict=True):
        top = [p["token_str"].strip().lower() for p in fill(item["text"], top_k=5)]
        assert top == [t.lower() for t in mine["top"]]
        hits1 += top[0] in item["answers"]
        hits5 += any(word in item["answers"] for word in top)
    assert doc["precision_at_1"] == pytest.approx(hits1 / len(doc["items"]))
    assert doc["precision_at_k"] == pytest.approx(hits5 / len(doc["items"]))


def test_the_builtin_set_is_well_formed():
    items = cloze.builtin_items()
    assert len(items) >= 50
    for item in items:
        assert item["text"].count("[MASK]") == 1
        assert item["answers"] and all(a == a.lower().strip() for a in item["answers"])


def test_shipped_tiny_mlm_meets_its_documented_quality(cli):
    # RECIPE.md reports 0.300 / 0.650; the target is precision@5 >= 0.6.
    code, stdout, _ = cli("cloze", "-m", "tiny-mlm", "--json")
    doc = json.loads(stdout)
    assert code == 0
    assert doc["precision_at_1"] == pytest.approx(0.300, abs=1e-9)
    assert doc["precision_at_k"] == pytest.approx(0.650, abs=1e-9)
    code, stdout, _ = cli("cloze", "-m", "minilm")
    assert code == 1  # an encoder without MLM head cannot be scored


def test_cloze_table_marks_hits(cli):
    code, table, _ = cli("cloze", "-m", "tiny-mlm", "-k", 3)
    assert code == 0 and "precision@1" in table and "precision@3" in table
