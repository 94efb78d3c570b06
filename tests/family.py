"""Tiny random checkpoints of the BERT family, each with a tokenizer of its own kind, built offline.

RoBERTa: byte-level BPE with leading-space pieces (``Ġbank``). ALBERT and XLM-R: SentencePiece-
style Unigram pieces (``▁bank``). DistilBERT and ELECTRA: BERT's WordPiece (minilm's vocabulary).
Every checkpoint is saved with transformers' ``save_pretrained``, so transformers' own pipeline
can read it as a reference.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

CORPUS = [
    "the cat sat on the mat and the dog sat on the rug",
    "a river bank is muddy while a money bank is busy",
    "she deposited money at the bank on monday",
    "we sat on the grassy bank of the river",
    "hello world this is a tiny tokenizer for tests",
    "a gripping funny film and a tedious mess of a film",
] * 20

FAMILY = ("roberta", "distilbert", "albert", "electra", "xlm-roberta")
SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def _unigram(special: list[str], lowercase: bool):
    from tokenizers import SentencePieceUnigramTokenizer, normalizers

    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(
        CORPUS, vocab_size=300, special_tokens=special, unk_token=special[special.index("<unk>")]
    )
    if lowercase:
        unigram.normalizer = normalizers.Sequence([unigram.normalizer, normalizers.Lowercase()])
    return unigram


def _save_fast(tokenizer, target: Path, no_types: bool, **special: str) -> None:
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    if special["mask_token"] == "<mask>":  # as in roberta-base / xlm-roberta-base: "<mask>" absorbs the space before it
        tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True, normalized=False)])

    names = ["input_ids", "attention_mask"] if no_types else ["input_ids", "token_type_ids", "attention_mask"]
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=62, model_input_names=names, **special)
    fast.save_pretrained(target)


def _wordpiece(minilm: Path, target: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (minilm / name).is_file():
            shutil.copy(minilm / name, target / name)
    config = json.loads((target / "tokenizer_config.json").read_text())
    config["model_max_length"] = 62
    (target / "tokenizer_config.json").write_text(json.dumps(config))


def build(kind: str, target: Path, minilm: Path, seed: int = 0) -> Path:
    """Save a tiny random masked LM of ``kind`` (ELECTRA: the generator) with its tokenizer into ``target``."""
    import torch
    import transformers
    from tokenizers.processors import TemplateProcessing

    torch.manual_seed(seed)
    if kind == "roberta":
        from tokenizers import ByteLevelBPETokenizer
        from tokenizers.processors import RobertaProcessing

        bpe = ByteLevelBPETokenizer()
        special = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
        bpe.train_from_iterator(CORPUS, vocab_size=400, min_frequency=1, special_tokens=special)
        bpe.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
        _save_fast(bpe, target, no_types=True, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
                   unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")  # fmt: skip
        config = transformers.RobertaConfig(vocab_size=bpe.get_vocab_size(), max_position_embeddings=64,
                                            pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
                                            **SIZES)  # fmt: skip
        model = transformers.RobertaForMaskedLM(config)
    elif kind == "xlm-roberta":
        unigram = _unigram(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], lowercase=False)
        unigram.post_processor = TemplateProcessing(
            single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
        )
        _save_fast(unigram, target, no_types=True, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                   cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")  # fmt: skip
        config = transformers.XLMRobertaConfig(vocab_size=unigram.get_vocab_size(), max_position_embeddings=64,
                                               pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
                                               **SIZES)  # fmt: skip
        model = transformers.XLMRobertaForMaskedLM(config)
    elif kind == "albert":
        unigram = _unigram(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"], lowercase=True)
        unigram.post_processor = TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
        )  # fmt: skip
        _save_fast(unigram, target, no_types=False, cls_token="[CLS]", sep_token="[SEP]", unk_token="<unk>",
                   pad_token="<pad>", mask_token="[MASK]")  # fmt: skip
        # embedding_size != hidden_size: ALBERT's factorised embeddings.
        config = transformers.AlbertConfig(vocab_size=unigram.get_vocab_size(), embedding_size=16,
                                           max_position_embeddings=64, pad_token_id=0, **SIZES)  # fmt: skip
        model = transformers.AlbertForMaskedLM(config)
    elif kind == "distilbert":
        _wordpiece(minilm, target)
        config = transformers.DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                               max_position_embeddings=64)  # fmt: skip
        model = transformers.DistilBertForMaskedLM(config)
    elif kind in {"electra", "electra-discriminator"}:
        _wordpiece(minilm, target)
        config = transformers.ElectraConfig(vocab_size=30522, embedding_size=16, max_position_embeddings=64,
                                            **SIZES)  # fmt: skip
        model = (
            transformers.ElectraForMaskedLM(config) if kind == "electra" else transformers.ElectraForPreTraining(config)
        )
    else:
        raise ValueError(kind)
    model.save_pretrained(target)
    return target
