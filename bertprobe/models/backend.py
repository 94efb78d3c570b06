"""The contract every command uses to run a model: one ``Backend`` per implementation.

Commands never touch ``lm.model`` themselves: they call the methods of ``lm.backend``
(hidden states, MLM logits at chosen positions, NSP logits, attentions, pooler, input
embeddings, a re-initialised copy, a scoped train mode). ``native.NativeBackend`` runs the
compact BERT; ``hf.TransformersBackend`` runs transformers' Auto classes for every other
encoder. Neither changes the loaded model (device, dtype, attention implementation, train or
eval mode) beyond the call that asked: the model is cached and the next command reuses it.

This module imports neither torch nor transformers (``bertprobe --help`` stays light).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Forward:
    """An encoder pass: the last layer, and every layer / attention map when asked for.

    ``hidden_states[0]`` is the embedding output, ``hidden_states[L]`` the last encoder layer;
    ``attentions[l]`` is layer l + 1's [batch, heads, tokens, tokens] probabilities.
    """

    last_hidden_state: Any
    hidden_states: tuple[Any, ...] | None = None
    attentions: tuple[Any, ...] | None = None


class Backend:
    """Runs one loaded model. Subclasses implement the encoder pass and the heads."""

    kind = "abstract"
    head_at_positions = True  # masked_logits runs the MLM head only at the positions asked for

    def __init__(self, lm: LoadedModel) -> None:
        self.lm = lm
        self.model = lm.model

    # -- the encoder ------------------------------------------------------------------------
    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        inputs_embeds: Any = None,
        hidden_states: bool = False,
        attentions: bool = False,
    ) -> Forward:
        raise NotImplementedError

    def token_types(self, token_type_ids: Any) -> Any:
        """Segment ids the model can read: None where it has no segment embedding, zeros where it has one."""
        # Rows of the segment embedding itself: a config.json without type_vocab_size has transformers' default (2).
        base = getattr(self.model, "bert", None) or getattr(self.model, "base_model", self.model)
        layer = getattr(getattr(base, "embeddings", None), "token_type_embeddings", None)
        size = getattr(layer, "num_embeddings", 0)
        if token_type_ids is None or not size:
            return None
        return token_type_ids if int(size) > 1 else token_type_ids.clamp(max=0)

    # -- heads ------------------------------------------------------------------------------
    def mlm_logits(self, hidden: Any) -> Any:
        """Vocabulary logits for last-layer hidden states [..., hidden] (only the positions asked for)."""
        raise NotImplementedError

    def masked_logits(self, input_ids: Any, attention_mask: Any, rows: Any, cols: Any) -> Any:
        """MLM logits [len(rows), vocab] at (rows[i], cols[i]) of a padded batch."""
        out = self.forward(input_ids=input_ids, attention_mask=attention_mask)
        return self.mlm_logits(out.last_hidden_state[rows, cols])

    def nsp_logits(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        """Next-sentence logits [batch, 2]; class 0 is "B follows A"."""
        raise NotImplementedError

    def pooler(self) -> Any:
        """BERT's tanh pooler as a function of hidden states [batch, tokens, hidden], or None."""
        raise NotImplementedError

    def input_embeddings(self) -> Any:
        """The word-embedding layer (ids -> vectors that ``forward(inputs_embeds=...)`` reads)."""
        return self.model.get_input_embeddings()

    def position_embeddings(self) -> tuple[Any, int] | None:
        """The absolute position-embedding layer and the row that holds position 0, or None.

        RoBERTa-style models number positions from ``pad_token_id + 1``. Models with relative or
        rotary positions (DeBERTa, ModernBERT) have no such layer: None.
        """
        import torch

        if self.lm.config.get("position_embedding_type", "absolute") != "absolute":
            return None
        base = getattr(self.model, "bert", None) or getattr(self.model, "base_model", self.model)
        layer = getattr(getattr(base, "embeddings", None), "position_embeddings", None)
        if not isinstance(layer, torch.nn.Embedding):
            return None
        offset = 0
        if self.lm.model_type in {"roberta", "xlm-roberta", "camembert"}:
            offset = int(self.lm.config.get("pad_token_id", 1)) + 1
        elif self.lm.model_type == "mpnet":  # numbered from its padding_idx + 1, fixed at 1 whatever the config says
            offset = 2
        return layer, offset

    def lowest_modules(self, layers: int) -> list[Any]:
        """The embeddings and the lowest ``layers`` encoder layers: what ``pretrain --freeze-layers`` keeps fixed."""
        raise NotImplementedError

    def random_copy(self, seed: int) -> Any:
        """The same architecture with freshly initialised weights, as the model's own init makes them."""
        raise NotImplementedError

    def to_device(self, device: Any) -> Any:
        """A copy of the model on ``device``; the loaded one stays where it is."""
        import copy

        return copy.deepcopy(self.model).to(device)

    @contextlib.contextmanager
    def mode(self, training: bool) -> Iterator[None]:
        """Train (dropout on) or eval mode for the duration of the block, restored afterwards."""
        was = self.model.training
        self.model.train(training)
        try:
            yield
        finally:
            self.model.train(was)


@dataclass
class LoadedModel:
    """A tokenizer and a model ready to run, plus what outputs need to be reproducible."""

    name: str
    path: Path
    source: str
    revision: str | None
    head: str
    tokenizer: Any
    model: Any
    device: Any
    dtype: Any
    config: dict[str, Any]
    heads: set[str]
    native: bool
    fingerprint: str
    notices: list[str] = field(default_factory=list)

    @property
    def backend(self) -> Backend:
        """The contract over this model (cheap: a view, built on each access so ``replace`` stays consistent)."""
        if self.native:
            from bertprobe.models.native import NativeBackend

            return NativeBackend(self)
        from bertprobe.models.hf import TransformersBackend

        return TransformersBackend(self)

    @property
    def num_layers(self) -> int:
        return int(self.config.get("num_hidden_layers") or self.config.get("n_layers") or 0)

    @property
    def hidden_size(self) -> int:
        return int(self.config.get("hidden_size") or self.config.get("dim") or 0)

    @property
    def model_type(self) -> str:
        return str(self.config.get("model_type", ""))

    def describe(self) -> dict[str, Any]:
        """What every JSON result echoes about the model."""
        return {"model": self.name, "revision": self.revision, "source": self.source}

    def input_embeddings(self) -> Any:
        return self.backend.input_embeddings()

    def random_copy(self, seed: int) -> LoadedModel:
        """This model's architecture with fresh random weights (the control for probes)."""
        import dataclasses

        model = self.backend.random_copy(seed).to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        return dataclasses.replace(self, model=model, fingerprint=f"{self.fingerprint}+random-init-{seed}", notices=[])

    def on_device(self, device: Any) -> LoadedModel:
        """This model on another device, as a copy: the cached one is left where it is."""
        import dataclasses

        import torch

        device = torch.device(device)
        if device == torch.device(self.device):
            return self
        return dataclasses.replace(self, model=self.backend.to_device(device), device=device)
