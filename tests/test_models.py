"""The shared loader: the native BERT equals transformers, heads are checked, loads are cached."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from bertprobe import models
from bertprobe.errors import MissingHeadError, ModelNotFoundError

SENTENCE = "The river bank was muddy, but the bank downtown wasn't open on Sunday."


def _reference(path, cls_name):
    import transformers

    return getattr(transformers, cls_name).from_pretrained(str(path), attn_implementation="eager").eval()


@pytest.mark.parametrize(
    ("fixture", "head", "reference"),
    [
        ("mlm_path", "mlm", "BertForMaskedLM"),
        ("tiny_pretraining_path", "pretraining", "BertForPreTraining"),
        ("minilm_path", "encoder", "BertModel"),
    ],
)
def test_native_bert_matches_transformers(request, fixture, head, reference):
    path = request.getfixturevalue(fixture)
    lm = models.load(str(path), head=head, device="cpu")
    assert lm.native
    ref = _reference(path, reference)
    enc = lm.tokenizer.encode(SENTENCE, "It rained.")
    ids = torch.tensor([enc.ids])
    types = torch.tensor([enc.type_ids])
    assert set(enc.type_ids) == {0, 1}
    with torch.inference_mode():
        ours = lm.model(input_ids=ids, token_type_ids=types, output_hidden_states=True, output_attentions=True)
        theirs = ref(input_ids=ids, token_type_ids=types, output_hidden_states=True, output_attentions=True)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == lm.num_layers + 1
    for a, b in zip(ours.hidden_states, theirs.hidden_states, strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    if head == "mlm":
        torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=1e-4)
    if head == "pretraining":
        torch.testing.assert_close(ours.logits, theirs.prediction_logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours.seq_relationship_logits, theirs.seq_relationship_logits, atol=1e-5, rtol=1e-4)
    if head == "encoder":
        torch.testing.assert_close(ours.pooler_output, theirs.pooler_output, atol=1e-5, rtol=1e-4)


def test_tokenizer_equals_transformers_tokenizer(mlm_path):
    from transformers import AutoTokenizer

    ours = models.load(str(mlm_path), head="mlm", device="cpu").tokenizer
    theirs = AutoTokenizer.from_pretrained(str(mlm_path))
    for text in (SENTENCE, "Unbelievably, naïve café-goers [MASK] ünïcödé!", "  spaces\tand\nnewlines  "):
        assert ours.encode(text).ids == theirs(text)["input_ids"]
        assert ours.encode(text).offsets[1:-1] == theirs(text, return_offsets_mapping=True)["offset_mapping"][1:-1]


def test_padding_does_not_change_hidden_states(minilm_path):
    lm = models.load("minilm", device="cpu")
    short = lm.tokenizer.encode("a bank").ids
    long = lm.tokenizer.encode("the bank of the river was steep").ids
    ids = torch.zeros(2, len(long), dtype=torch.long)
    mask = torch.zeros_like(ids)
    ids[0, : len(short)], mask[0, : len(short)] = torch.tensor(short), 1
    ids[1], mask[1] = torch.tensor(long), 1
    with torch.inference_mode():
        batched = lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
        alone = lm.model(input_ids=torch.tensor([short])).last_hidden_state
    torch.testing.assert_close(batched[0, : len(short)], alone[0], atol=1e-5, rtol=1e-4)


def test_heads_are_read_from_the_checkpoint(mlm_path, minilm_path, tiny_pretraining_path, tiny_encoder_path):
    assert models.checkpoint_heads(mlm_path) == {"mlm"}
    assert "mlm" not in models.checkpoint_heads(minilm_path)
    assert {"mlm", "nsp"} <= models.checkpoint_heads(tiny_pretraining_path)
    assert models.checkpoint_heads(tiny_encoder_path) <= {"pooler"}
    with pytest.raises(MissingHeadError, match="no MLM and NSP head"):
        models.load(str(tiny_encoder_path), head="pretraining")
    with pytest.raises(MissingHeadError, match="NSP"):
        models.load(str(mlm_path), head="pretraining")


def test_a_model_is_loaded_once_per_process(mlm_path):
    first = models.load(str(mlm_path), head="mlm", device="cpu")
    assert models.load(str(mlm_path), head="mlm", device="cpu") is first


def test_fingerprint_changes_with_the_weights(tmp_path, tiny_encoder_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_encoder_path, copy)
    before = models.load(str(copy), device="cpu").fingerprint
    models._load_cached.cache_clear()
    from safetensors.torch import load_file, save_file

    weights = load_file(copy / "model.safetensors")
    weights["pooler.dense.bias"] = weights["pooler.dense.bias"] + 1
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    assert models.load(str(copy), device="cpu").fingerprint != before


def test_incomplete_checkpoint_is_refused(tmp_path, tiny_encoder_path):
    import shutil

    from safetensors.torch import load_file, save_file

    copy = tmp_path / "broken"
    shutil.copytree(tiny_encoder_path, copy)
    weights = load_file(copy / "model.safetensors")
    del weights["encoder.layer.1.output.dense.weight"]
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelNotFoundError, match="not a complete BERT checkpoint"):
        models.load(str(copy), device="cpu")


@pytest.mark.parametrize("backend", ["auto", "transformers"])
def test_relative_position_embeddings_are_refused_by_name(cli, tmp_path, tiny_encoder_path, monkeypatch, backend):
    """transformers 5 ignores position_embedding_type: it would run this checkpoint with absolute positions."""
    import shutil

    from safetensors.torch import load_file, save_file

    copy = tmp_path / "relative"
    shutil.copytree(tiny_encoder_path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["position_embedding_type"] = "relative_key"
    (copy / "config.json").write_text(json.dumps(config))
    weights = load_file(copy / "model.safetensors")
    for layer in range(2):  # what transformers 4 saved for relative_key: a distance embedding per layer
        weights[f"encoder.layer.{layer}.attention.self.distance_embedding.weight"] = torch.randn(127, 16)
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    monkeypatch.setenv("BERTPROBE_BACKEND", backend)
    code, stdout, stderr = cli("sense", "bank", "-s", "a river bank", "-s", "the bank opened", "-m", copy, "--json")
    assert code == 1 and stdout == ""
    assert "position_embedding_type 'relative_key'" in stderr.splitlines()[0], stderr
    with pytest.raises(ModelNotFoundError, match="relative_key"):
        models.load_trainable(str(copy), device="cpu")


def test_models_lists_the_bundled_encoder(cli):
    code, stdout, _ = cli("models", "--json")
    assert code == 0
    listed = {m["name"]: m for m in json.loads(stdout)["models"]}
    assert listed["minilm"]["heads"] == ["encoder"]
    assert listed["minilm"]["layers"] == 6 and listed["minilm"]["hidden_size"] == 384


def test_help_does_not_import_torch_or_transformers():
    code = (
        "import sys; from bertprobe.cli import app; from typer.testing import CliRunner;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "[CliRunner().invoke(app, [c, '--help']) for c in ('fillmask', 'models')];"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn', 'captum', 'numpy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "bertprobe", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("bertprobe ")


def test_tokenizer_honours_tokenizer_config_casing(tmp_path, minilm_path):
    """A tokenizer.json that lowercases, under a tokenizer_config that says cased: transformers reads it cased."""
    import shutil

    from transformers import AutoTokenizer

    from bertprobe.tokenizer import Tokenizer

    for name in ("tokenizer.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_path / name, tmp_path / name)
    config = json.loads((minilm_path / "tokenizer_config.json").read_text())
    config.update(do_lower_case=False, strip_accents=False)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    ours = Tokenizer.from_dir(tmp_path, 512)
    theirs = AutoTokenizer.from_pretrained(str(tmp_path))
    uncased = Tokenizer.from_dir(minilm_path, 512)
    for text in ("Héllo World", "The Café in Paris", "naïve RIVER bank"):
        assert ours.encode(text).ids == theirs(text)["input_ids"]
        assert ours.encode(text).ids != uncased.encode(text).ids


def test_import_bertprobe_is_light_and_load_is_there():
    code = "import sys, bertprobe; assert callable(bertprobe.load); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("backend", ["auto", "transformers"])
def test_segment_b_keeps_its_type_when_config_leaves_type_vocab_size_out(
    tmp_path, tiny_pretraining_path, monkeypatch, backend
):
    """type_vocab_size defaults to 2 in transformers' BertConfig: a config.json without it still has two segments."""
    import shutil

    from bertprobe import nsp

    copy = tmp_path / "no-type-vocab-size"
    shutil.copytree(tiny_pretraining_path, copy)
    config = json.loads((copy / "config.json").read_text())
    del config["type_vocab_size"]
    (copy / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("BERTPROBE_BACKEND", backend)
    pair = [("I was hungry.", "So I made a sandwich.")]
    full = nsp.score(models.load(str(tiny_pretraining_path), head="nsp", device="cpu"), pair, None, None)
    short = nsp.score(models.load(str(copy), head="nsp", device="cpu"), pair, None, None)
    assert short.pairs[0].is_next_probability == pytest.approx(full.pairs[0].is_next_probability, abs=1e-6)


@pytest.mark.parametrize("spec", ["tiny-mlm", "mlm_path"])
def test_a_revision_of_a_bundled_or_local_model_is_refused_not_ignored(request, cli, spec):
    """Only a hub repository has branches, tags and commits: running the files on disk instead is another model."""
    model = str(request.getfixturevalue(spec)) if spec.endswith("_path") else spec
    code, stdout, stderr = cli("fillmask", "The cat sat on the [MASK].", "-m", model, "--revision", "v2", "--json")
    assert code == 1 and stdout == ""
    assert "--revision 'v2'" in stderr.splitlines()[0] and "Traceback" not in stderr, stderr


def test_a_checkpoint_rewritten_on_disk_is_loaded_again(tmp_path, tiny_encoder_path):
    """A notebook that saves new weights into a directory and loads it again gets the new weights, not the old."""
    import shutil

    from safetensors.torch import load_file, save_file

    copy = tmp_path / "rewritten"
    shutil.copytree(tiny_encoder_path, copy)
    before = models.load(str(copy), device="cpu")
    weights = load_file(copy / "model.safetensors")
    weights["pooler.dense.bias"] = weights["pooler.dense.bias"] + 1
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    after = models.load(str(copy), device="cpu")
    assert after.fingerprint != before.fingerprint
    torch.testing.assert_close(after.model.bert.pooler.dense.bias, weights["pooler.dense.bias"])


@pytest.mark.parametrize(
    ("architecture", "model_type", "heads"),
    [
        ("BertForPreTraining", "bert", {"mlm", "nsp"}),
        ("AlbertForPreTraining", "albert", {"mlm"}),  # its second head is sentence order, not NSP
        ("ElectraForPreTraining", "electra", set()),  # the replaced-token discriminator: no MLM, no NSP
        ("ElectraForMaskedLM", "electra", {"mlm"}),
        ("BertForNextSentencePrediction", "bert", {"nsp"}),
    ],
)
def test_heads_of_a_pickle_checkpoint_are_read_off_its_architecture(tmp_path, architecture, model_type, heads):
    # `bertprobe models` listed an ALBERT or ELECTRA pytorch_model.bin with an NSP (and MLM) head it lacks.
    import json

    from bertprobe.models.spec import checkpoint_heads

    (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [architecture]}))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    assert checkpoint_heads(tmp_path) == heads


def test_models_table_says_what_the_heads_allow_in_decimal_megabytes(cli):
    from bertprobe.render import models as render_models

    code, stdout, _ = cli("models")
    assert code == 0
    reading = " ".join(stdout.split())
    # The bundled masked LMs can fill a mask; no bundled model has an NSP head.
    assert "need an MLM head (minilm-mlm, tiny-mlm)" in reading, reading
    assert "needs an NSP head (none listed here)" in reading, reading
    # Sizes use the decimal megabytes the README and RECIPE use (45.8 MB of weights, not 43.7).
    assert render_models._size(45_797_052) == "45.8 MB"
    assert render_models._size(999) == "999 B"


def test_without_a_pad_token_id_0_pads_but_stays_a_word():
    # A vocabulary with no pad token whose id 0 is a real word: that word is scored and masked like any other.
    from tokenizers import Tokenizer as Backend
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    from bertprobe.tokenizer import Tokenizer

    vocab = {"hello": 0, "[CLS]": 1, "[SEP]": 2, "[MASK]": 3, "[UNK]": 4, "world": 5}
    backend = Backend(WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = Whitespace()
    tok = Tokenizer(backend, {"cls_token": "[CLS]", "sep_token": "[SEP]", "mask_token": "[MASK]"}, 16)
    assert tok.pad_token_id == 0
    assert 0 not in tok.special_ids and {1, 2, 3, 4} <= tok.special_ids


@pytest.mark.parametrize("architecture, heads", [("ModernBertForMaskedLM", {"mlm"}), ("ModernBertModel", set())])
def test_modernbert_mlm_head_is_recognised_and_its_classifier_head_is_not_one(tmp_path, architecture, heads):
    import transformers

    config = transformers.ModernBertConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2,
    )  # fmt: skip
    getattr(transformers, architecture)(config).save_pretrained(tmp_path)
    assert models.checkpoint_heads(tmp_path) - {"pooler"} == heads
    classifier = tmp_path / "classifier"
    config.num_labels = 2
    transformers.ModernBertForSequenceClassification(config).save_pretrained(classifier)
    assert "mlm" not in models.checkpoint_heads(classifier)  # its "head." feeds a classifier, not a vocabulary


@pytest.mark.parametrize(("dtype", "tolerance"), [("float16", 0.005), ("bfloat16", 0.05)])
def test_half_precision_is_announced_and_stays_near_float32(cli, dtype, tolerance):
    """Half precision changes every probability a little: the numbers stay near float32's, and the run says so
    (on stderr and in the JSON), so a table made in bfloat16 is never taken for float32's."""
    sentences = ("The cat sat on the [MASK].", "Paris is the capital of [MASK].", "He [MASK] the ball to me.")
    for sentence in sentences:
        runs = {}
        for chosen in ("float32", dtype):
            code, stdout, stderr = cli("fillmask", sentence, "-m", "minilm-mlm", "--dtype", chosen, "--json")
            assert code == 0, stderr
            runs[chosen] = (json.loads(stdout), stderr)
        full, half = (runs[d][0]["masks"][0]["predictions"] for d in ("float32", dtype))
        assert full[0]["token"] == half[0]["token"]
        exact = {p["token_id"]: p["score"] for p in full}
        assert max(abs(exact.get(p["token_id"], 0.0) - p["score"]) for p in half) < tolerance
        announced = f"minilm-mlm runs in {dtype}"
        assert announced in runs[dtype][1] and any(announced in n for n in runs[dtype][0]["notices"])
        assert "runs in" not in runs["float32"][1] and not runs["float32"][0]["notices"]
