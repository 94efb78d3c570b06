"""The backend contract, on both backends and on config variants, against transformers itself.

Each variant is a tiny random BertForPreTraining saved with transformers (or an ALBERT-style
one whose embeddings are narrower than its hidden states, which only transformers runs).
``native`` is the default choice (the compact BERT wherever it reproduces the checkpoint);
``transformers`` is what ``BERTPROBE_BACKEND=transformers`` forces.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from bertprobe import models
from bertprobe.errors import BertprobeError, ModelNotFoundError

VARIANTS = {
    "bert": {},
    "gelu_new-eps1e-5": {"hidden_act": "gelu_new", "layer_norm_eps": 1e-5},
    "relu-one-segment": {"hidden_act": "relu", "type_vocab_size": 1},
    "small-vocab": {"vocab_size": 97},
    "embedding-narrower": {"embedding_size": 16},  # ALBERT-style factorised embeddings
}
BACKENDS = ("native", "transformers")


def _save(target, minilm_path, overrides):
    import transformers

    values = dict(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    values.update(overrides)
    torch.manual_seed(len(target.name))
    if "embedding_size" in values:
        model = transformers.AlbertForPreTraining(transformers.AlbertConfig(**values))
    else:
        model = transformers.BertForPreTraining(transformers.BertConfig(**values))
    model.save_pretrained(target)
    if values["vocab_size"] < 30522:  # a tokenizer as small as the embeddings (a bigger one is refused)
        _small_tokenizer(target, values["vocab_size"])
        return target
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(minilm_path / name, target / name)
    return target


def _small_tokenizer(target, size):
    import string

    import transformers

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase, *string.digits, ".", ","]
    pieces += [f"##{c}" for c in string.ascii_lowercase]
    pieces += [f"w{i}" for i in range(size - len(pieces))]
    (target / "vocab.txt").write_text("\n".join(pieces[:size]) + "\n")
    # transformers 5 ignores vocab_file= here (it saved a 5-piece tokenizer.json beside this vocab.txt): the pieces.
    transformers.BertTokenizerFast(vocab={p: i for i, p in enumerate(pieces[:size])}).save_pretrained(target)


@pytest.fixture(scope="module")
def variant_path(tmp_path_factory, minilm_path):
    built = {}

    def get(name):
        if name not in built:
            built[name] = _save(tmp_path_factory.mktemp(name), minilm_path, VARIANTS[name])
        return built[name]

    return get


@pytest.fixture
def backend_env(monkeypatch):
    def use(backend):
        if backend == "transformers":
            monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
        else:
            monkeypatch.delenv("BERTPROBE_BACKEND", raising=False)

    return use


def _reference(path):
    import transformers

    return transformers.AutoModelForPreTraining.from_pretrained(str(path), attn_implementation="eager").eval()


def _batch(vocab):
    """Two texts of different lengths, right-padded, with two segments."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab, (2, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ids[1, 8:] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    return ids, mask, types * mask


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_eval_outputs_equal_transformers(variant_path, backend_env, variant, backend):
    path = variant_path(variant)
    backend_env(backend)
    narrow = variant == "embedding-narrower"  # ALBERT-style: sentence-order prediction, no NSP head
    lm = models.load(str(path), head="mlm" if narrow else "pretraining", device="cpu")
    expected_native = backend == "native" and not narrow
    assert lm.native == expected_native and lm.backend.kind == ("native" if expected_native else "transformers")
    ref = _reference(path)
    ids, mask, types = _batch(lm.config["vocab_size"])
    if lm.config.get("type_vocab_size", 2) < 2:
        types = torch.zeros_like(types)
    real = mask.bool()
    with torch.inference_mode():
        ours = lm.backend.forward(ids, mask, types, hidden_states=True, attentions=True)
        theirs = ref(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True,
                     output_attentions=True)  # fmt: skip
        rows, cols = torch.tensor([0, 0, 1]), torch.tensor([3, 11, 7])
        at_positions = lm.backend.mlm_logits(ours.last_hidden_state[rows, cols])
        masked = lm.backend.masked_logits(ids, mask, rows, cols)  # one segment, as fill-mask feeds it
        one_segment = ref(input_ids=ids, attention_mask=mask).prediction_logits[rows, cols]
        nsp = None if narrow else lm.backend.nsp_logits(ids, mask, types)
        # ALBERT's masked-LM class has no pooler; its encoder class has one.
        encoder = models.load(str(path), head="encoder", device="cpu") if narrow else lm
        pooled = encoder.backend.pooler()(ours.last_hidden_state)
        base = ref.base_model
        reference_pooled = base(input_ids=ids, attention_mask=mask, token_type_ids=types).pooler_output
    assert len(ours.hidden_states) == len(theirs.hidden_states) == 3
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(a[real], b[real], atol=2e-5, rtol=1e-4)
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(a[1, :, :8, :8], b[1, :, :8, :8], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(at_positions, theirs.prediction_logits[rows, cols], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(masked, one_segment, atol=1e-4, rtol=1e-4)
    if not narrow:
        torch.testing.assert_close(nsp, theirs.seq_relationship_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pooled, reference_pooled, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_mode_applies_the_configured_dropout(tmp_path, minilm_path, backend_env, backend):
    """hidden_states[0] is LayerNorm(embeddings) then dropout: dropped entries are 0, kept ones scaled by 1/(1-p)."""
    rate = 0.25
    path = _save(tmp_path / "dropout", minilm_path, {"hidden_dropout_prob": rate, "attention_probs_dropout_prob": 0.1})
    backend_env(backend)
    lm = models.load(str(path), head="mlm", device="cpu")
    assert lm.native == (backend == "native")
    ids = torch.randint(5, 30000, (4, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        clean = lm.backend.forward(ids, hidden_states=True).hidden_states[0]
        with lm.backend.mode(training=True):
            first = lm.backend.forward(ids, hidden_states=True)
            second = lm.backend.forward(ids, hidden_states=True)
        again = lm.backend.forward(ids, hidden_states=True).hidden_states[0]
    assert not lm.model.training  # the block restored eval mode
    torch.testing.assert_close(again, clean)
    assert not torch.equal(first.last_hidden_state, second.last_hidden_state)
    dropped = first.hidden_states[0] == 0
    count = dropped.numel()
    share = dropped.float().mean().item()
    assert abs(share - rate) < 5 * (rate * (1 - rate) / count) ** 0.5  # binomial: within 5 standard deviations
    kept = ~dropped
    torch.testing.assert_close(first.hidden_states[0][kept], clean[kept] / (1 - rate), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_that_disagree_with_the_config_are_refused(tmp_path, minilm_path, backend_env, backend):
    path = _save(tmp_path / "mismatch", minilm_path, {"vocab_size": 97})
    config = json.loads((path / "config.json").read_text())
    config["vocab_size"] = 120
    (path / "config.json").write_text(json.dumps(config))
    backend_env(backend)
    with pytest.raises(ModelNotFoundError, match="disagree"):
        models.load(str(path), head="mlm", device="cpu")


def test_an_unknown_backend_is_refused(monkeypatch, tiny_pretraining_path):
    monkeypatch.setenv("BERTPROBE_BACKEND", "tensorflow")
    with pytest.raises(BertprobeError, match="BERTPROBE_BACKEND"):
        models.load(str(tiny_pretraining_path), head="mlm", device="cpu")


@torch.no_grad()
def _state(lm):
    model = lm.model
    config = getattr(model, "config", None)
    return {
        "device": {p.device for p in model.parameters()},
        "dtype": {p.dtype for p in model.parameters()},
        "training": {m.training for m in model.modules()},
        "requires_grad": {p.requires_grad for p in model.parameters()},
        "attention": getattr(config, "_attn_implementation", None),
        "weights": float(sum(p.double().sum() for p in model.parameters())),
        "lm": (lm.device, lm.dtype),
    }


@pytest.mark.parametrize("fixture", ["tiny_pretraining_path", "tiny_roberta_path"])
def test_no_command_changes_the_loaded_model_for_the_next(cli, request, fixture, tmp_path):
    path = str(request.getfixturevalue(fixture))
    heads = ["encoder", "mlm"] + (["nsp"] if fixture == "tiny_pretraining_path" else [])
    cached = {head: models.load(path, head, None, "auto", "auto", False) for head in heads}
    before = {head: _state(lm) for head, lm in cached.items()}
    text = "the river bank is muddy"
    masked = "the cat sat on the [MASK] ."
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},pos\nbad film {i},neg\n" for i in range(6)))
    commands = [
        ("attention", text),
        ("attribute", masked, "--steps", "4"),
        ("fillmask", masked),
        ("fillmask", "the cat sat on the mat", "--mode", "each"),
        ("sense", "bank", "-s", "a river bank", "-s", "the bank opened", "-s", "bank of the river"),
        ("cls-train", "--data", data, "--out", tmp_path / "probe", "--control"),
    ]
    if "nsp" in heads:
        commands.append(("nsp", "The cat sat.", "It was tired."))
    for command in commands:
        code, _, stderr = cli(*command, "-m", path, "--json")
        assert code == 0, f"{command[0]}: {stderr}"
        for head, lm in cached.items():
            assert models.load(path, head, None, "auto", "auto", False) is lm  # still the cached one
            assert _state(lm) == before[head], f"{command[0]} changed the {head} model"


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_encoder_weights_are_refused_in_one_line_of_ours(cli, tmp_path, minilm_path, monkeypatch, backend):
    from safetensors.torch import load_file, save_file

    path = _save(tmp_path / "holed", minilm_path, {})
    weights = load_file(str(path / "model.safetensors"))
    del weights["bert.encoder.layer.1.output.dense.bias"]
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    if backend == "transformers":
        monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
    code, _, stderr = cli("attention", "the river bank", "-m", path, "--json")
    # Both backends refuse: transformers would fill the hole with random weights, a silent wrong number.
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), stderr
    assert "output.dense.bias" in lines[0]  # names what is missing
    assert "LOAD REPORT" not in stderr and "Loading weights" not in stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_decoder_stored_apart_from_the_embeddings_is_the_one_used(tmp_path, minilm_path, backend_env, backend):
    """config.json says tied (the default), but the weights hold a decoder and bias of their own: both are used."""
    import transformers
    from safetensors.torch import load_file, save_file

    path = _save(tmp_path / "own-decoder", minilm_path, {})
    weights = load_file(str(path / "model.safetensors"))
    generator = torch.Generator().manual_seed(3)
    weights["cls.predictions.decoder.weight"] = torch.randn(30522, 32, generator=generator) * 0.1
    weights["cls.predictions.decoder.bias"] = torch.randn(30522, generator=generator)
    save_file(weights, str(path / "model.safetensors"), metadata={"format": "pt"})
    assert json.loads((path / "config.json").read_text()).get("tie_word_embeddings", True)
    backend_env(backend)
    lm = models.load(str(path), head="mlm", device="cpu")
    assert lm.native == (backend == "native")
    reference = transformers.AutoModelForMaskedLM.from_pretrained(str(path)).eval()
    ids, mask, _ = _batch(30522)
    rows, cols = torch.tensor([0, 1]), torch.tensor([3, 7])
    with torch.inference_mode():
        ours = lm.backend.masked_logits(ids, mask, rows, cols)
        theirs = reference(input_ids=ids, attention_mask=mask).logits[rows, cols]
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
