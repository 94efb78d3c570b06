"""Batched hidden-state extraction: every layer from one forward pass per batch.

Texts are sorted by length and padded per batch only to the longest text in it, so a
batch of short sentences costs what short sentences cost. Work runs under
``torch.inference_mode``; results come back in the order the texts were given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bertprobe.errors import TextTooLongError
from bertprobe.models import LoadedModel
from bertprobe.tokenizer import Encoding

Progress = Callable[[int, int], None]  # (texts done, texts in all)


@dataclass
class Extracted:
    """One text's encoding and its hidden states: a float32 tensor [layers + 1, tokens, hidden].

    Layer 0 is the embedding layer's output; layer L is the last encoder layer.
    """

    index: int
    encoding: Encoding
    hidden_states: Any


def encode_checked(lm: LoadedModel, text: str, pair: str | None = None, label: str = "the text") -> Encoding:
    """Tokenise ``text`` (and ``pair``) and refuse it when the model cannot see all of it."""
    encoding = lm.tokenizer.encode(text, pair)
    limit = lm.tokenizer.model_max_length
    if len(encoding) > limit:
        raise TextTooLongError(f"{label} is {len(encoding)} word pieces long; {lm.name} reads at most {limit}")
    return encoding


def encode_all(lm: LoadedModel, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[Encoding]:
    """Tokenise every text, refusing (with its number) one that is longer than the model reads."""
    return [
        encode_checked(lm, text, pairs[number] if pairs else None, label=f"text {number + 1}")
        for number, text in enumerate(texts)
    ]


def batches(lengths: Sequence[int], batch_size: int, max_tokens: int = 16384) -> Iterator[list[int]]:
    """Indices grouped longest-first, each batch within ``batch_size`` texts and ~``max_tokens`` padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batch: list[int] = []
    for index in order:
        width = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) >= batch_size or width * (len(batch) + 1) > max_tokens):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def pad_ids(id_lists: Sequence[Sequence[int]], pad_value: int) -> tuple[Any, Any]:
    """Right-pad id lists to the longest: ([batch, longest] long tensor, attention mask)."""
    import torch

    width = max(len(ids) for ids in id_lists)
    padded = torch.full((len(id_lists), width), pad_value, dtype=torch.long)
    attention = torch.zeros((len(id_lists), width), dtype=torch.long)
    for row, ids in enumerate(id_lists):
        padded[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        attention[row, : len(ids)] = 1
    return padded, attention


def pad_batch(
    lm: LoadedModel, encodings: Sequence[Encoding], type_ids: Sequence[Sequence[int]] | None = None
) -> tuple[Any, Any, Any]:
    """(input ids, attention mask, token type ids) as [batch, longest] long tensors, right-padded.

    Segment ids come from ``type_ids`` when given, else from each encoding (sentence pairs).
    """
    import torch

    input_ids, attention = pad_ids([e.ids for e in encodings], lm.tokenizer.pad_token_id)
    token_types = torch.zeros_like(input_ids)
    for row, encoding in enumerate(encodings):
        segments = type_ids[row] if type_ids is not None else encoding.type_ids
        if segments:
            token_types[row, : len(encoding)] = torch.tensor(list(segments))
    return input_ids, attention, token_types


def run_batch(
    lm: LoadedModel,
    encodings: Sequence[Encoding],
    type_ids: Sequence[Sequence[int]] | None = None,
    layers: Sequence[int] | None = None,
) -> tuple[Any, Any]:
    """One padded forward pass: (hidden states [batch, layers, tokens, hidden] float32 on CPU, attention mask)."""
    import torch

    input_ids, attention, token_types = pad_batch(lm, encodings, type_ids)
    with torch.inference_mode():
        hidden = lm.backend.forward(
            input_ids=input_ids.to(lm.device),
            attention_mask=attention.to(lm.device),
            token_type_ids=token_types.to(lm.device),
            hidden_states=True,
        ).hidden_states
        chosen = hidden if layers is None else [hidden[layer] for layer in layers]
        stacked = torch.stack(chosen, dim=1).float().cpu()
    return stacked, attention


def extract(
    lm: LoadedModel,
    texts: Sequence[str],
    batch_size: int = 32,
    layers: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> list[Extracted]:
    """Hidden states of every text (all layers, or only ``layers``), in the order given."""
    encodings = encode_all(lm, texts)
    results: list[Extracted | None] = [None] * len(texts)
    done = 0
    for batch in batches([len(e) for e in encodings], batch_size):
        hidden, _ = run_batch(lm, [encodings[i] for i in batch], layers=layers)
        for row, index in enumerate(batch):
            length = len(encodings[index])
            results[index] = Extracted(index, encodings[index], hidden[row, :, :length].clone())
        done += len(batch)
        if progress is not None:
            progress(done, len(texts))
    return [r for r in results if r is not None]


POOLINGS = ("cls", "mean", "max", "pooler")


def pool(lm: LoadedModel, hidden: Any, attention_mask: Any, how: str) -> Any:
    """One vector per text from hidden states [batch, tokens, hidden] (differentiable).

    ``cls``: the [CLS] vector; ``mean`` / ``max``: over real tokens, [CLS] and [SEP] included
    (as sentence-transformers does); ``pooler``: BERT's tanh pooler over [CLS], the vector NSP
    was trained on (only meaningful on the last layer, and only when the checkpoint has it).
    """
    import torch

    if how == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if how == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    if how == "max":
        return hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).amax(1)
    if how == "pooler":
        pooler = _pooler_module(lm)
        if pooler is None:
            from bertprobe.errors import MissingHeadError

            raise MissingHeadError(
                f"{lm.name} has no pooler weights, so --pool pooler would use a random layer",
                hint="Use --pool cls, mean or max.",
            )
        return pooler(hidden)
    raise ValueError(f"unknown pooling {how!r}; choose one of {', '.join(POOLINGS)}")


def _pooler_module(lm: LoadedModel) -> Any:
    if "pooler" not in lm.heads:
        return None
    return lm.backend.pooler()
