"""pretrain: the loss goes down, checkpoints load anywhere, and an interrupted run resumes."""

from __future__ import annotations

import json

import pytest

from bertprobe import pretrain
from bertprobe.errors import ArtifactError, InputError

LINES = [
    "the cat sat on the mat .",
    "the dog sat on the rug .",
    "a cat sleeps on the mat .",
    "the dog sleeps on the rug .",
] * 8


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(LINES) + "\n")
    return path


def _settings(source, corpus, out, **overrides):
    values = dict(
        source=str(source), corpus=[str(corpus)], out=str(out), steps=40, batch_size=8, lr=3e-3,
        max_length=16, seed=0, probes=["the cat sat on the [MASK] ."],
    )  # fmt: skip
    values.update(overrides)
    return pretrain.PretrainSettings(**values)


def test_loss_goes_down_and_the_checkpoint_loads_in_transformers(tiny_pretraining_path, corpus, tmp_path):
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM

    out = tmp_path / "run"
    result = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=150), device="cpu")
    assert result.steps == 150 and not result.resumed
    assert result.final_loss < result.first_loss - 1.0
    model, info = BertForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert not info["missing_keys"]
    assert set(info["unexpected_keys"]) <= {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}  # kept as it was
    tok = AutoTokenizer.from_pretrained(str(out))
    batch = tok("the cat sat on the [MASK] .", return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits[0, 6]
    top = tok.convert_ids_to_tokens(logits.topk(3).indices.tolist())
    assert top == [word for word, _ in [(t.split()[0], p) for t, p in result.probes_after[0].predictions]]
    assert {"mat", "rug"} & set(top)  # the only words that ever stood there


def test_a_resumed_run_continues_where_it_stopped(tiny_pretraining_path, corpus, tmp_path):
    straight = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "a", steps=20), device="cpu")

    calls = {"n": 0}

    def stop_after_first_status(status):
        calls["n"] += 1
        if status.step >= 10:
            raise KeyboardInterrupt

    out = tmp_path / "b"
    with pytest.raises(pretrain.Interrupted) as stop:
        pretrain.pretrain(
            _settings(tiny_pretraining_path, corpus, out, steps=20), device="cpu",
            on_status=stop_after_first_status, status_seconds=0.0,
        )  # fmt: skip
    saved = json.loads((out / "trainer_state.json").read_text())
    assert saved["step"] == stop.value.result.steps == 10
    resumed = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=20), device="cpu")
    assert resumed.resumed and resumed.start_step == 10 and resumed.steps == 20
    # Same batches, masks and learning rates as the uninterrupted run: the same final weights.
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    for key in a:
        assert (a[key] - b[key]).abs().max() < 1e-5, key
    assert resumed.final_loss == pytest.approx(straight.final_loss, rel=1e-3)


def test_encoder_only_checkpoint_gets_a_new_head(tiny_encoder_path, corpus, tmp_path):
    result = pretrain.pretrain(_settings(tiny_encoder_path, corpus, tmp_path / "run", steps=5), device="cpu")
    assert any("no MLM head" in n for n in result.notices)
    from bertprobe.models import checkpoint_heads

    assert "mlm" in checkpoint_heads(tmp_path / "run")


def test_a_damaged_checkpoint_is_detected_not_trusted(tiny_pretraining_path, corpus, tmp_path):
    out = tmp_path / "run"
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=3), device="cpu")
    weights = out / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(ArtifactError, match=r"does not match trainer_state\.json"):
        pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=6), device="cpu")
    restarted = pretrain.pretrain(_settings(tiny_pretraining_path, corpus, out, steps=3), device="cpu", restart=True)
    assert not restarted.resumed and restarted.steps == 3


def test_cli_errors_are_one_line(cli, tiny_pretraining_path, tiny_encoder_path, corpus, tmp_path):
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", tmp_path / "x")
    assert code == 1 and "exactly one budget" in stderr
    code, _, stderr = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", tmp_path / "nope.txt",
                          "--out", tmp_path / "x", "--steps", 2)  # fmt: skip
    assert code == 1 and "no such file" in stderr and "--corpus" in stderr
    # Bad numbers (--save-minutes 0, --lr inf, ...) are usage errors: tests/test_cli_options.py.
    code, _, stderr = cli("pretrain", "--from", "minilm", "--corpus", corpus, "--out", tmp_path / "y", "--steps", 1,
                          "--probe", "no mask here")  # fmt: skip
    assert code == 1 and "no mask token" in stderr
    pretrain.pretrain(_settings(tiny_pretraining_path, corpus, tmp_path / "z", steps=2), device="cpu")
    with pytest.raises(InputError, match="holds a run from"):
        pretrain.pretrain(_settings(tiny_encoder_path, corpus, tmp_path / "z", steps=2), device="cpu")


def test_cli_trains_and_prints_the_summary(cli, tiny_pretraining_path, corpus, tmp_path):
    code, stdout, _ = cli("pretrain", "--from", tiny_pretraining_path, "--corpus", corpus, "--out", tmp_path / "r",
                          "--steps", 5, "--batch-size", 4, "--json")  # fmt: skip
    assert code == 0
    doc = json.loads(stdout)
    assert doc["steps"] == 5 and doc["out"] == str(tmp_path / "r") and doc["seed"] == 0
    code, table, _ = cli("fillmask", "the cat sat on the [MASK] .", "--model", tmp_path / "r")
    assert code == 0 and "top-1 fill" in table


def test_learning_rate_warms_up_then_decays():
    assert pretrain.learning_rate(1.0, 0.0, 0.1) == 0.0
    assert pretrain.learning_rate(1.0, 0.05, 0.1) == pytest.approx(0.5)
    assert pretrain.learning_rate(1.0, 0.1, 0.1) == pytest.approx(1.0)
    assert pretrain.learning_rate(1.0, 0.55, 0.1) == pytest.approx(0.5)
    assert pretrain.learning_rate(1.0, 1.0, 0.1) == 0.0
