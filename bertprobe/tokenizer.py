"""A thin word-piece tokenizer over the ``tokenizers`` library.

``tokenizers`` imports in milliseconds where ``transformers.AutoTokenizer`` takes seconds,
and it gives offset mappings for free. Checkpoints without a ``tokenizer.json`` are
converted once through transformers (its fast tokenizer's backend is the same object).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Encoding:
    """One tokenised text: ids with their character spans (special tokens span (0, 0))."""

    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    special: list[bool]
    text: str
    type_ids: tuple[int, ...] = ()  # segment ids (0 for the first text, 1 for a pair's second)
    # The word each piece belongs to, as the tokenizer's pre-tokenizer splits words (None for special
    # tokens; numbering restarts in a pair's second text). WordPiece, byte-level BPE and SentencePiece alike.
    word_ids: tuple[int | None, ...] = ()

    def __len__(self) -> int:
        return len(self.ids)


def _token_content(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value


class Tokenizer:
    """Encode / decode with a checkpoint's own word pieces and special tokens."""

    def __init__(
        self, backend: Any, special: dict[str, str], model_max_length: int, clean_up_spaces: bool = True
    ) -> None:
        self.backend = backend
        self.clean_up_spaces = clean_up_spaces
        self.backend.no_truncation()
        self.backend.no_padding()
        self.model_max_length = model_max_length
        self.mask_token = special.get("mask_token", "[MASK]")
        self.cls_token = special.get("cls_token", "[CLS]")
        self.sep_token = special.get("sep_token", "[SEP]")
        self.pad_token = special.get("pad_token", "[PAD]")
        self.unk_token = special.get("unk_token", "[UNK]")
        self.mask_token_id = backend.token_to_id(self.mask_token)
        self.cls_token_id = backend.token_to_id(self.cls_token)
        self.sep_token_id = backend.token_to_id(self.sep_token)
        own_pad = backend.token_to_id(self.pad_token)
        # Without a pad token, id 0 pads (the attention mask hides it); it is not special: in such a vocabulary id 0
        # can be a real word, which scoring and attention would otherwise leave out wherever it is written.
        self.pad_token_id = 0 if own_pad is None else own_pad
        self.special_ids = frozenset(
            i
            for i in (
                self.mask_token_id,
                self.cls_token_id,
                self.sep_token_id,
                own_pad,
                backend.token_to_id(self.unk_token),
            )
            if i is not None
        ) | frozenset(_added_special_ids(backend))
        self.vocab_size = backend.get_vocab_size(with_added_tokens=True)

    @classmethod
    def from_dir(cls, path: Path, model_max_length: int, model_type: str = "") -> Tokenizer:
        """The checkpoint's tokenizer; ``model_type`` gives the special tokens its files leave unnamed."""
        from tokenizers import Tokenizer as Backend

        special = dict(_FAMILY_SPECIALS.get(model_type, {}))
        declared_max = None
        clean_up = True
        normalising: dict[str, Any] = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            file = path / name
            if file.is_file():
                raw = json.loads(file.read_text(encoding="utf-8"))
                if name == "tokenizer_config.json":
                    normalising = {k: raw[k] for k in _NORMALISER_KEYS if k in raw}
                for key in ("mask_token", "cls_token", "sep_token", "pad_token", "unk_token"):
                    content = _token_content(raw.get(key))
                    if content:
                        special[key] = content
                declared_max = raw.get("model_max_length", declared_max)
                clean_up = bool(raw.get("clean_up_tokenization_spaces", clean_up))
        if (path / "tokenizer.json").is_file():
            backend = Backend.from_file(str(path / "tokenizer.json"))
        else:
            from transformers import AutoTokenizer

            from bertprobe.models.hf import quiet

            with quiet():
                backend = AutoTokenizer.from_pretrained(str(path), use_fast=True).backend_tokenizer
        _honour_normalising(backend, normalising)
        if isinstance(declared_max, int) and 0 < declared_max < model_max_length:
            model_max_length = declared_max
        return cls(backend, special, model_max_length, clean_up)

    def encode(self, text: str, pair: str | None = None) -> Encoding:
        enc = self.backend.encode(text, pair, add_special_tokens=True)
        special = [bool(m) for m in enc.special_tokens_mask]
        return Encoding(
            ids=list(enc.ids),
            # A Unigram (SentencePiece) tokenizer names an unknown piece by its text ("🙂"); the model reads <unk>.
            tokens=[self.backend.id_to_token(i) for i in enc.ids],
            offsets=[tuple(o) for o in enc.offsets],
            special=special,
            text=text,
            type_ids=tuple(enc.type_ids),
            word_ids=tuple(None if s else w for w, s in zip(enc.word_ids, special, strict=True)),
        )

    def decode(self, ids: list[int]) -> str:
        """Text for ids, as transformers' ``tokenizer.decode`` would write it."""
        text = self.backend.decode(ids, skip_special_tokens=False)
        return _clean_up_spaces(text) if self.clean_up_spaces else text

    def id_to_token(self, token_id: int) -> str:
        return self.backend.id_to_token(token_id)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_ids

    @functools.cached_property
    def special_tokens(self) -> dict[str, str]:
        """Each special token's string ("[SEP]", "<s>") and what it is for, in plain words, computed once."""
        roles = {
            self.cls_token: "the token it puts before every input",
            self.sep_token: "the separator it puts after each sentence",
            self.pad_token: "the padding it is normally kept from seeing",
            self.unk_token: "the stand-in for what its vocabulary lacks",
            self.mask_token: "the mask it predicts a hidden word at",
        }
        named = {self.id_to_token(token_id) for token_id in self.special_ids}
        return {token: roles.get(token, "one of its special tokens") for token in sorted(named)}

    @functools.cached_property
    def replacement_ids(self) -> list[int]:
        """Ids BERT's random replacements are drawn from (``masking.REPLACEMENT_RULE``), computed once."""
        from bertprobe.masking import replacement_ids

        return replacement_ids(self.backend.get_vocab(with_added_tokens=True), self.special_ids)


_ROBERTA_SPECIALS = {
    "mask_token": "<mask>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
}
# The special tokens transformers' tokenizer class for each family assumes when neither
# tokenizer_config.json nor special_tokens_map.json names them: roberta-base, xlm-roberta-base and
# albert-base-v2 ship neither file. Families not listed use BERT's ([MASK], [CLS], [SEP], [PAD], [UNK]).
_FAMILY_SPECIALS: dict[str, dict[str, str]] = {
    "roberta": _ROBERTA_SPECIALS,
    "xlm-roberta": _ROBERTA_SPECIALS,
    "camembert": _ROBERTA_SPECIALS,
    "mpnet": {**_ROBERTA_SPECIALS, "unk_token": "[UNK]"},
    "albert": {**_ROBERTA_SPECIALS, "mask_token": "[MASK]", "cls_token": "[CLS]", "sep_token": "[SEP]"},
    "xlm": {**_ROBERTA_SPECIALS, "mask_token": "<special1>", "cls_token": "</s>"},
    "flaubert": {**_ROBERTA_SPECIALS, "mask_token": "<special1>", "cls_token": "</s>"},
}

_NORMALISER_KEYS = ("do_lower_case", "strip_accents", "tokenize_chinese_chars")


def _honour_normalising(backend: Any, options: dict[str, Any]) -> None:
    """Apply tokenizer_config's casing and accent options to a BERT normaliser, as transformers does.

    A cased checkpoint may ship a tokenizer.json whose normaliser lowercases; transformers
    rebuilds the normaliser from ``do_lower_case`` / ``strip_accents``, so the ids differ unless we do too.
    """
    from tokenizers import normalizers

    current = backend.normalizer
    if not options or not isinstance(current, normalizers.BertNormalizer):
        return
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=current.clean_text,
        handle_chinese_chars=bool(options.get("tokenize_chinese_chars", current.handle_chinese_chars)),
        strip_accents=options.get("strip_accents", current.strip_accents),
        lowercase=bool(options.get("do_lower_case", current.lowercase)),
    )


def _added_special_ids(backend: Any) -> list[int]:
    try:
        return [token_id for token_id, tok in backend.get_added_tokens_decoder().items() if tok.special]
    except AttributeError:  # older tokenizers
        return []


def _clean_up_spaces(text: str) -> str:
    # Same replacements as transformers' clean_up_tokenization.
    for before, after in (
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ):
        text = text.replace(before, after)
    return text
