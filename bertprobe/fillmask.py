"""Masked-token predictions: what BERT's MLM head puts at each ``[MASK]``.

Each mask is predicted from its own final-layer hidden state; the scores are a softmax
over the whole vocabulary at that position, exactly as ``pipeline("fill-mask")`` does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bertprobe.errors import MaskError, TextTooLongError
from bertprobe.models import LoadedModel
from bertprobe.tokenizer import Encoding

MASK_SPELLING = "[MASK]"


@dataclass
class Prediction:
    token: str  # the word piece, e.g. "##ing"
    token_id: int
    score: float
    token_str: str  # decoded, as transformers' pipeline writes it


@dataclass
class MaskPrediction:
    position: int  # index of the mask among the word pieces (with [CLS] at 0)
    char_start: int
    char_end: int
    predictions: list[Prediction]


@dataclass
class FillMaskResult:
    model: str
    revision: str | None
    source: str
    text: str
    top_k: int
    tokens: list[str]
    masks: list[MaskPrediction]
    text_normalised: str  # the text with the model's own mask token; char spans index into it
    filled: str  # the text with every mask replaced by its top-1 word
    notices: list[str] = field(default_factory=list)


_MASK_VARIANTS = re.compile(r"\[\s*mask\s*\]", re.IGNORECASE)


def normalise_masks(text: str, mask_token: str) -> str:
    """Accept ``[MASK]`` (any case) for any model: rewrite it as the tokenizer's own mask token."""
    return _MASK_VARIANTS.sub(lambda _: mask_token, text)


def encode_checked(lm: LoadedModel, text: str) -> Encoding:
    """Tokenise ``text`` and refuse it when the model cannot see all of it."""
    encoding = lm.tokenizer.encode(text)
    limit = lm.tokenizer.model_max_length
    if len(encoding) > limit:
        raise TextTooLongError(f"the text is {len(encoding)} word pieces long; {lm.name} reads at most {limit}")
    return encoding


def mask_positions(encoding: Encoding, mask_id: int) -> list[int]:
    return [i for i, token_id in enumerate(encoding.ids) if token_id == mask_id]


def require_masks(lm: LoadedModel, text: str) -> tuple[Encoding, list[int]]:
    """Encode text written with masks; a text without any is a user error."""
    tok = lm.tokenizer
    if tok.mask_token_id is None:
        raise MaskError(f"{lm.name}'s tokenizer has no mask token", hint="Pick a masked-LM checkpoint.")
    encoding = encode_checked(lm, normalise_masks(text, tok.mask_token))
    positions = mask_positions(encoding, tok.mask_token_id)
    if not positions:
        spelled = MASK_SPELLING if tok.mask_token == MASK_SPELLING else f"{MASK_SPELLING} or {tok.mask_token}"
        near = re.search(r"<\s*mask\s*>", text, re.IGNORECASE)
        why = f" ({near.group(0)!r} is not spelled {spelled})" if near else ""
        raise MaskError(f"no mask token in the text{why}: write {spelled} where BERT should predict a word")
    return encoding, positions


def logits_for(lm: LoadedModel, batch_ids: list[list[int]], positions: list[list[int]] | None = None) -> Any:
    """MLM logits for a batch of id lists (padded here), as a float32 tensor on the CPU.

    With ``positions``, only those rows of each sequence are returned, stacked in order.
    """
    import torch

    width = max(len(ids) for ids in batch_ids)
    pad = lm.tokenizer.pad_token_id
    input_ids = torch.full((len(batch_ids), width), pad, dtype=torch.long)
    attention = torch.zeros((len(batch_ids), width), dtype=torch.long)
    for row, ids in enumerate(batch_ids):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    with torch.inference_mode():
        out = lm.model(input_ids=input_ids.to(lm.device), attention_mask=attention.to(lm.device))
        logits = out["logits"] if isinstance(out, dict) else out.logits
        if positions is not None:
            rows = [logits[r, p] for r, p in enumerate(positions)]
            logits = torch.cat(rows) if rows else logits[:0, 0]
        return logits.float().cpu()


def top_predictions(lm: LoadedModel, logits_row: Any, top_k: int) -> list[Prediction]:
    probs = logits_row.softmax(dim=-1)
    values, indices = probs.topk(min(top_k, probs.shape[-1]))
    tok = lm.tokenizer
    return [
        Prediction(token=tok.id_to_token(i), token_id=i, score=v, token_str=tok.decode([i]))
        for v, i in zip(values.tolist(), indices.tolist(), strict=False)
    ]


def splice(text: str, spans: list[tuple[int, int]], words: list[str]) -> str:
    """Replace character spans of ``text`` with words (word pieces joined without ``##``)."""
    out, cursor = [], 0
    for (start, end), word in sorted(zip(spans, words, strict=False)):
        out.append(text[cursor:start])
        out.append(word.removeprefix("##"))
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def fill_mask(lm: LoadedModel, text: str, top_k: int = 5) -> FillMaskResult:
    """Top-k predictions for every mask in ``text``, each mask predicted independently."""
    if top_k < 1:
        raise MaskError("--top-k must be at least 1", hint="e.g. --top-k 10")
    encoding, positions = require_masks(lm, text)
    logits = logits_for(lm, [encoding.ids], [positions])
    masks = [
        MaskPrediction(
            position=pos,
            char_start=encoding.offsets[pos][0],
            char_end=encoding.offsets[pos][1],
            predictions=top_predictions(lm, logits[row], top_k),
        )
        for row, pos in enumerate(positions)
    ]
    filled = splice(
        encoding.text,
        [(m.char_start, m.char_end) for m in masks],
        [m.predictions[0].token_str for m in masks],
    )
    return FillMaskResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        text=text,
        top_k=top_k,
        tokens=encoding.tokens,
        masks=masks,
        text_normalised=encoding.text,
        filled=filled,
        notices=list(lm.notices),
    )
