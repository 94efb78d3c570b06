"""The transformers backend: Auto classes for every encoder the native BERT does not reproduce.

RoBERTa, XLM-R, DistilBERT, ALBERT, ELECTRA and BERT variants (relative positions, ...) run
here, as does any checkpoint when ``BERTPROBE_BACKEND=transformers``. Loading is quiet:
transformers' progress bars, load reports, logging and warnings never reach the terminal;
what matters in them (weights missing from the checkpoint) becomes bertprobe's own notice, or
a refusal when the missing weights belong to the head asked for.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bertprobe import checkpoint
from bertprobe.errors import InputError, MissingHeadError
from bertprobe.models.backend import Backend, Forward

# Weights a checkpoint may carry for heads other than the one loaded: never worth a notice.
_HEAD_PREFIXES = (
    "cls.",
    "lm_head.",
    "pooler.",
    "predictions.",
    "sop_classifier.",
    "vocab_",
    "generator_",
    "discriminator_",
    "qa_outputs.",
    "classifier.",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence transformers: its logging and progress bars for the rest of the process, warnings in the block.

    The terminal belongs to bertprobe, so the logging level is not restored: transformers also
    logs at run time (e.g. once per process about attention kernels).
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def load(path: Path, head: str, dtype: Any, device: Any, name: str) -> tuple[Any, list[str]]:
    """A transformers model for ``head`` on ``device`` in eval mode, plus bertprobe's notices about its weights."""
    import transformers

    auto = {
        "encoder": transformers.AutoModel,
        "mlm": transformers.AutoModelForMaskedLM,
        "nsp": transformers.AutoModelForNextSentencePrediction,
        "pretraining": transformers.AutoModelForPreTraining,
    }[head]
    try:
        with quiet():
            model, info = auto.from_pretrained(
                str(path), dtype=dtype, output_loading_info=True, trust_remote_code=False
            )
    except ValueError as err:
        raise MissingHeadError(f"{name}: transformers cannot load a {head} model from it ({_first_line(err)})") from err
    except (RuntimeError, OSError, KeyError) as err:  # a damaged checkpoint, or shapes that disagree: one line
        raise checkpoint.unloadable(path, err) from None
    # Missing (would be random) and mismatched weights are refused for every head, the encoder too.
    checkpoint.check_loading_info(path, head, info)
    notices = []
    unexpected = sorted(
        k
        for k in info.get("unexpected_keys", ())
        if not k.startswith(_HEAD_PREFIXES)
        and not k.split(".", 1)[-1].startswith(_HEAD_PREFIXES)
        and "position_ids" not in k
    )
    if unexpected:
        notices.append(
            f"{name}: the checkpoint holds {len(unexpected)} weights this model does not use (e.g. {unexpected[0]}); "
            "they were ignored"
        )
    return model.to(device).eval(), notices


# Families whose checkpoints hold a next-sentence head in transformers (BertForPreTraining and kin).
NSP_FAMILIES = ("bert", "megatron-bert")


def load_trainable(path: Path, name: str, device: Any, nsp: bool, seed: int) -> tuple[Any, list[str]]:
    """A fresh float32 masked LM (with BERT's pooler and NSP head when ``nsp``) for pretraining, in eval mode.

    A head the checkpoint lacks (an encoder-only checkpoint, an NSP head never trained) is
    created by transformers' own initialiser from a generator seeded by ``seed``, so a restarted
    run starts from the same weights; a notice says so. Missing encoder weights are refused.
    """
    import torch
    import transformers

    auto = transformers.AutoModelForPreTraining if nsp else transformers.AutoModelForMaskedLM
    try:
        with torch.random.fork_rng(devices=[]), quiet():
            torch.manual_seed(seed)
            model, info = auto.from_pretrained(
                str(path), dtype=torch.float32, output_loading_info=True, trust_remote_code=False
            )
    except ValueError as err:
        raise MissingHeadError(f"{name}: transformers has no masked-LM class for it ({_first_line(err)})") from err
    except (RuntimeError, OSError, KeyError) as err:
        raise checkpoint.unloadable(path, err) from None
    if _mlm_head(model) is None:
        raise MissingHeadError(
            f"{name}: pretrain does not know where {type(model).__name__}'s masked-LM head is",
            hint="Start from a BERT, RoBERTa, XLM-R, DistilBERT, ALBERT or ELECTRA (generator) checkpoint.",
        )
    missing = list(info.get("missing_keys", ()))
    new = [k for k in missing if _is_head(k)]
    checkpoint.check_loading_info(path, "mlm", {**info, "missing_keys": [k for k in missing if not _is_head(k)]})
    notices = []
    if any(not _is_nsp(k) for k in new):
        notices.append(f"{name} has no MLM head: training a new one.")
    if any(_is_nsp(k) for k in new):
        notices.append(f"{name} has no NSP head: training a new one.")
    return model.to(device).eval(), notices


def _is_head(key: str) -> bool:
    return key.startswith(_HEAD_PREFIXES) or key.split(".", 1)[-1].startswith(_HEAD_PREFIXES)


def _is_nsp(key: str) -> bool:
    return "seq_relationship" in key or "pooler." in key


def lowest_modules(model: Any, layers: int) -> list[Any]:
    """The embeddings and the lowest ``layers`` encoder layers of a transformers encoder (``--freeze-layers``)."""
    base = getattr(model, "base_model", model)
    parts = [base.embeddings]
    if getattr(base, "embeddings_project", None) is not None:  # ELECTRA: embedding size != hidden size
        parts.append(base.embeddings_project)
    encoder = getattr(base, "encoder", None) or getattr(base, "transformer", None)
    if hasattr(encoder, "layer"):  # BERT, RoBERTa, XLM-R, ELECTRA (encoder.layer); DistilBERT (transformer.layer)
        return [*parts, *encoder.layer[:layers]]
    groups = getattr(encoder, "albert_layer_groups", None)
    if groups is not None:  # ALBERT: layer i runs group i // (layers per group); each group's weights are shared
        parts.append(encoder.embedding_hidden_mapping_in)
        total = int(model.config.num_hidden_layers)
        per_group = total // len(groups)
        if layers % per_group:
            raise InputError(
                f"--freeze-layers {layers}: ALBERT shares one set of weights across each run of {per_group} of its "
                f"{total} layers, so the lowest {layers} cannot be frozen alone",
                hint=f"Freeze a multiple of {per_group} layers (0 or {total} here).",
            )
        return [*parts, *groups[: layers // per_group]]
    raise InputError(
        f"--freeze-layers: pretrain does not know the layers of {type(model).__name__}",
        hint="Leave out --freeze-layers.",
    )


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _mlm_head(model: Any) -> Callable[[Any], Any] | None:
    """The MLM head as a function of last-layer hidden states, for the families whose head is known."""
    if hasattr(model, "cls") and hasattr(model.cls, "predictions"):  # BERT, Megatron-BERT
        return model.cls.predictions
    if hasattr(model, "lm_head"):  # RoBERTa, XLM-R, CamemBERT
        return model.lm_head
    if hasattr(model, "vocab_projector"):  # DistilBERT
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    if hasattr(model, "generator_lm_head"):  # ELECTRA's generator
        return lambda h: model.generator_lm_head(model.generator_predictions(h))
    if hasattr(model, "predictions"):  # ALBERT (MaskedLM and PreTraining)
        return model.predictions
    return None


def _eager_twin(model: Any) -> Any:
    """The same model (sharing every weight) on the eager attention path, the only one returning probabilities.

    A twin rather than a switch: the cached model keeps its own (fused) attention for the next command.
    """
    import copy
    import itertools

    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    twin = copy.deepcopy(model, shared)
    if hasattr(twin, "set_attn_implementation"):
        twin.set_attn_implementation("eager")
    else:
        twin.config._attn_implementation = "eager"
    return twin


class TransformersBackend(Backend):
    """The contract over a transformers model (``AutoModel``, ``AutoModelFor...``)."""

    kind = "transformers"

    @property
    def head_at_positions(self) -> bool:  # type: ignore[override]
        return _mlm_head(self.model) is not None

    @property
    def base(self) -> Any:
        return getattr(self.model, "base_model", self.model)

    def forward(
        self,
        input_ids: Any = None,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        inputs_embeds: Any = None,
        hidden_states: bool = False,
        attentions: bool = False,
    ) -> Forward:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if inputs_embeds is not None:
            kwargs["inputs_embeds"] = inputs_embeds
        types = self.token_types(token_type_ids)
        if types is not None:
            kwargs["token_type_ids"] = types
        if hidden_states:
            kwargs["output_hidden_states"] = True
        base = self.base
        if attentions:
            kwargs["output_attentions"] = True
            twin = _eager_twin(self.model)
            base = getattr(twin, "base_model", twin)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = base(**kwargs)
        return Forward(
            out.last_hidden_state,
            tuple(out.hidden_states) if hidden_states else None,
            tuple(out.attentions) if attentions else None,
        )

    def mlm_logits(self, hidden: Any) -> Any:
        head = _mlm_head(self.model)
        if head is None:
            raise RuntimeError(f"no known MLM head on {type(self.model).__name__}")
        return head(hidden)

    def masked_logits(self, input_ids: Any, attention_mask: Any, rows: Any, cols: Any) -> Any:
        if _mlm_head(self.model) is not None:
            return super().masked_logits(input_ids, attention_mask, rows, cols)
        # An unknown family: its full logits, read at the positions asked for.
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return out.logits[rows, cols]

    def nsp_logits(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        types = self.token_types(token_type_ids)
        if types is not None:
            kwargs["token_type_ids"] = types
        out = self.model(**kwargs)
        # BertForPreTraining names them seq_relationship_logits; BertForNextSentencePrediction logits.
        logits = getattr(out, "seq_relationship_logits", None)
        return logits if logits is not None else out.logits

    def pooler(self) -> Any:
        import torch

        pooler = getattr(self.base, "pooler", None)
        dense = getattr(pooler, "dense", None)
        if dense is not None:  # BERT, RoBERTa, ELECTRA-style: tanh(dense([CLS]))
            return lambda hidden: torch.tanh(dense(hidden[:, 0]))
        if isinstance(pooler, torch.nn.Linear) and hasattr(self.base, "pooler_activation"):  # ALBERT
            return lambda hidden: self.base.pooler_activation(pooler(hidden[:, 0]))
        return None

    def lowest_modules(self, layers: int) -> list[Any]:
        return lowest_modules(self.model, layers)

    def random_copy(self, seed: int) -> Any:
        import torch
        import transformers

        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            with quiet():
                config = transformers.AutoConfig.from_pretrained(str(self.lm.path))
                return transformers.AutoModel.from_config(config)
        finally:
            torch.random.set_rng_state(generator_state)
