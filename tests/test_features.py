"""Batched extraction returns what one-text-at-a-time forward passes return, in order."""

from __future__ import annotations

import torch

from bertprobe import features, models


def test_batched_equals_one_at_a_time_and_keeps_order(minilm_path):
    lm = models.load("minilm", device="cpu")
    texts = ["a bank", "the steep bank of the river flooded last spring", "money", "I deposited cash at the bank."]
    batched = features.extract(lm, texts, batch_size=3)
    assert [e.encoding.text for e in batched] == texts
    for item in batched:
        with torch.inference_mode():
            ref = lm.model(input_ids=torch.tensor([item.encoding.ids]), output_hidden_states=True).hidden_states
        assert item.hidden_states.shape == (lm.num_layers + 1, len(item.encoding), lm.hidden_size)
        torch.testing.assert_close(item.hidden_states, torch.stack(ref)[:, 0], atol=2e-5, rtol=1e-4)


def test_batches_respect_size_and_cover_every_text():
    lengths = [5, 50, 7, 50, 3, 12, 9]
    groups = list(features.batches(lengths, batch_size=3))
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(len(g) <= 3 for g in groups)
    assert lengths[groups[0][0]] == max(lengths)  # longest first: the first batch shows the worst memory use


def test_progress_reports_every_text(minilm_path):
    lm = models.load("minilm", device="cpu")
    seen = []
    features.extract(
        lm, ["one", "two words", "three words here"], batch_size=2, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (3, 3)
