"""The backend seam: every command reaches a model through this package.

- ``spec``: resolve ``--model`` (auto, bundled, directory, hub id), read a checkpoint's heads,
  fingerprint its weights, list the models on this machine, and load them (``load``).
- ``backend``: ``LoadedModel`` and the ``Backend`` contract commands call (encoder pass,
  MLM logits at chosen positions, NSP logits, attentions, pooler, input embeddings, a
  re-initialised copy, a scoped train mode).
- ``native``: the compact fast BERT, used only for checkpoints it reproduces exactly.
- ``hf``: transformers' Auto classes for every other encoder (RoBERTa, ALBERT, ...).

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from bertprobe.models import spec
from bertprobe.models.backend import Backend, Forward, LoadedModel
from bertprobe.models.spec import (
    BACKENDS,
    BERT_FAMILY,
    BUNDLED,
    DEFAULT_HUB_MODEL,
    DEVICES,
    DTYPES,
    HEAD_LABELS,
    HEADS,
    Bundled,
    ModelInfo,
    Resolved,
    _cached_on_hub,
    _fingerprint,
    _load_cached,
    _read_config,
    _weight_files,
    backend_choice,
    checkpoint_heads,
    list_models,
    load,
    load_trainable,
    offline_requested,
    resolve,
    resolve_device,
    resolve_dtype,
    use_native,
)

__all__ = [
    "BACKENDS",
    "BERT_FAMILY",
    "BUNDLED",
    "DEFAULT_HUB_MODEL",
    "DEVICES",
    "DTYPES",
    "HEADS",
    "HEAD_LABELS",
    "Backend",
    "Bundled",
    "Forward",
    "LoadedModel",
    "ModelInfo",
    "Resolved",
    "_cached_on_hub",
    "_fingerprint",
    "_load_cached",
    "_read_config",
    "_weight_files",
    "backend_choice",
    "checkpoint_heads",
    "list_models",
    "load",
    "load_trainable",
    "offline_requested",
    "resolve",
    "resolve_device",
    "resolve_dtype",
    "use_native",
]


class _Package(types.ModuleType):
    """Setting a name here also sets it in ``spec``, where the loader reads it.

    Before the split, ``bertprobe.models`` was one module and tests patch its internals
    (``monkeypatch.setattr("bertprobe.models._cached_on_hub", ...)``); this keeps that working.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in spec.__dict__ and not isinstance(value, types.ModuleType):
            setattr(spec, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
