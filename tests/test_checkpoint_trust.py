"""Damaged, edited, hostile or foreign checkpoint directories: refused in one line, never run.

Each case makes a corrupted copy of a tiny checkpoint and runs the real CLI on it; the user
must see exit 1, one ``error:`` line and one ``hint:`` line on stderr, and no traceback. The
last tests check that the content fingerprint sees an edit in the middle of the weights, so
neither the feature cache nor a saved probe is served for the edited model.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import time
from pathlib import Path

import pytest

from bertprobe import checkpoint

SENTENCE = "The cat sat on the [MASK]."


def _refused(result, *phrases):
    code, stdout, stderr = result
    lines = stderr.strip().splitlines()
    assert code == 1, stderr
    assert stdout == ""
    assert "Traceback" not in stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def _copy(source: Path, tmp_path: Path, name: str = "model") -> Path:
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def _edit_json(file: Path, **changes) -> None:
    data = json.loads(file.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            data.pop(key, None)
        else:
            data[key] = value
    file.write_text(json.dumps(data))


_DELETE = object()


def _split_header(file: Path) -> tuple[dict, bytes]:
    raw = file.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def _write_safetensors(file: Path, header: dict, data: bytes) -> None:
    encoded = json.dumps(header).encode()
    file.write_bytes(len(encoded).to_bytes(8, "little") + encoded + data)


def _save_tensors(file: Path, tensors: dict) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(file), metadata={"format": "pt"})


def _load_tensors(file: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(file))


# --------------------------------------------------------------------------------------------
# One case per way a checkpoint directory can be wrong. Each mutates a copy of a tiny BERT.
# --------------------------------------------------------------------------------------------


def _rm(*names):
    def mutate(path: Path) -> None:
        for name in names:
            (path / name).unlink()

    return mutate


def _write(name: str, content: str | bytes):
    def mutate(path: Path) -> None:
        (path / name).write_bytes(content.encode() if isinstance(content, str) else content)

    return mutate


def _config(**changes):
    return lambda path: _edit_json(path / "config.json", **changes)


def _config_text(text: str):
    return _write("config.json", text)


def _header(change):
    def mutate(path: Path) -> None:
        header, data = _split_header(path / "model.safetensors")
        _write_safetensors(path / "model.safetensors", change(header) or header, data)

    return mutate


def _raw_weights(change):
    def mutate(path: Path) -> None:
        file = path / "model.safetensors"
        file.write_bytes(change(file.read_bytes()))

    return mutate


def _tensors(change):
    def mutate(path: Path) -> None:
        tensors = _load_tensors(path / "model.safetensors")
        change(tensors)
        _save_tensors(path / "model.safetensors", tensors)

    return mutate


def _set_dtype(header):
    header["embeddings.LayerNorm.bias"]["dtype"] = "F33"


def _swap_offsets(header):
    header["embeddings.LayerNorm.bias"]["data_offsets"] = [0, 64]


def _shift(header):
    for entry in header.values():
        if isinstance(entry, dict) and "data_offsets" in entry:
            entry["data_offsets"] = [o + 4 for o in entry["data_offsets"]]


def _int8(tensors):
    import torch

    tensors["encoder.layer.0.output.dense.weight"] = tensors["encoder.layer.0.output.dense.weight"].to(torch.int8)


def _extra_body(tensors):
    tensors["encoder.layer.0.attention.self.rotary.weight"] = tensors["pooler.dense.bias"].clone()


def _widen(tensors):
    import torch

    tensors["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(128, 32)


def _drop_layer_1(tensors):
    for key in [k for k in tensors if k.startswith("encoder.layer.1.")]:
        del tensors[key]


def _tokenizer_json(path: Path, change) -> None:
    raw = json.loads((path / "tokenizer.json").read_text())
    change(raw)
    (path / "tokenizer.json").write_text(json.dumps(raw))


def _cased(raw: dict) -> None:
    raw["normalizer"]["lowercase"] = False


def _replace_line(file: Path, old: str, new: str) -> None:
    lines = file.read_text().splitlines()
    lines[lines.index(old)] = new
    file.write_text("\n".join(lines) + "\n")


def _no_tokenizer(path: Path) -> None:
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        (path / name).unlink(missing_ok=True)


CASES = {
    # tokenizer files
    "no tokenizer files": ("tokenizer", _no_tokenizer, "has no tokenizer files"),
    "tokenizer.json truncated": ("tokenizer", _write("tokenizer.json", '{"version": "1.0", "model": {'), "tokenizer"),
    "tokenizer.json empty object": ("tokenizer", _write("tokenizer.json", "{}"), "is not a valid tokenizer"),
    "tokenizer.json binary": ("tokenizer", _write("tokenizer.json", b"\x00\xff\xfe" * 20), "tokenizer.json"),
    "tokenizer_config.json corrupt": ("tokenizer", _write("tokenizer_config.json", '{"a": tr'), "valid JSON"),
    "tokenizer_config.json a list": ("tokenizer", _write("tokenizer_config.json", "[1, 2]"), "not a JSON object"),
    "tokenizer_config.json mask_token a list": (
        "tokenizer", lambda p: _edit_json(p / "tokenizer_config.json", mask_token=["[MASK]"]), "not a token string"),
    "tokenizer_config.json model_max_length text": (
        "tokenizer", lambda p: _edit_json(p / "tokenizer_config.json", model_max_length="long"), "model_max_length"),
    "special_tokens_map.json corrupt": ("tokenizer", _write("special_tokens_map.json", "{'cls':"), "valid JSON"),
    "vocab.txt only, and empty": (
        "tokenizer", lambda p: (_rm("tokenizer.json")(p), _write("vocab.txt", "\n\n")(p)), "vocab.txt is empty"),
    "an added token past the embeddings": (
        "tokenizer", lambda p: (_rm("tokenizer.json")(p), _write("added_tokens.json", '{"filmx": 30522}')(p)),
        "the tokenizer has 30,523 tokens but the model's embeddings hold 30,522"),
    "added_tokens.json a list": (
        "tokenizer", lambda p: (_rm("tokenizer.json")(p), _write("added_tokens.json", '["filmx"]')(p)),
        "added_tokens.json is not a JSON object of token to id"),
    "tokenizer bigger than the embeddings": (
        "tokenizer", lambda p: None, "the tokenizer has 30,522 tokens but the model's embeddings hold 1,000"),
    # tokenizer files that disagree: transformers and bertprobe would read them differently (or both wrongly)
    "special_tokens_map.json and tokenizer_config.json name other masks": (
        "tokenizer", lambda p: _edit_json(p / "special_tokens_map.json", mask_token="[UNK]"),
        "special_tokens_map.json makes mask_token \"[UNK]\" but tokenizer_config.json \"[MASK]\""),
    "a cased tokenizer.json under a tokenizer_config without do_lower_case": (
        "tokenizer", lambda p: (_tokenizer_json(p, _cased), _edit_json(p / "tokenizer_config.json",
                                                                        do_lower_case=_DELETE)),
        "tokenizer.json does not lowercase, but tokenizer_config.json does not say do_lower_case"),
    "vocab.txt edited under a tokenizer.json": (
        "tokenizer", lambda p: _replace_line(p / "vocab.txt", "[unused0]", "filmx"),
        "vocab.txt and tokenizer.json disagree: vocab.txt line 2 is \"filmx\""),
    "vocab.txt longer than tokenizer.json's": (
        "tokenizer", lambda p: (p / "vocab.txt").write_text((p / "vocab.txt").read_text() + "filmx\n"),
        "vocab.txt and tokenizer.json disagree: vocab.txt has 30,523 pieces, tokenizer.json 30,522"),
    "tokenizer.json adds no [CLS] and [SEP]": (
        "tokenizer", lambda p: _tokenizer_json(p, lambda t: t.update(post_processor=None)),
        "tokenizer does not frame a text as [CLS] text [SEP] (it makes 'a' into a)"),
    # config.json
    "config truncated": ("config", _config_text('{"model_type": "bert", "hidden_size": 3'), "not valid JSON"),
    "config empty": ("config", _config_text(""), "not valid JSON (empty file)"),
    "config not UTF-8": ("config", _write("config.json", b'{"model_type": "\xff\xfe"}'), "not UTF-8"),
    "config a list": ("config", _config_text("[]"), "is not a model config"),
    "config a string": ("config", _config_text('"bert"'), "is not a model config"),
    "model_type a list": ("config", _config(model_type=["bert"]), "model_type is [\"bert\"], not a string"),
    "num_hidden_layers 'two'": ("config", _config(num_hidden_layers="two"), 'num_hidden_layers is "two"'),
    "num_hidden_layers true": ("config", _config(num_hidden_layers=True), "num_hidden_layers is true"),
    "num_hidden_layers 2.0": ("config", _config(num_hidden_layers=2.0), "num_hidden_layers is 2.0"),
    "hidden_size -1": ("config", _config(hidden_size=-1), "hidden_size is -1"),
    "hidden_size 10**9": ("config", _config(hidden_size=10**9), "hidden_size is 1000000000"),
    "vocab_size 0": ("config", _config(vocab_size=0), "vocab_size is 0"),
    "heads do not divide the width": ("config", _config(num_attention_heads=3), "not a multiple of num_attention"),
    "layer_norm_eps NaN": ("config", _config_text('{"model_type": "bert", "layer_norm_eps": NaN}'), "layer_norm_eps"),
    "is_decoder 'false'": ("config", _config(is_decoder="false"), 'is_decoder is "false"'),
    "unknown hidden_act": ("config", _config(hidden_act="gelu_fancy"), "hidden_act"),
    "architectures a string": ("config", _config(architectures="BertModel"), "architectures"),
    "pad_token_id past the vocabulary": ("config", _config(pad_token_id=40000), "pad_token_id"),
    "type_vocab_size -2": ("config", _config(type_vocab_size=-2), "type_vocab_size"),
    "no max_position_embeddings": ("config", _config(max_position_embeddings=_DELETE), "lacks max_position_embeddings"),
    # config and weights disagree
    "config says fewer layers": ("tensors", _config(num_hidden_layers=1), "says 1 layers but the weights hold 2"),
    "config says more layers": ("tensors", _config(num_hidden_layers=3), "says 3 layers but the weights hold 2"),
    "a weight missing": (
        "tensors", _tensors(lambda t: t.pop("encoder.layer.1.output.dense.weight")), "not a complete BERT checkpoint"),
    "an extra encoder tensor": ("tensors", _tensors(_extra_body), "encoder tensors a BERT with this config.json"),
    "a tensor wider than the config": ("tensors", _tensors(_widen), "has shape [128, 32]"),
    "config wider than the tensors": ("tensors", _config(intermediate_size=128), "size 128) makes it [128]"),
    "quantised int8 weights": ("tensors", _tensors(_int8), "stored as I8"),
    # model.safetensors
    "safetensors empty": ("safetensors", _write("model.safetensors", b""), "too short for a header"),
    "safetensors header length huge": (
        "safetensors", _raw_weights(lambda raw: (2**62).to_bytes(8, "little") + raw[8:]), "header length"),
    "safetensors header length zero": (
        "safetensors", _raw_weights(lambda raw: (0).to_bytes(8, "little") + raw[8:]), "header length"),
    "safetensors header JSON broken": (
        "safetensors", _raw_weights(lambda raw: raw[:8] + b"#" + raw[9:]), "header is not JSON"),
    "safetensors header a list": ("safetensors", _header(lambda h: ["x"]), "not a JSON object"),
    "safetensors data truncated": ("safetensors", _raw_weights(lambda raw: raw[:-1000]), "(truncated)"),
    "safetensors bytes appended": ("safetensors", _raw_weights(lambda raw: raw + b"\0" * 64), "follow the last tensor"),
    "safetensors unknown dtype": ("safetensors", _header(_set_dtype), "unknown dtype 'F33'"),
    "safetensors offsets do not match the shape": ("safetensors", _header(_swap_offsets), "do not match its shape"),
    "safetensors offsets leave a gap": ("safetensors", _header(_shift), "starts at byte 4"),
    # what kind of model it is
    "model_type llama": ("kind", _config(model_type="llama"), "is a 'llama' model, not a BERT-family encoder"),
    "model_type t5": ("kind", _config(model_type="t5"), "is a 't5' model"),
    "unknown architecture": ("kind", _config(model_type="fancy-bert", architectures=["FancyBert"]), "'fancy-bert'"),
    "no model_type": ("kind", _config(model_type=_DELETE), "has no model_type"),
    "custom code (auto_map)": (
        "kind", _config(auto_map={"AutoModel": "modeling_x.XModel"}), "needs custom code to run"),
    "a BERT configured as a decoder": ("kind", _config(is_decoder=True), "configured as a decoder"),
}  # fmt: skip


@pytest.fixture(scope="module")
def small_vocab_path(tmp_path_factory, tiny_encoder_path) -> Path:
    """The tiny encoder's tokenizer (30,522 pieces) over a model with only 1,000 embedding rows."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(3)
    target = tmp_path_factory.mktemp("small-vocab")
    config = BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    BertModel(config).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(tiny_encoder_path / name, target / name)
    return target


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_checkpoint_is_refused_in_one_line(case, cli, tiny_encoder_path, small_vocab_path, tmp_path):
    _, mutate, phrase = CASES[case]
    source = small_vocab_path if case == "tokenizer bigger than the embeddings" else tiny_encoder_path
    model = _copy(source, tmp_path)
    mutate(model)
    _refused(cli("attention", "hi there", "-m", model, "--json"), phrase)


def test_the_tiny_checkpoint_itself_loads(cli, tiny_encoder_path, tmp_path):
    """The control for the cases above: the unbroken copy runs."""
    code, stdout, stderr = cli("attention", "hi there", "-m", _copy(tiny_encoder_path, tmp_path), "--json")
    assert code == 0, stderr and json.loads(stdout)


_DIVERGENT_TOKENIZERS = (
    "special_tokens_map.json and tokenizer_config.json name other masks",
    "a cased tokenizer.json under a tokenizer_config without do_lower_case",
    "tokenizer.json adds no [CLS] and [SEP]",
)


@pytest.mark.parametrize("case", _DIVERGENT_TOKENIZERS)
def test_the_refused_tokenizer_files_would_be_read_otherwise_by_transformers(case, tiny_encoder_path, tmp_path):
    """Why these are refused rather than run: transformers' AutoTokenizer (the reference) reads the same folder
    into other word pieces or another mask, so one of the two runs the model on input it was not trained on."""
    from transformers import AutoTokenizer

    from bertprobe.tokenizer import Tokenizer

    model = _copy(tiny_encoder_path, tmp_path)
    CASES[case][1](model)
    ours = Tokenizer.from_dir(model, 64, "bert")
    theirs = AutoTokenizer.from_pretrained(str(model))
    text = "Hello World, the Cat sat on the [MASK]."
    assert (ours.encode(text).ids, ours.mask_token_id) != (theirs(text)["input_ids"], theirs.mask_token_id)


@pytest.mark.parametrize(
    ("tokenizer_config", "lowercase", "first"),
    [({"do_lower_case": False, "strip_accents": False}, True, "[UNK]"),  # tokenizer_config settles it
     ({"do_lower_case": _DELETE}, True, "hello"),  # tokenizer.json and transformers' default both lowercase
     ({"do_lower_case": _DELETE, "tokenizer_class": "PreTrainedTokenizerFast"}, False, "[UNK]")],  # read as it is
)  # fmt: skip
def test_tokenizer_files_whose_casing_is_settled_still_load(
    tokenizer_config, lowercase, first, cli, tiny_encoder_path, tmp_path
):
    """The control for the casing refusal: where the files leave no doubt, the model runs, cased or not."""
    model = _copy(tiny_encoder_path, tmp_path)
    _tokenizer_json(model, lambda raw: raw["normalizer"].update(lowercase=lowercase))
    _edit_json(model / "tokenizer_config.json", **tokenizer_config)
    code, stdout, stderr = cli("attention", "Hello World", "-m", model, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["tokens"][1] == first  # the uncased vocabulary has no "Hello"


def test_a_gap_in_the_layers_is_refused(cli, tiny_encoder_path, tmp_path):
    model = _copy(tiny_encoder_path, tmp_path)
    tensors = _load_tensors(model / "model.safetensors")
    for key in [k for k in tensors if k.startswith("encoder.layer.1.")]:
        tensors[key.replace("layer.1.", "layer.2.")] = tensors.pop(key)
    _save_tensors(model / "model.safetensors", tensors)
    _config(num_hidden_layers=3)(model)
    _refused(cli("attention", "hi there", "-m", model), "lack layer 1 of the 3")


def test_stray_tensors_outside_bert_are_reported_not_hidden(cli, tiny_encoder_path, tmp_path):
    model = _copy(tiny_encoder_path, tmp_path)
    tensors = _load_tensors(model / "model.safetensors")
    tensors["adapter.down.weight"] = tensors["pooler.dense.bias"].clone()
    tensors["classifier.weight"] = tensors["pooler.dense.bias"].clone()  # a fine-tuning head: normal, quiet
    _save_tensors(model / "model.safetensors", tensors)
    code, stdout, stderr = cli("attention", "hi there", "-m", model, "--json")
    assert code == 0 and json.loads(stdout)
    assert "ignoring 1 tensors that are not part of a BERT model (e.g. adapter.down.weight)" in stderr


def test_an_untied_decoder_that_is_missing_is_refused(cli, tiny_pretraining_path, tmp_path):
    model = _copy(tiny_pretraining_path, tmp_path)
    _config(tie_word_embeddings=False)(model)
    _refused(cli("fillmask", SENTENCE, "-m", model), "no cls.predictions.decoder.weight")


# --------------------------------------------------------------------------------------------
# The transformers path (RoBERTa): the same checks before loading, and transformers' report after
# --------------------------------------------------------------------------------------------


def test_roberta_layer_count_and_missing_weights_are_refused(cli, tiny_roberta_path, tmp_path):
    fewer = _copy(tiny_roberta_path, tmp_path, "fewer")
    _config(num_hidden_layers=1)(fewer)
    _refused(cli("fillmask", "the cat sat on the <mask>", "-m", fewer), "says 1 layers but the weights hold 2")

    lacking = _copy(tiny_roberta_path, tmp_path, "lacking")
    tensors = _load_tensors(lacking / "model.safetensors")
    del tensors["roberta.encoder.layer.1.output.dense.weight"]
    _save_tensors(lacking / "model.safetensors", tensors)
    for command in (("attention", "the cat"), ("fillmask", "the cat sat on the <mask>")):
        _refused(cli(*command, "-m", lacking), "lacks 1", "they would be random")

    for change, phrase in (
        ({"vocab_size": 500}, "says vocab_size 500 but the word embeddings in the weights are"),
        ({"hidden_size": 64}, "says hidden_size 64 but"),
        ({"intermediate_size": 128}, "some weights do not have the shapes config.json gives"),  # transformers' check
    ):
        wrong = _copy(tiny_roberta_path, tmp_path, "wrong-" + next(iter(change)))
        _config(**change)(wrong)
        _refused(cli("attention", "the cat", "-m", wrong), phrase)


# --------------------------------------------------------------------------------------------
# Sharded checkpoints: the index, its shard paths, its shards
# --------------------------------------------------------------------------------------------


def _shard(path: Path) -> None:
    tensors = _load_tensors(path / "model.safetensors")
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, keys in halves.items():
        _save_tensors(path / shard, {k: tensors[k] for k in keys})
        weight_map.update(dict.fromkeys(keys, shard))
    (path / "model.safetensors").unlink()
    (path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _index(change):
    def mutate(path: Path) -> None:
        file = path / "model.safetensors.index.json"
        index = json.loads(file.read_text())
        change(index["weight_map"])
        file.write_text(json.dumps(index))

    return mutate


def _first_tensor_to(shard: str):
    def change(weight_map: dict) -> None:
        weight_map[sorted(weight_map)[0]] = shard

    return change


SHARD_CASES = {
    "index not JSON": (_write("model.safetensors.index.json", '{"weight_map": {'), "not valid JSON"),
    "index without weight_map": (_write("model.safetensors.index.json", '{"metadata": {}}'), "has no weight_map"),
    "index weight_map a list": (_write("model.safetensors.index.json", '{"weight_map": ["a"]}'), "has no weight_map"),
    "a shard missing": (_rm("model-00002-of-00002.safetensors"), "missing 1 of the 2 weight shards"),
    "a shard path with ../": (_index(_first_tensor_to("../outside.safetensors")), "outside the model directory"),
    "a shard path through a subfolder ../": (_index(_first_tensor_to("sub/../../x.safetensors")), "outside the model"),
    "an absolute shard path": (_index(_first_tensor_to("/etc/passwd")), "outside the model directory"),
    "a Windows shard path": (_index(_first_tensor_to("C:\\weights.safetensors")), "outside the model directory"),
    "a shard that is a pickle": (_index(_first_tensor_to("pytorch_model.bin")), "not a safetensors file"),
    "a shard name that is a number": (_index(_first_tensor_to(7)), "not a shard file name"),
    "a tensor no shard holds": (_index(lambda m: m.update({"bert.extra.weight": m[sorted(m)[0]]})), "no shard holds"),
    "a shard truncated": (
        lambda p: (p / "model-00001-of-00002.safetensors").write_bytes(
            (p / "model-00001-of-00002.safetensors").read_bytes()[:-10]), "(truncated)"),
}  # fmt: skip


def test_a_sharded_checkpoint_loads_and_every_broken_index_is_refused(cli, tiny_encoder_path, tmp_path):
    good = _copy(tiny_encoder_path, tmp_path, "sharded")
    _shard(good)
    (tmp_path / "outside.safetensors").write_bytes(b"not weights")
    code, stdout, stderr = cli("attention", "hi there", "-m", good, "--json")
    assert code == 0, stderr
    reference = cli("attention", "hi there", "-m", tiny_encoder_path, "--json")[1]
    assert json.loads(stdout)["layers"] == json.loads(reference)["layers"]
    for case, (mutate, phrase) in SHARD_CASES.items():
        model = _copy(good, tmp_path, case.replace(" ", "-").replace("/", "-"))
        mutate(model)
        _refused(cli("attention", "hi there", "-m", model), phrase)


# --------------------------------------------------------------------------------------------
# Pickle weights: only ever torch.load(weights_only=True), and its failure is one line
# --------------------------------------------------------------------------------------------


class _Payload:
    """Unpickling this runs a shell command: what a hostile pytorch_model.bin would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bin_checkpoint(source: Path, tmp_path: Path, name: str, write) -> Path:
    model = _copy(source, tmp_path, name)
    tensors = _load_tensors(model / "model.safetensors")
    (model / "model.safetensors").unlink()
    write(model / "pytorch_model.bin", tensors)
    return model


def test_pickle_weights_are_read_safely_or_refused(cli, tiny_encoder_path, tmp_path):
    import torch

    marker = tmp_path / "payload-ran"
    good = _bin_checkpoint(tiny_encoder_path, tmp_path, "good", lambda f, t: torch.save(t, f))
    code, stdout, stderr = cli("attention", "hi there", "-m", good, "--json")
    assert code == 0, stderr
    reference = cli("attention", "hi there", "-m", tiny_encoder_path, "--json")[1]
    assert json.loads(stdout)["layers"] == json.loads(reference)["layers"]

    hostile = {
        "hostile zip pickle": lambda f, t: torch.save({**t, "x": _Payload(marker)}, f),
        "hostile legacy pickle": lambda f, t: f.write_bytes(pickle.dumps({"x": _Payload(marker)})),
        "hostile old-format torch.save": lambda f, t: torch.save(
            {"x": _Payload(marker)}, f, _use_new_zipfile_serialization=False
        ),
    }
    broken = {
        "truncated": lambda f, t: (torch.save(t, f), f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])),
        "not a state dict": lambda f, t: torch.save(list(t.values()), f),
        "nested state dict": lambda f, t: torch.save({"state_dict": t}, f),
        "text": lambda f, t: f.write_text("hello"),
    }
    for name, write in {**hostile, **broken}.items():
        model = _bin_checkpoint(tiny_encoder_path, tmp_path, name.replace(" ", "-"), write)
        for command in (("attention", "hi there"), ("sense", "bank")):
            line = _refused(cli(*command, "-m", model), "pytorch_model.bin")
            assert ("cannot be loaded as plain weights" in line) or ("does not hold a state dict" in line)
    assert not marker.exists(), "a pickle payload ran"


# --------------------------------------------------------------------------------------------
# Not a BERT-family encoder, in every command that loads a model
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_gpt2_path(tmp_path_factory, tiny_roberta_path) -> Path:
    """A random-weight GPT2LMHeadModel (a decoder) with a byte-level BPE tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(4)
    target = tmp_path_factory.mktemp("tiny-gpt2")
    config = GPT2Config(vocab_size=400, n_positions=64, n_embd=32, n_layer=2, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(target)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (tiny_roberta_path / name).is_file():
            shutil.copy(tiny_roberta_path / name, target / name)
    return target


def _every_command(tmp_path: Path, model: Path) -> list[tuple]:
    """Each command that loads a model, with inputs it accepts (pretrain: --from)."""
    data = tmp_path / "d.csv"
    data.write_text("text,label\n" + "".join(f"good film {i},positive\nbad film {i},negative\n" for i in range(10)))
    cloze = tmp_path / "c.jsonl"
    cloze.write_text(json.dumps({"text": SENTENCE, "answers": ["mat"]}) + "\n")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat.\n" * 20)
    return [
        ("fillmask", SENTENCE, "-m", model),
        ("sense", "bank", "-m", model),
        ("cls-train", "--data", data, "--out", tmp_path / "probe", "-m", model),
        ("attribute", SENTENCE, "--target", "mat", "-m", model),
        ("nsp", "I was hungry.", "So I ate.", "-m", model),
        ("attention", "hi there", "-m", model),
        ("cloze", "--data", cloze, "-m", model),
        ("pretrain", "--from", model, "--corpus", corpus, "--out", tmp_path / "run", "--steps", 2),
    ]


def test_a_gpt2_is_refused_by_every_command_naming_the_bert_family(cli, tiny_gpt2_path, tmp_path):
    for command in _every_command(tmp_path, tiny_gpt2_path):
        line = _refused(cli(*command), "is a 'gpt2' model, not a BERT-family encoder")
        assert "bert, " in line and "roberta" in line  # names the family it supports
    assert not (tmp_path / "probe").exists()
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())  # pretrain checks --out first


@pytest.mark.parametrize(
    ("case", "phrase"),
    [("safetensors data truncated", "(truncated)"), ("no tokenizer files", "has no tokenizer files"),
     ("config says fewer layers", "says 1 layers")],
)  # fmt: skip
def test_a_broken_checkpoint_is_refused_by_every_command(case, phrase, cli, tiny_pretraining_path, tmp_path):
    good = _copy(tiny_pretraining_path, tmp_path, "good")
    data = tmp_path / "d.csv"
    _every_command(tmp_path, good)  # writes the data files
    code, _, stderr = cli("cls-train", "--data", data, "--out", tmp_path / "saved", "-m", good)
    assert code == 0, stderr
    broken = _copy(good, tmp_path, "broken")
    CASES[case][1](broken)
    shutil.rmtree(good)
    broken.rename(good)  # the saved probe's own model is now the broken one
    from bertprobe import models

    models._load_cached.cache_clear()  # each CLI run is a new process; here they share one
    commands = [*_every_command(tmp_path, good), ("cls-predict", tmp_path / "saved", "a good film", "-m", good)]
    for command in commands:
        _refused(cli(*command), phrase)


def test_trust_remote_code_is_never_enabled():
    source = Path(checkpoint.__file__).parent
    for file in source.rglob("*.py"):
        text = file.read_text()
        assert "trust_remote_code=True" not in text.replace(" ", ""), file


# --------------------------------------------------------------------------------------------
# `bertprobe models` lists the good snapshots of a Hugging Face cache and names the broken ones
# --------------------------------------------------------------------------------------------


def _snapshot(hub: Path, repo: str, source: Path, mutate=None) -> None:
    folder = hub / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(source, snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(snapshot.name)
    (folder / "blobs").mkdir()
    if mutate:
        mutate(snapshot)


def test_models_survives_broken_snapshots_in_the_hub_cache(
    cli, tiny_encoder_path, tiny_gpt2_path, tmp_path, monkeypatch
):
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    hub.mkdir()
    _snapshot(hub, "org/good-bert", tiny_encoder_path)
    _snapshot(hub, "org/truncated", tiny_encoder_path, _raw_weights(lambda raw: raw[: len(raw) // 2]))
    _snapshot(hub, "org/bad-config", tiny_encoder_path, _config_text("{"))
    _snapshot(hub, "org/wrong-types", tiny_encoder_path, _config(num_hidden_layers="two"))
    _snapshot(
        hub, "org/bad-index", tiny_encoder_path, lambda p: (_shard(p), _rm("model-00002-of-00002.safetensors")(p))
    )
    _snapshot(hub, "org/a-gpt2", tiny_gpt2_path)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    code, stdout, stderr = cli("models", "--json")
    assert code == 0, stderr
    names = [m["name"] for m in json.loads(stdout)["models"]]
    assert "org/good-bert" in names and "minilm" in names
    assert not {"org/truncated", "org/bad-config", "org/wrong-types", "org/bad-index", "org/a-gpt2"} & set(names)
    for broken in ("org/truncated", "org/bad-config", "org/wrong-types", "org/bad-index"):
        assert f"note: skipped {broken}: " in stderr
    assert "org/a-gpt2" not in stderr and "Traceback" not in stderr  # not a BERT: left out quietly, as before


def test_models_leaves_out_a_snapshot_with_a_config_but_no_weights(cli, tiny_encoder_path, tmp_path, monkeypatch):
    # Loading only a tokenizer leaves config.json and tokenizer files: listed as a model with an encoder head, it
    # then failed offline with "weights not cached".
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    hub.mkdir()
    _snapshot(hub, "org/tokenizer-only", tiny_encoder_path, _rm("model.safetensors"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    code, stdout, stderr = cli("models", "--json")
    assert code == 0, stderr
    assert "org/tokenizer-only" not in [m["name"] for m in json.loads(stdout)["models"]]


# --------------------------------------------------------------------------------------------
# The content fingerprint: the whole of every file, remembered by path + size + times + inode
# --------------------------------------------------------------------------------------------


def _age(*files: Path) -> None:
    """Make files look written a minute ago (a fresh file is re-hashed: it might change again this tick)."""
    past = time.time_ns() - 60_000_000_000
    for file in files:
        os.utime(file, ns=(past, past))


def _flip_middle_byte(file: Path) -> None:
    _, data = _split_header(file)
    raw = bytearray(file.read_bytes())
    middle = len(raw) - len(data) // 2
    raw[middle] ^= 0x01  # the lowest bit of one float's byte: a tiny, finite change
    file.write_bytes(bytes(raw))


def test_an_edit_in_the_middle_of_the_weights_changes_the_fingerprint(tiny_encoder_path, tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    model = _copy(tiny_encoder_path, tmp_path)
    weights = model / "model.safetensors"
    _age(weights)
    before = checkpoint.fingerprint("m", model)
    memo = json.loads((tmp_path / "cache" / checkpoint.MEMO_FILE).read_text())["files"]
    assert memo[os.path.realpath(weights)]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert checkpoint.fingerprint("m", _copy(model, tmp_path, "elsewhere")) == before  # content, not location
    size = weights.stat().st_size
    _flip_middle_byte(weights)
    assert weights.stat().st_size == size
    assert checkpoint.fingerprint("m", model) != before
    _flip_middle_byte(weights)  # back to the original bytes: back to the original fingerprint
    assert checkpoint.fingerprint("m", model) == before


def test_the_memo_saves_the_hash_and_is_rebuilt_when_corrupt(tiny_encoder_path, tmp_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    model = _copy(tiny_encoder_path, tmp_path)
    weights = model / "model.safetensors"
    _age(weights)
    hashed: list[Path] = []
    real_hash = checkpoint.sha256_file
    monkeypatch.setattr(checkpoint, "sha256_file", lambda f: hashed.append(f) or real_hash(f))

    first = checkpoint.fingerprint("m", model)
    assert weights in hashed
    hashed.clear()
    assert checkpoint.fingerprint("m", model) == first and weights not in hashed  # a memo hit

    memo = tmp_path / "cache" / checkpoint.MEMO_FILE
    for garbage in ("{", "[]", '{"version": 1, "files": {"x": 3}}', "\xff"):
        memo.write_text(garbage)
        hashed.clear()
        assert checkpoint.fingerprint("m", model) == first and weights in hashed
        assert json.loads(memo.read_text())["version"] == 1  # rewritten whole

    # A memo entry that lies about the hash is only used while the file's stat matches it.
    entries = json.loads(memo.read_text())
    entries["files"][os.path.realpath(weights)]["sha256"] = "0" * 64
    memo.write_text(json.dumps(entries))
    _flip_middle_byte(weights)
    _age(weights)
    assert checkpoint.fingerprint("m", model) not in (first, "m#" + "0" * 16)

    # A file written moments ago is hashed but not remembered: it could change again within one tick.
    fresh = _copy(tiny_encoder_path, tmp_path, "fresh")
    (fresh / "model.safetensors").write_bytes((fresh / "model.safetensors").read_bytes())
    hashed.clear()
    checkpoint.fingerprint("m", fresh)
    checkpoint.fingerprint("m", fresh)
    assert hashed.count(fresh / "model.safetensors") == 2


def test_a_hub_snapshot_is_fingerprinted_by_content_too(tiny_encoder_path, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from bertprobe import models, probe

    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _snapshot(tmp_path / "hub", "org/tiny-bert", tiny_encoder_path)
    models._load_cached.cache_clear()
    hub = models.load("org/tiny-bert", device="cpu", offline=True).fingerprint
    local = models.load(str(tiny_encoder_path), device="cpu").fingerprint
    assert hub.startswith("org/tiny-bert@0123456789abcdef") and probe.weights_id(hub) == probe.weights_id(local)
    snapshot = next((tmp_path / "hub").glob("models--org--tiny-bert/snapshots/*"))
    _flip_middle_byte(snapshot / "model.safetensors")  # a blob edited in the cache, same commit
    models._load_cached.cache_clear()
    edited = models.load("org/tiny-bert", device="cpu", offline=True).fingerprint
    assert edited.split("#")[0] == hub.split("#")[0] and probe.weights_id(edited) != probe.weights_id(hub)
    models._load_cached.cache_clear()


def test_a_memo_write_killed_at_each_step_leaves_the_same_fingerprint(tiny_encoder_path, tmp_path):
    import subprocess
    import sys

    model = _copy(tiny_encoder_path, tmp_path)
    _age(model / "model.safetensors")
    code = f"import pathlib, bertprobe.checkpoint as c; print(c.fingerprint('m', pathlib.Path({str(model)!r})))"
    root = Path(checkpoint.__file__).parent.parent

    def run(cache: Path, kill_after: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "BERTPROBE_CACHE": str(cache), "PYTHONPATH": str(root)}
        env.pop("BERTPROBE_TEST_KILL_AFTER", None)
        if kill_after:
            env["BERTPROBE_TEST_KILL_AFTER"] = kill_after
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)

    clean = run(tmp_path / "clean").stdout
    assert clean.startswith("m#")
    for step in ("temp-written", "renamed"):
        cache = tmp_path / step
        killed = run(cache, f"{checkpoint.MEMO_STEP}:{step}")
        assert killed.returncode == -9 and killed.stdout == ""
        assert run(cache).stdout == clean  # the next run is right whatever the kill left
        memo = json.loads((cache / checkpoint.MEMO_FILE).read_text())
        assert os.path.realpath(model / "model.safetensors") in memo["files"]
        assert [p.name for p in cache.iterdir()] == [checkpoint.MEMO_FILE]  # no stray temporary file


def _train(cli, model: Path, data: Path, out: Path):
    code, stdout, stderr = cli("cls-train", "--data", data, "--model", model, "--out", out, "--json")
    assert code == 0, stderr
    return json.loads(stdout)


def test_edited_weights_get_neither_the_cached_features_nor_the_saved_probe(
    cli, tiny_encoder_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    model = _copy(tiny_encoder_path, tmp_path)
    _age(model / "model.safetensors")
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as handle:
        rows = [(f"a {w} film", "positive") for w in ("good", "fine", "great", "grand", "superb", "lovely")]
        rows += [(f"a {w} film", "negative") for w in ("bad", "poor", "awful", "dull", "weak", "grim")]
        csv.writer(handle).writerows([("text", "label"), *rows])
    first = _train(cli, model, data, tmp_path / "probe")
    assert (first["cache_misses"], first["cache_hits"]) == (1, 0)
    assert _train(cli, model, data, tmp_path / "probe2")["cache_hits"] == 1  # unchanged weights: served

    from bertprobe import models

    _flip_middle_byte(model / "model.safetensors")
    models._load_cached.cache_clear()  # the CLI runs in this process; a new process would not remember
    edited = _train(cli, model, data, tmp_path / "probe3")
    assert (edited["cache_misses"], edited["cache_hits"]) == (1, 0)
    _refused(cli("cls-predict", tmp_path / "probe", "a good film", "--model", model), "this probe was trained on")


def test_added_tokens_of_a_slow_tokenizer_change_the_fingerprint(cli, tiny_encoder_path, tmp_path, monkeypatch):
    """Without tokenizer.json, added_tokens.json decides how text is split: cached features and probes must see it."""
    import torch

    from bertprobe import models

    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))
    model = _copy(tiny_encoder_path, tmp_path)
    (model / "tokenizer.json").unlink()
    tensors = _load_tensors(model / "model.safetensors")
    words = tensors["embeddings.word_embeddings.weight"]
    tensors["embeddings.word_embeddings.weight"] = torch.cat([words, words[:1]])  # a row for one added token
    _save_tensors(model / "model.safetensors", tensors)
    _edit_json(model / "config.json", vocab_size=30523)
    data = tmp_path / "d.csv"
    with data.open("w", newline="") as handle:
        rows = [(f"a {w} filmx", "positive") for w in ("good", "fine", "great", "grand", "superb", "lovely")]
        rows += [(f"a {w} filmx", "negative") for w in ("bad", "poor", "awful", "dull", "weak", "grim")]
        csv.writer(handle).writerows([("text", "label"), *rows])
    models._load_cached.cache_clear()
    _train(cli, model, data, tmp_path / "probe")

    (model / "added_tokens.json").write_text(json.dumps({"filmx": 30522}))  # "filmx" is now one word piece
    models._load_cached.cache_clear()
    edited = _train(cli, model, data, tmp_path / "probe2")
    assert (edited["cache_misses"], edited["cache_hits"]) == (1, 0)
    _refused(cli("cls-predict", tmp_path / "probe", "a good filmx", "--model", model), "this probe was trained on")
    models._load_cached.cache_clear()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("backend", ["native", "transformers"])
def test_weights_holding_nan_or_inf_are_refused_not_computed_with(
    value, backend, cli, tiny_pretraining_path, tmp_path, monkeypatch
):
    """A NaN weight makes every score NaN (or, worse, a plausible-looking wrong ranking): refuse it."""
    if backend == "transformers":
        monkeypatch.setenv("BERTPROBE_BACKEND", "transformers")
    model = _copy(tiny_pretraining_path, tmp_path)
    tensors = _load_tensors(model / "model.safetensors")
    tensors["bert.encoder.layer.1.output.dense.weight"][3, 5] = value
    _save_tensors(model / "model.safetensors", tensors)
    _refused(
        cli("fillmask", SENTENCE, "-m", model, "--json"), "bert.encoder.layer.1.output.dense.weight", "NaN or infinite"
    )
    _refused(cli("nsp", "I was hungry.", "So I ate.", "-m", model), "1 NaN or infinite value")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat.\nthe dog sat on the rug.\n")
    out = tmp_path / "out"
    _refused(cli("pretrain", "--from", str(model), "--corpus", str(corpus), "--out", str(out), "--steps", "1"), "NaN")


def test_a_weight_too_large_for_float16_is_refused_at_that_dtype_only(cli, tiny_pretraining_path, tmp_path):
    model = _copy(tiny_pretraining_path, tmp_path)
    tensors = _load_tensors(model / "model.safetensors")
    tensors["bert.encoder.layer.0.output.dense.bias"][0] = 1e6  # fine in float32, inf in float16
    _save_tensors(model / "model.safetensors", tensors)
    code, stdout, stderr = cli("fillmask", SENTENCE, "-m", model, "--json")
    assert code == 0, stderr
    code, stdout, stderr = cli("fillmask", SENTENCE, "-m", model, "--dtype", "float16")
    _refused((code, stdout, stderr), "as float16")
    assert "--dtype float32" in stderr.splitlines()[1]


def test_output_rows_beyond_the_tokenizer_are_announced(cli, minilm_path, tmp_path):
    """A vocabulary padded to a round size: ids past the tokenizer's pieces show as an empty token, so say so."""
    import torch
    from transformers import BertForMaskedLM

    from tests.conftest import _copy_tokenizer, _tiny_config

    torch.manual_seed(0)
    BertForMaskedLM(_tiny_config(vocab_size=30528)).save_pretrained(tmp_path / "padded")
    _copy_tokenizer(minilm_path, tmp_path / "padded")
    code, stdout, stderr = cli("fillmask", "The cat sat on the [MASK].", "-m", tmp_path / "padded", "--json")
    assert code == 0 and json.loads(stdout)
    assert "predicts over 30,528 ids but its tokenizer has pieces for 30,522" in stderr
    # The encoder path predicts nothing, so it has nothing to announce; nor has a model without padding.
    code, _, stderr = cli("attention", "The cat sat.", "-m", tmp_path / "padded", "--json")
    assert code == 0 and "predicts over" not in stderr
    code, _, stderr = cli("fillmask", "The cat sat on the [MASK].", "-m", "tiny-mlm", "--json")
    assert code == 0 and "predicts over" not in stderr


def test_a_safetensors_metadata_that_is_not_strings_is_refused_in_one_line(cli, tiny_encoder_path, tmp_path):
    # safetensors reads __metadata__ as a map of string to string: anything else passed the header check and then
    # ended in a SafetensorError traceback when the weights were loaded.
    for metadata in ({"format": ["pt"]}, "pt", {"format": 1}):
        model = _copy(tiny_encoder_path, tmp_path, name=f"model-{len(list(tmp_path.iterdir()))}")
        _header(lambda header, metadata=metadata: header.update(__metadata__=metadata))(model)
        _refused(cli("attention", "hi there", "-m", model, "--json"), "__metadata__")
    model = _copy(tiny_encoder_path, tmp_path, name="no-metadata")  # null, as safetensors allows, still loads
    _header(lambda header: header.update(__metadata__=None))(model)
    code, _, stderr = cli("attention", "hi there", "-m", model, "--json")
    assert code == 0, stderr


def test_models_lists_only_snapshots_a_command_can_run(cli, tiny_encoder_path, tmp_path, monkeypatch):
    # Each of these was listed ("every model listed gives contextual vectors"), then refused by every command.
    import huggingface_hub.constants

    hub = tmp_path / "hub"
    hub.mkdir()
    _snapshot(hub, "org/good-bert", tiny_encoder_path)
    unrunnable = {
        "org/no-tokenizer": (_no_tokenizer, "has no tokenizer files"),
        "org/decoder": (_config(is_decoder=True), "configured as a decoder"),
        "org/custom-code": (_config(auto_map={"AutoModel": "modeling_x.XModel"}), "needs custom code"),
        "org/relative-positions": (_config(position_embedding_type="relative_key"), "relative_key"),
        "org/layer-missing": (_config(num_hidden_layers=3), "says 3 layers but the weights hold 2"),
    }
    for repo, (mutate, _) in unrunnable.items():
        _snapshot(hub, repo, tiny_encoder_path, mutate)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    code, stdout, stderr = cli("models", "--json")
    assert code == 0, stderr
    names = [m["name"] for m in json.loads(stdout)["models"]]
    assert "org/good-bert" in names and not set(unrunnable) & set(names)
    for repo, (_, phrase) in unrunnable.items():
        (line,) = [line for line in stderr.splitlines() if f"skipped {repo}: " in line]
        assert phrase in line, line
    assert "Traceback" not in stderr
