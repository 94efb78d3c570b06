"""Pooled sentence features (a layer x pooling grid from one forward pass) and their on-disk cache.

Extraction goes through ``features.batches`` / ``run_batch`` / ``pool``: length-sorted,
dynamically padded batches under ``torch.inference_mode``, every layer asked for from the
same forward pass. Each (layer, pooling) matrix is cached on its own, keyed by the model's
fingerprint (hub commit or weights hash), dtype, device kind, backend, the versions of bertprobe,
torch and the tokenizer packages, layer, pooling, max length and a hash of the texts, so a sweep
fills the cache for any later single run, and an upgrade that computes features otherwise finds
no old entry; below float32 the batch size is part of the key too (see ``FeatureCache.key``).
Entries are written atomically and checked when read; a corrupt or mismatched entry is rebuilt,
never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe import features, layers
from bertprobe.atomic import atomic_write
from bertprobe.errors import InputError
from bertprobe.models import LoadedModel
from bertprobe.tokenizer import Encoding

CACHE_VERSION = 2  # 2: each entry stores the SHA-256 of its values
Progress = Callable[[int, int], None]
Spec = tuple[int, str]  # (layer, pooling)


def cache_root() -> Path:
    """``$BERTPROBE_CACHE``, else ``~/.cache/bertprobe``."""
    configured = os.environ.get("BERTPROBE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "bertprobe"


def resolve_layer(lm: LoadedModel, layer: int | None) -> int:
    """0 = embeddings, ``num_layers`` = last; negative counts from the end (-1 = last); None = last."""
    return lm.num_layers if layer is None else layers.resolve_layer(layer, lm.num_layers, lm.name)


def check_spec(lm: LoadedModel, layer: int, pooling: str) -> None:
    if pooling not in features.POOLINGS:
        raise InputError(f"unknown pooling {pooling!r}", hint=f"Choose one of {', '.join(features.POOLINGS)}.")
    if pooling == "pooler" and layer != lm.num_layers:
        raise InputError(
            f"--pool pooler reads the last layer ({lm.num_layers}), not layer {layer}",
            hint="BERT's pooler was trained on the last layer's [CLS]; use --pool cls for other layers.",
        )
    if pooling == "pooler" and "pooler" not in lm.heads:
        raise InputError(
            f"{lm.name} has no pooler weights, so --pool pooler would use a random layer",
            hint="Use --pool cls, mean or max.",
        )


def effective_max_length(lm: LoadedModel, max_length: int | None) -> int:
    if max_length is not None and max_length < 3:
        raise InputError(
            f"--max-length {max_length} leaves no word piece: [CLS] and [SEP] take two, so every text would give "
            "the probe the same vector",
            hint="Use 3 or more, or leave it out (the model's own limit).",
        )
    limit = lm.tokenizer.model_max_length
    return limit if max_length is None else min(max_length, limit)


def truncate(encoding: Encoding, max_length: int) -> Encoding:
    """Keep the first ``max_length - 1`` word pieces and the closing special token ([SEP])."""
    if len(encoding) <= max_length:
        return encoding
    keep = [*range(max_length - 1), len(encoding) - 1]
    return Encoding(
        ids=[encoding.ids[i] for i in keep],
        tokens=[encoding.tokens[i] for i in keep],
        offsets=[encoding.offsets[i] for i in keep],
        special=[encoding.special[i] for i in keep],
        text=encoding.text,
    )


def encode(lm: LoadedModel, texts: Sequence[str], max_length: int) -> tuple[list[Encoding], int]:
    """Encodings cut to ``max_length`` word pieces, and how many texts had to be cut."""
    encodings, cut = [], 0
    for text in texts:
        encoding = lm.tokenizer.encode(text)
        if len(encoding) > max_length:
            cut += 1
            encoding = truncate(encoding, max_length)
        encodings.append(encoding)
    return encodings, cut


def extract_pooled(
    lm: LoadedModel,
    encodings: Sequence[Encoding],
    specs: Sequence[Spec],
    batch_size: int = 32,
    progress: Progress | None = None,
) -> dict[Spec, Any]:
    """Float32 CPU tensors [texts, hidden], one per (layer, pooling), all from one forward pass per batch."""
    import torch

    layers = sorted({layer for layer, _ in specs})
    slot = {layer: i for i, layer in enumerate(layers)}
    out = {spec: torch.empty(len(encodings), lm.hidden_size, dtype=torch.float32) for spec in specs}
    done = 0
    for batch in features.batches([len(e) for e in encodings], batch_size):
        hidden, attention = features.run_batch(lm, [encodings[i] for i in batch], layers=layers)
        index = torch.tensor(batch)
        with torch.inference_mode():
            for layer, pooling in specs:
                states = hidden[:, slot[layer]]
                if pooling == "pooler":  # the pooler's weights live on the model's device, in its dtype
                    pooled = features.pool(lm, states.to(lm.device, lm.dtype), attention.to(lm.device), pooling)
                else:
                    pooled = features.pool(lm, states, attention, pooling)
                out[(layer, pooling)][index] = pooled.float().cpu()
        done += len(batch)
        if progress is not None:
            progress(done, len(encodings))
    return out


def texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def tensor_digest(tensor: Any, truncated: int = 0) -> str:
    """SHA-256 of a CPU tensor's values (row-major bytes) and of the count of texts cut to fit, recorded with a
    cache entry and checked on read (the count is reported to the user, so it is content too)."""
    digest = hashlib.sha256(tensor.contiguous().numpy().tobytes())
    digest.update(f"/truncated={truncated}".encode())
    return digest.hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    rebuilt: list[str] = field(default_factory=list)  # why an entry was not trusted


@dataclass
class FeatureSet:
    """Pooled features per (layer, pooling), with what the cache and extraction did."""

    features: dict[Spec, Any]
    max_length: int
    truncated: int
    extract_seconds: float
    cache: CacheStats


def _feature_packages() -> dict[str, str]:
    """The versions the features depend on: the tokenizer's packages, torch's kernels, and bertprobe's own
    pooling and model code (a fix there must not be served features cached before it, with no version bump
    of the cache needed). The running modules' versions, not installed metadata, which an editable install
    leaves stale."""
    import torch

    import bertprobe
    from bertprobe.probe import TOKENIZER_PACKAGES, package_versions

    found = {name: v for name, v in package_versions().items() if name in TOKENIZER_PACKAGES}
    return {**found, "bertprobe": bertprobe.__version__, "torch": str(torch.__version__)}


class FeatureCache:
    """One safetensors file per (model, dtype, layer, pooling, max length, texts), and batch size below float32."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or cache_root()) / "features"

    @staticmethod
    def key(
        lm: LoadedModel, spec: Spec, max_length: int, digest: str, count: int, batch_size: int | None = None
    ) -> dict[str, Any]:
        key = {
            "version": CACHE_VERSION,
            "fingerprint": lm.fingerprint,
            "dtype": str(lm.dtype),
            # Another device or backend computes the same features up to float noise, which in float16 is not
            # small: a GPU run's float16 features are not served to a CPU run, nor the other way round.
            "device": lm.device.type,
            "backend": "native" if lm.native else "transformers",
            # The tokenizer is rebuilt by these packages (transformers 5 rebuilds some from class defaults): an
            # upgrade that splits a text otherwise must not be served the old split's features; nor may a new
            # bertprobe or torch, which may pool or compute otherwise. An entry made before is simply not found.
            "packages": _feature_packages(),
            "layer": spec[0],
            "pooling": spec[1],
            "max_length": max_length,
            "texts": digest,
            "count": count,
            "hidden": lm.hidden_size,
        }
        if str(lm.dtype) != "torch.float32":
            # Which texts share a padded batch moves a text's float32 vector in its last digits only, but a
            # float16 or bfloat16 one by its rounding (up to ~1e-2 on minilm), enough to change a probe's metrics:
            # the batch size decides the batches (longest first), so an entry holds only for its own.
            key["batch_size"] = batch_size
        return key

    def path(self, key: dict[str, Any]) -> Path:
        name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:40]
        return self.root / f"{name}.safetensors"

    def read(self, key: dict[str, Any]) -> tuple[Any | None, str | None, int]:
        """(tensor, None, truncated texts) on a good hit; (None, reason, 0) for a corrupt or mismatched entry;
        (None, None, 0) on a miss."""
        import torch

        path = self.path(key)
        if not path.is_file():
            return None, None, 0
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                stored = json.loads((handle.metadata() or {}).get("key", "null"))
                truncated = int(stored.pop("truncated", 0)) if isinstance(stored, dict) else 0
                digest = stored.pop("sha256", None) if isinstance(stored, dict) else None
                tensor = handle.get_tensor("features")
        except Exception as err:  # truncated file, bad header, missing tensor: all mean "do not trust"
            return None, f"{path.name} is unreadable ({type(err).__name__})", 0
        if stored != key:
            return None, f"{path.name} was made for other inputs", 0
        if tensor.dtype == torch.float32 and digest != tensor_digest(tensor, truncated):
            # Zeroed or flipped values are still finite floats of the right shape: only the hash sees them.
            return None, f"{path.name} does not match its content hash (changed on disk)", 0
        expected = (key["count"], key["hidden"])
        if tuple(tensor.shape) != expected or tensor.dtype != torch.float32:
            return None, f"{path.name} has shape {tuple(tensor.shape)}, expected {expected}", 0
        if not bool(torch.isfinite(tensor).all()):
            return None, f"{path.name} holds non-finite values", 0
        return tensor, None, truncated

    def remove_stale_temporaries(self, older_than_s: float = 3600.0) -> None:
        """Delete temporary files that a killed write left behind (an hour old: no live writer owns them)."""
        now = time.time()
        try:
            for stray in self.root.glob(".*.tmp.safetensors"):
                with contextlib.suppress(OSError):
                    if now - stray.stat().st_mtime > older_than_s:
                        stray.unlink()
        except OSError:
            return

    def write(self, key: dict[str, Any], tensor: Any, truncated: int = 0) -> None:
        from safetensors.torch import save

        # One metadata entry: safetensors writes several in no fixed order, and an entry rebuilt from the
        # same inputs should be the same bytes.
        tensor = tensor.contiguous()
        stored = json.dumps({**key, "truncated": truncated, "sha256": tensor_digest(tensor, truncated)}, sort_keys=True)
        data = save({"features": tensor}, metadata={"key": stored})
        try:
            atomic_write(self.path(key), data)
        except OSError:  # a read-only or full cache must not fail the run: the features are in memory
            return


def pooled_features(
    lm: LoadedModel,
    texts: Sequence[str],
    specs: Sequence[Spec],
    max_length: int | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
    use_cache: bool = True,
    cache: FeatureCache | None = None,
) -> FeatureSet:
    """Features of ``texts`` for each (layer, pooling): from the cache when it has them, else one extraction."""
    specs = list(dict.fromkeys(specs))
    for layer, pooling in specs:
        check_spec(lm, layer, pooling)
    length = effective_max_length(lm, max_length)
    cache = cache or FeatureCache()
    stats = CacheStats()
    found: dict[Spec, Any] = {}
    keys = {}
    truncated = 0
    if use_cache:
        digest = texts_digest(texts)
        for spec in specs:
            keys[spec] = cache.key(lm, spec, length, digest, len(texts), batch_size)
            tensor, reason, cut = cache.read(keys[spec])
            if tensor is not None:
                found[spec] = tensor
                truncated = max(truncated, cut)  # the same texts and max length: the same count
                stats.hits += 1
            elif reason:
                stats.rebuilt.append(reason)
    missing = [spec for spec in specs if spec not in found]
    stats.misses = len(missing)
    seconds = 0.0
    if missing:
        start = time.perf_counter()
        encodings, truncated = encode(lm, texts, length)
        fresh = extract_pooled(lm, encodings, missing, batch_size, progress)
        seconds = time.perf_counter() - start
        if use_cache:
            cache.remove_stale_temporaries()
        for spec, tensor in fresh.items():
            found[spec] = tensor
            if use_cache:
                cache.write(keys[spec], tensor, truncated)
    elif progress is not None:
        progress(len(texts), len(texts))
    return FeatureSet({spec: found[spec] for spec in specs}, length, truncated, seconds, stats)


def random_encoder(lm: LoadedModel, seed: int) -> LoadedModel:
    """The same architecture with freshly initialised weights (the model's own init), as a control.

    A probe on it measures what the probe and the architecture get without any pre-training.
    """
    return lm.random_copy(seed)
