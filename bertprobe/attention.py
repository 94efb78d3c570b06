"""Where BERT's attention goes: [CLS] to each token, each token to [CLS] and [SEP], per layer.

Attention probabilities come from an explicit softmax (fused kernels do not return them).
Summaries follow Clark et al. 2019, "What does BERT look at?": attention entropy per layer
and the share of attention that lands on the special tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bertprobe.errors import InputError
from bertprobe.features import encode_checked
from bertprobe.inputs import Problem, length_problem
from bertprobe.layers import resolve_head, resolve_layer
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered


@dataclass
class LayerSummary:
    layer: int  # 1-based encoder layer
    entropy_bits: float  # mean over heads and query tokens
    to_cls: float  # mean attention mass on [CLS], over heads and query tokens
    to_sep: float  # mean attention mass on [SEP]
    special_share: float  # to_cls + to_sep (+ any other special token)
    cls_top_token: str  # the non-special token [CLS] attends to most
    cls_top_weight: float


@dataclass
class AttentionResult(Rendered):
    model: str
    revision: str | None
    text: str
    tokens: list[str]
    special: list[bool]
    num_layers: int
    num_heads: int
    head: int | None  # 1-based head averaged over, or None for the mean over heads
    layer: int | None  # layer drilled into (1..L, resolved from --layer), or None
    layers: list[LayerSummary]
    cls_to_token: list[list[float]]  # [layer][token]: attention from [CLS] to each token
    token_to_cls: list[list[float]]  # [layer][token]: attention from each token to [CLS]
    token_to_sep: list[list[float]]  # [layer][token]: attention from each token to the [SEP] tokens
    matrix: list[list[float]] | None = None  # [query][key] at --layer, when given
    notices: list[str] = field(default_factory=list)


# Texts padded into one forward pass hold layers x heads x tokens x longest probabilities each:
# about 75 MB for bert-base at this many padded tokens of 128-piece texts.
MAX_BATCH_TOKENS = 1024


def attention(lm: LoadedModel, text: str, layer: int | None = None, head: int | None = None) -> AttentionResult:
    """Per-layer attention summaries for ``text``, averaged over heads (or one ``head``)."""
    return attention_many(lm, [text], layer=layer, head=head)[0]


def attention_many(
    lm: LoadedModel,
    texts: list[str],
    layer: int | None = None,
    head: int | None = None,
    progress: Any = None,
    max_tokens: int = MAX_BATCH_TOKENS,
) -> list[AttentionResult]:
    """``attention`` of each text, the texts padded into shared forward passes (padding is masked out).

    Each result equals its text's own run up to float rounding: a padded key gets no attention, and a
    batch runs other matrix shapes, which can change the last digits.
    """
    import torch

    from bertprobe.features import batches, pad_ids

    encodings = [_encode(lm, text) for text in texts]
    results: dict[int, AttentionResult] = {}
    done = 0
    for batch in batches([len(e.ids) for e in encodings], batch_size=len(texts) or 1, max_tokens=max_tokens):
        input_ids, mask = pad_ids([encodings[i].ids for i in batch], lm.tokenizer.pad_token_id)
        # The backend returns probabilities (an explicit softmax) and leaves the cached model's kernels as they were.
        with torch.inference_mode():
            attentions = lm.backend.forward(
                input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device), attentions=True
            ).attentions
        stacked = torch.stack(list(attentions)).float().cpu()  # [L, B, H, T, T]
        for row, index in enumerate(batch):
            size = len(encodings[index].ids)
            probs = stacked[:, row, :, :size, :size]
            results[index] = _summarise(lm, texts[index], encodings[index], probs, layer, head)
        done += len(batch)
        if progress is not None:
            progress(done, len(texts))
    return [results[index] for index in range(len(texts))]


def _special(lm: LoadedModel, encoding: Any) -> list[bool]:
    """Special positions: the tokens the tokenizer added, and any [CLS] or [SEP] typed in the text.

    A typed [SEP] is the model's own [SEP] (and counts in →[SEP]), though the tokenizer marks only the
    tokens it adds: counting both keeps special >= →[CLS] + →[SEP] and keeps [SEP] out of the words.
    """
    ids = (lm.tokenizer.cls_token_id, lm.tokenizer.sep_token_id)
    return [s or t in ids for s, t in zip(encoding.special, encoding.ids, strict=True)]


def _encode(lm: LoadedModel, text: str) -> Any:
    encoding = encode_checked(lm, text)
    reason = _no_words(lm, encoding)
    if reason is not None:
        raise InputError(reason, hint='e.g. bertprobe attention "The cat sat on the mat."')
    return encoding


def _no_words(lm: LoadedModel, encoding: Any) -> str | None:
    # An empty text, a zero-width space, control characters or a typed [SEP] leave special tokens alone.
    return "the text has no words to look at (only special tokens)" if all(_special(lm, encoding)) else None


def text_problem(lm: LoadedModel) -> Problem:
    """For inputs.TextSource.check: why a text cannot be looked at (too long, no words) or None, and its word pieces.

    The same refusals as a one-text run, found before any model work so that a file's bad line is named.
    """
    return length_problem(lm, encoded=lambda encoding: _no_words(lm, encoding))


def _summarise(
    lm: LoadedModel, text: str, encoding: Any, probs: Any, layer: int | None, head: int | None
) -> AttentionResult:
    """The result for one text from its attention probabilities [layers, heads, tokens, tokens]."""
    num_layers, num_heads = probs.shape[0], probs.shape[1]
    if layer is not None:
        layer = resolve_layer(layer, num_layers, lm.name, embeddings=False)
    if head is not None:
        head = resolve_head(head, num_heads, lm.name)
    chosen = probs[:, head - 1 : head] if head is not None else probs  # [L, h, T, T]

    tok = lm.tokenizer
    cls_index = [i for i, t in enumerate(encoding.ids) if t == tok.cls_token_id][:1] or [0]
    sep_index = [i for i, t in enumerate(encoding.ids) if t == tok.sep_token_id]
    marked = _special(lm, encoding)
    special_index = [i for i, s in enumerate(marked) if s]
    ordinary = [i for i, s in enumerate(marked) if not s]

    mean_heads = chosen.mean(dim=1)  # [L, T, T]
    cls_row = mean_heads[:, cls_index[0], :]  # [L, T]
    to_cls = mean_heads[:, :, cls_index[0]]
    to_sep = mean_heads[:, :, sep_index].sum(-1) if sep_index else mean_heads[:, :, 0] * 0
    entropy = -(chosen.clamp_min(1e-12).log2() * chosen).sum(-1)  # [L, h, T]

    layers = []
    for index in range(num_layers):
        if ordinary:
            best = max(ordinary, key=lambda i, row=cls_row[index]: float(row[i]))
            top_token, top_weight = encoding.tokens[best], float(cls_row[index, best])
        else:
            top_token, top_weight = "", math.nan
        layers.append(
            LayerSummary(
                layer=index + 1,
                entropy_bits=float(entropy[index].mean()),
                to_cls=float(to_cls[index].mean()),
                to_sep=float(to_sep[index].mean()),
                special_share=float(mean_heads[index][:, special_index].sum(-1).mean()),
                cls_top_token=top_token,
                cls_top_weight=top_weight,
            )
        )
    return AttentionResult(
        model=lm.name,
        revision=lm.revision,
        text=text,
        tokens=encoding.tokens,
        special=marked,
        num_layers=num_layers,
        num_heads=num_heads,
        head=head,
        layer=layer,
        layers=layers,
        cls_to_token=cls_row.tolist(),
        token_to_cls=to_cls.tolist(),
        token_to_sep=to_sep.tolist(),
        matrix=mean_heads[layer - 1].tolist() if layer is not None else None,
        notices=list(lm.notices),
    )
