"""Masked-LM primitives below every command that predicts a masked word.

``fillmask``, ``cloze``, ``score``, ``attribute`` and ``pretrain`` all need the same few things:
accept ``[MASK]`` for any model's own mask token, find the masks in an encoded text (refusing a
text without one), run the MLM head at chosen positions of many sequences in as few padded
batches as a token budget allows, and turn one row of logits into ranked predictions. They live
here, so that no command is a library to another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bertprobe.errors import MaskError
from bertprobe.features import encode_checked
from bertprobe.models import LoadedModel
from bertprobe.tokenizer import Encoding

MASK_SPELLING = "[MASK]"
MAX_BATCH_TOKENS = 16384  # padded tokens per forward pass
MAX_LOGIT_FLOATS = 1 << 27  # full-vocabulary logits a non-native model may return per pass (512 MB)

Progress = Callable[[int, int], None]


@dataclass
class Prediction:
    token: str  # the word piece, e.g. "##ing"
    token_id: int
    score: float
    token_str: str  # decoded, as transformers' pipeline writes it


_MASK_VARIANTS = re.compile(r"\[\s*mask\s*\]", re.IGNORECASE)


def normalise_masks(text: str, mask_token: str) -> str:
    """Accept ``[MASK]`` (any case) for any model: rewrite it as the tokenizer's own mask token."""
    return _MASK_VARIANTS.sub(lambda _: mask_token, text)


def mask_positions(encoding: Encoding, mask_id: int) -> list[int]:
    return [i for i, token_id in enumerate(encoding.ids) if token_id == mask_id]


def require_mask_token(lm: LoadedModel) -> None:
    if lm.tokenizer.mask_token_id is None:
        raise MaskError(f"{lm.name}'s tokenizer has no mask token", hint="Pick a masked-LM checkpoint.")


def require_masks(lm: LoadedModel, text: str) -> tuple[Encoding, list[int]]:
    """Encode text written with masks; a text without any is a user error."""
    require_mask_token(lm)
    tok = lm.tokenizer
    encoding = encode_checked(lm, normalise_masks(text, tok.mask_token))
    positions = mask_positions(encoding, tok.mask_token_id)
    if not positions:
        spelled = MASK_SPELLING if tok.mask_token == MASK_SPELLING else f"{MASK_SPELLING} or {tok.mask_token}"
        near = re.search(r"<\s*mask\s*>", text, re.IGNORECASE)
        why = f" ({near.group(0)!r} is not spelled {spelled})" if near else ""
        raise MaskError(f"no mask token in the text{why}: write {spelled} where BERT should predict a word")
    return encoding, positions


def masked_logits(
    lm: LoadedModel,
    sequences: Sequence[Sequence[int]],
    positions: Sequence[Sequence[int]],
    progress: Progress | None = None,
    max_tokens: int = MAX_BATCH_TOKENS,
) -> list[Any]:
    """MLM logits (float32, CPU) at ``positions[i]`` of ``sequences[i]``: one [len(positions[i]), vocab] per sequence.

    Sequences are padded together in as few forward passes as ``max_tokens`` allows. The
    backend runs the MLM head only at the positions asked for (where it knows the family's
    head; otherwise batches are also capped by the size of the full logits).
    """
    import torch

    from bertprobe.features import batches, pad_ids

    if not lm.backend.head_at_positions:  # full-vocabulary logits at every position: cap the batch by them
        vocab = int(lm.config.get("vocab_size") or lm.tokenizer.vocab_size)
        max_tokens = max(1, min(max_tokens, MAX_LOGIT_FLOATS // max(vocab, 1)))
    results: list[Any] = [None] * len(sequences)
    done = 0
    for batch in batches([len(s) for s in sequences], batch_size=len(sequences) or 1, max_tokens=max_tokens):
        input_ids, attention = pad_ids([sequences[i] for i in batch], lm.tokenizer.pad_token_id)
        rows = torch.tensor([r for r, i in enumerate(batch) for _ in positions[i]], dtype=torch.long)
        cols = torch.tensor([p for i in batch for p in positions[i]], dtype=torch.long)
        with torch.inference_mode():
            logits = lm.backend.masked_logits(
                input_ids.to(lm.device), attention.to(lm.device), rows.to(lm.device), cols.to(lm.device)
            )
            logits = logits.float().cpu()
        start = 0
        for i in batch:
            results[i] = logits[start : start + len(positions[i])]
            start += len(positions[i])
        done += len(batch)
        if progress is not None:
            progress(done, len(sequences))
    return results


def top_predictions(lm: LoadedModel, logits_row: Any, top_k: int) -> list[Prediction]:
    probs = logits_row.softmax(dim=-1)
    values, indices = probs.topk(min(top_k, probs.shape[-1]))
    tok = lm.tokenizer
    return [
        Prediction(token=tok.id_to_token(i), token_id=i, score=v, token_str=tok.decode([i]))
        for v, i in zip(values.tolist(), indices.tolist(), strict=False)
    ]
