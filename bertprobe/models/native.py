"""A compact BERT in plain torch, weight-compatible with Hugging Face BERT checkpoints.

Why it exists: importing ``transformers.BertForMaskedLM`` costs about 4 s of a 5 s
fill-mask run on a laptop CPU (it drags in torch.distributed, dynamo and scipy), so
``bertprobe`` runs ``model_type == "bert"`` checkpoints with this module and keeps
transformers for every other architecture. Tests check logits, hidden states and
attentions against transformers on the same weights.

The module mirrors the Hugging Face output names (``logits``, ``hidden_states``,
``attentions``, ``pooler_output``, ``seq_relationship_logits``) so the rest of the code
does not care which implementation it runs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bertprobe.models.backend import Backend, Forward

# Which checkpoint keys each head needs (after the "bert." prefix is stripped).
HEAD_KEYS = {
    "mlm": ("cls.predictions.transform.dense.weight", "cls.predictions.transform.LayerNorm.weight"),
    "nsp": ("cls.seq_relationship.weight", "cls.seq_relationship.bias"),
    "pooler": ("pooler.dense.weight", "pooler.dense.bias"),
}

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": torch.tanh,
}


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BertConfig:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in names})


def supports(raw_config: dict[str, Any]) -> bool:
    """True when this module reproduces the checkpoint exactly (anything else runs through transformers)."""
    return not unsupported(raw_config)


def unsupported(raw_config: dict[str, Any]) -> str | None:
    """Why this module cannot reproduce the checkpoint exactly, or None when it can."""
    hidden = raw_config.get("hidden_size")
    checks = (
        (raw_config.get("model_type") == "bert", f"model_type is {raw_config.get('model_type')!r}, not 'bert'"),
        (
            raw_config.get("position_embedding_type", "absolute") == "absolute",
            f"position_embedding_type {raw_config.get('position_embedding_type')!r}",
        ),
        (raw_config.get("hidden_act", "gelu") in _ACTIVATIONS, f"hidden_act {raw_config.get('hidden_act')!r}"),
        (not raw_config.get("is_decoder", False), "a decoder"),
        (not raw_config.get("add_cross_attention", False), "cross-attention"),
        (raw_config.get("embedding_size", hidden) == hidden, "embedding size differs from hidden size"),
        (int(raw_config.get("type_vocab_size", 2) or 0) >= 1, "no segment embedding"),
        (not raw_config.get("chunk_size_feed_forward", 0), "chunked feed-forward"),
        (
            isinstance(hidden, int) and hidden % int(raw_config.get("num_attention_heads", 1) or 1) == 0,
            "hidden size not divisible by the heads",
        ),
    )
    for ok, why in checks:
        if not ok:
            return why
    return None


class BertOutput(dict):
    """Attribute access over a dict, like transformers' ModelOutput."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            return None


class Embeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        token_type_ids: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        positions = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)
        summed = inputs_embeds + self.position_embeddings(positions)[None] + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(summed))


class SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(
        self, hidden: torch.Tensor, additive_mask: torch.Tensor, want_probs: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, width = hidden.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(hidden)), split(self.key(hidden)), split(self.value(hidden))
        if want_probs:
            # Explicit softmax so the attention probabilities can be returned.
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + additive_mask
            probs = scores.softmax(dim=-1)
            # As transformers' eager path: dropout on the probabilities, which are returned after it.
            probs = F.dropout(probs, self.dropout_p, self.training)
            context = probs @ v
        else:
            probs = None
            dropout = self.dropout_p if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask, dropout_p=dropout)
        return context.transpose(1, 2).reshape(batch, length, width), probs


class SelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class Attention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = SelfAttention(cfg)
        self.output = SelfOutput(cfg)


class Intermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(hidden))


class Output(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class Layer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = Attention(cfg)
        self.intermediate = Intermediate(cfg)
        self.output = Output(cfg)

    def forward(
        self, hidden: torch.Tensor, additive_mask: torch.Tensor, want_probs: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        context, probs = self.attention.self(hidden, additive_mask, want_probs)
        attended = self.attention.output(context, hidden)
        return self.output(self.intermediate(attended), attended), probs


class Encoder(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_hidden_layers))


class Pooler(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    def __init__(self, cfg: BertConfig, with_pooler: bool) -> None:
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.pooler = Pooler(cfg) if with_pooler else None


class PredictionTransform(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.act = _ACTIVATIONS[cfg.hidden_act]
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(hidden)))


class LMPrediction(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.transform = PredictionTransform(cfg)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden)) + self.bias


class Heads(nn.Module):
    def __init__(self, cfg: BertConfig, mlm: bool, nsp: bool) -> None:
        super().__init__()
        self.predictions = LMPrediction(cfg) if mlm else None
        self.seq_relationship = nn.Linear(cfg.hidden_size, 2) if nsp else None


class Bert(nn.Module):
    """BERT encoder with optional MLM / NSP heads, named like transformers' BertForPreTraining."""

    def __init__(self, cfg: BertConfig, mlm: bool = False, nsp: bool = False, pooler: bool = False) -> None:
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg, with_pooler=pooler or nsp)
        self.cls = Heads(cfg, mlm, nsp) if (mlm or nsp) else None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits for hidden states of the last layer (any positions)."""
        if self.cls is None or self.cls.predictions is None:
            raise RuntimeError("this model was loaded without its MLM head")
        return self.cls.predictions(hidden)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        heads: bool = True,
        **_: Any,
    ) -> BertOutput:
        reference = input_ids if input_ids is not None else inputs_embeds[..., 0]
        batch, length = reference.shape[:2]
        device = reference.device
        if attention_mask is None:
            attention_mask = torch.ones(batch, length, dtype=torch.long, device=device)
        if token_type_ids is None:
            token_type_ids = torch.zeros(batch, length, dtype=torch.long, device=device)
        hidden = self.bert.embeddings(input_ids, token_type_ids, inputs_embeds)
        dtype = hidden.dtype
        additive_mask = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

        all_hidden = [hidden] if output_hidden_states else None
        all_probs = [] if output_attentions else None
        for layer in self.bert.encoder.layer:
            hidden, probs = layer(hidden, additive_mask, output_attentions)
            if all_hidden is not None:
                all_hidden.append(hidden)
            if all_probs is not None:
                all_probs.append(probs)

        out = BertOutput(last_hidden_state=hidden)
        if all_hidden is not None:
            out["hidden_states"] = tuple(all_hidden)
        if all_probs is not None:
            out["attentions"] = tuple(all_probs)
        if not heads:
            # The caller applies a head to a few positions itself (the MLM head over every position
            # costs more than the whole encoder on small models).
            return out
        if self.bert.pooler is not None:
            out["pooler_output"] = self.bert.pooler(hidden)
        if self.cls is not None:
            if self.cls.predictions is not None:
                out["logits"] = self.cls.predictions(hidden)
            if self.cls.seq_relationship is not None:
                out["seq_relationship_logits"] = self.cls.seq_relationship(out["pooler_output"])
        return out


def normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map checkpoint key names (BertModel, BertForMaskedLM, old TF-era names) onto ours."""
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if not key.startswith(("bert.", "cls.")):
            key = "bert." + key
        renamed[key] = tensor
    # transformers' head adds decoder.bias, which stands in for predictions.bias only where the checkpoint
    # lacks it: a checkpoint holding both with different values is read as transformers reads it.
    if "cls.predictions.decoder.bias" in renamed:
        renamed["cls.predictions.bias"] = renamed.pop("cls.predictions.decoder.bias")
    renamed.pop("bert.embeddings.position_ids", None)
    return renamed


def available_heads(keys: set[str]) -> set[str]:
    """The heads whose weights a (normalised or raw) key set really contains."""
    stripped = {k.removeprefix("bert.") for k in normalise_keys(dict.fromkeys(keys))}
    return {head for head, needed in HEAD_KEYS.items() if all(n in stripped for n in needed)}


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Skip parameter initialisation: every weight is overwritten by the checkpoint anyway.

    (Initialising meta tensors also imports torch._dynamo, about 0.9 s of start-up.)
    """
    classes = (nn.Linear, nn.Embedding, nn.LayerNorm)
    saved = [cls.reset_parameters for cls in classes]
    try:
        for cls in classes:
            cls.reset_parameters = lambda self: None
        yield
    finally:
        for cls, method in zip(classes, saved, strict=True):
            cls.reset_parameters = method


def fresh_mlm_head(cfg: BertConfig, std: float = 0.02) -> dict[str, torch.Tensor]:
    """Weights of a new MLM transform and bias (BERT's initialiser: normal(0, 0.02), LayerNorm 1 / 0)."""
    width = cfg.hidden_size
    return {
        "cls.predictions.transform.dense.weight": torch.randn(width, width) * std,
        "cls.predictions.transform.dense.bias": torch.zeros(width),
        "cls.predictions.transform.LayerNorm.weight": torch.ones(width),
        "cls.predictions.transform.LayerNorm.bias": torch.zeros(width),
        "cls.predictions.bias": torch.zeros(cfg.vocab_size),
    }


def build(
    raw_config: dict[str, Any],
    state: dict[str, torch.Tensor],
    mlm: bool,
    nsp: bool,
    dtype: torch.dtype,
    device: torch.device,
    new_mlm_head: bool = False,
) -> Bert:
    """Make a Bert from a checkpoint's config and weights without a throw-away random init.

    ``new_mlm_head``: give an encoder-only checkpoint a fresh MLM head (for pretraining only),
    initialised as BERT initialises it, with the decoder tied to the word embeddings.
    """
    cfg = BertConfig.from_dict(raw_config)
    state = normalise_keys(state)
    if mlm and new_mlm_head and "cls.predictions.transform.dense.weight" not in state:
        state.update(fresh_mlm_head(cfg))
    pooler = "bert.pooler.dense.weight" in state
    with torch.device("meta"), _no_init():
        model = Bert(cfg, mlm=mlm, nsp=nsp, pooler=pooler)
    wanted = model.state_dict().keys()
    tied = "cls.predictions.decoder.weight"
    embeddings = state.get("bert.embeddings.word_embeddings.weight")
    # As transformers reads it: a decoder stored with values of its own is untied, whatever config.json says.
    tie = raw_config.get("tie_word_embeddings", True) and (
        tied not in state or embeddings is None or torch.equal(state[tied], embeddings)
    )
    if mlm and tied not in state and embeddings is not None:
        state[tied] = embeddings
    missing = [k for k in wanted if k not in state]
    if missing:
        raise KeyError(f"checkpoint lacks {len(missing)} weights, e.g. {missing[0]}")
    model.load_state_dict({k: state[k].to(dtype) for k in wanted}, assign=True)
    if mlm and tie:
        model.cls.predictions.decoder.weight = model.bert.embeddings.word_embeddings.weight
    return model.to(device).eval()


def init_like_bert(model: nn.Module, std: float) -> None:
    """What transformers' BertPreTrainedModel._init_weights does: N(0, std) weights, zero biases, unit LayerNorm."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, std)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()


class NativeBackend(Backend):
    """The contract over ``Bert``: heads run only where they are asked for."""

    kind = "native"

    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        inputs_embeds: Any = None,
        hidden_states: bool = False,
        attentions: bool = False,
    ) -> Forward:
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=self.token_types(token_type_ids),
            inputs_embeds=inputs_embeds,
            output_hidden_states=hidden_states,
            output_attentions=attentions,
            heads=False,
        )
        return Forward(out["last_hidden_state"], out.get("hidden_states"), out.get("attentions"))

    def mlm_logits(self, hidden: Any) -> Any:
        return self.model.mlm_logits(hidden)

    def nsp_logits(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        if self.model.cls is None or self.model.cls.seq_relationship is None:
            raise RuntimeError("this model was loaded without its NSP head")
        hidden = self.forward(input_ids, attention_mask, token_type_ids).last_hidden_state
        return self.model.cls.seq_relationship(self.model.bert.pooler(hidden))

    def pooler(self) -> Any:
        return self.model.bert.pooler

    def lowest_modules(self, layers: int) -> list[Any]:
        return [self.model.bert.embeddings, *self.model.bert.encoder.layer[:layers]]

    def random_copy(self, seed: int) -> Any:
        cfg = BertConfig.from_dict(self.lm.config)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = Bert(cfg, pooler=self.model.bert.pooler is not None)
            init_like_bert(model, float(self.lm.config.get("initializer_range", 0.02)))
            with torch.no_grad():  # transformers' embedding has padding_idx = pad_token_id, zeroed at init
                model.get_input_embeddings().weight[cfg.pad_token_id].zero_()
        finally:
            torch.random.set_rng_state(generator_state)
        return model
