"""Trust a checkpoint directory before any weight is loaded: what it holds, and what it is.

Everything here is a pure function that reads files and raises a ``bertprobe.errors``
exception with a hint, never prints. The loader calls it at a few marked places:

- ``read_config``: ``config.json`` parsed and type-checked (a wrong type is one line, not a
  traceback or a silently different model).
- ``weight_files`` / ``safetensors_header``: the weight files named by a checkpoint (a sharded
  index is checked: JSON, shard paths inside the directory, every shard present), and each
  safetensors header checked against the file's size before torch or safetensors read it.
- ``check_directory``: the whole directory before loading: a BERT-family encoder with no
  custom code, a real tokenizer whose files agree with each other (and with transformers' reading of them),
  weights that agree with the config (layer count, tensor
  shapes, float dtypes, no extra or missing encoder tensors), a pickle ``.bin`` only through
  ``torch.load(weights_only=True)``. Returns notices for what is ignored but harmless.
- ``check_loading_info``: what transformers reports after ``from_pretrained`` (missing,
  unexpected, mismatched weights) for the models bertprobe does not run natively.
- ``fingerprint``: a content hash of config, tokenizer and weights (hub snapshots too); each large file is hashed
  once and remembered by path, size, mtime, ctime and inode in ``$BERTPROBE_CACHE/fingerprints.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Collection, Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from bertprobe.atomic import atomic_write
from bertprobe.errors import MissingHeadError, ModelNotFoundError

WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# The tokenizer files a checkpoint may hold (the hub download fetches these too).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "spm.model",  # DeBERTa-v2/v3's SentencePiece model
    "added_tokens.json",  # a slow tokenizer's added tokens: without tokenizer.json they change the split
)
# Files whose content decides what a model computes, besides the weights; hashed into the fingerprint.
CONTENT_FILES = ("config.json", *TOKENIZER_FILES)
# What each family's slow tokenizer needs when there is no tokenizer.json (any one set will do).
_SLOW_TOKENIZER_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "bert": (("vocab.txt",),),
    "distilbert": (("vocab.txt",),),
    "electra": (("vocab.txt",),),
    "mobilebert": (("vocab.txt",),),
    "megatron-bert": (("vocab.txt",),),
    "mpnet": (("vocab.txt",),),
    "roberta": (("vocab.json", "merges.txt"),),
    "deberta": (("vocab.json", "merges.txt"),),
    "xlm": (("vocab.json", "merges.txt"),),
    "flaubert": (("vocab.json", "merges.txt"),),
    "albert": (("spiece.model",),),
    "xlm-roberta": (("sentencepiece.bpe.model",),),
    "camembert": (("sentencepiece.bpe.model",),),
    "deberta-v2": (("spm.model",),),
}
_ANY_TOKENIZER = (
    ("tokenizer.json",),
    ("vocab.txt",),
    ("vocab.json", "merges.txt"),
    ("spiece.model",),
    ("sentencepiece.bpe.model",),
    ("spm.model",),
)
# Activations transformers' ACT2FN knows; anything else is a KeyError deep inside model construction.
_ACTIVATIONS = frozenset(
    ("gelu", "gelu_10", "gelu_fast", "gelu_new", "gelu_python", "gelu_pytorch_tanh", "gelu_accurate", "laplace",
     "leaky_relu", "linear", "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "swish", "tanh",
     "prelu", "xielu")
)  # fmt: skip
_SIZE_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "n_layers",
    "n_layer",
    "n_heads",
    "n_head",
    "dim",
    "hidden_dim",
    "embedding_size",
    "num_hidden_groups",
    "inner_group_num",
)
_MAX_SIZE = 1 << 24  # no real encoder has a dimension, vocabulary or layer count near this
_ID_KEYS = ("pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id")
_BOOL_KEYS = ("is_decoder", "add_cross_attention", "tie_word_embeddings", "is_encoder_decoder")
_STRING_KEYS = ("model_type", "hidden_act", "position_embedding_type")
_SPECIAL_TOKENS = ("mask_token", "cls_token", "sep_token", "pad_token", "unk_token", "bos_token", "eos_token")
_ROBERTA_POSITIONS = {"roberta", "xlm-roberta", "camembert"}

# safetensors dtypes and their bits per element (sub-byte formats are packed).
_DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}
_FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
_MAX_HEADER = 100_000_000  # the safetensors library's own limit
_BUFFERS = ("position_ids", "token_type_ids")  # index buffers some checkpoints save; never weights
_LAYER_KEY = re.compile(r"(?:^|\.)(?:encoder\.layer|encoder\.layers|transformer\.layer|layers|attentions)\.(\d+)\.")

_RESTORE = "Restore the checkpoint from its source (download or copy it again)."
_FAMILY_HINT = "Pick a BERT-family encoder checkpoint, e.g. bert-base-uncased, roberta-base or the bundled minilm."


def _error(message: str, hint: str = _RESTORE) -> ModelNotFoundError:
    return ModelNotFoundError(message, hint=hint)


def one_line(err: BaseException, limit: int = 160) -> str:
    """An exception's first line, shortened: library errors can run to screens of text."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_json(file: Path, what: str) -> Any:
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise _error(f"cannot read {file}: {err.strerror or one_line(err)}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _error(f"{file} is not valid JSON (not UTF-8 text)", hint=f"Restore the checkpoint's {what}.") from None
    except (ValueError, RecursionError) as err:
        reason = "empty file" if not raw.strip() else one_line(err)
        raise _error(f"{file} is not valid JSON ({reason})", hint=f"Restore the checkpoint's {what}.") from None


# --------------------------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------------------------


def read_config(path: Path, family: Collection[str] | None = None) -> dict[str, Any]:
    """``path/config.json`` as a dict whose fields have the types transformers expects.

    With ``family``, the types of other model types' configs are not checked (``check_directory``
    refuses those models by name).
    """
    file = path / "config.json"
    config = _read_json(file, "config.json")
    if not isinstance(config, dict):
        raise _error(
            f"{file} is not a model config (a JSON object), it is a JSON {_json_kind(config)}",
            hint="Restore the checkpoint's config.json.",
        )
    model_type = config.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise _error(
            f"{file}: model_type is {json.dumps(model_type)[:60]}, not a string",
            hint="Fix model_type in config.json (or restore the checkpoint's config.json).",
        )
    if family is None or model_type in family:
        _check_config_types(file, config)
    return config


def _json_kind(value: Any) -> str:
    kinds = {list: "array", str: "string", bool: "boolean", int: "number", float: "number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_config_types(file: Path, config: dict[str, Any]) -> None:
    def bad(key: str, expected: str) -> ModelNotFoundError:
        return _error(
            f"{file}: {key} is {json.dumps(config[key])[:60]}, not {expected}",
            hint=f"Fix {key} in config.json (or restore the checkpoint's config.json).",
        )

    for key in _SIZE_KEYS:
        if key in config and not (_is_int(config[key]) and 0 < config[key] <= _MAX_SIZE):
            raise bad(key, f"a whole number from 1 to {_MAX_SIZE:,}")
    if "type_vocab_size" in config and not (
        _is_int(config["type_vocab_size"]) and 0 <= config["type_vocab_size"] <= 64
    ):
        raise bad("type_vocab_size", "a whole number from 0 to 64")
    for key in _ID_KEYS:
        ids = config.get(key) if isinstance(config.get(key), list) and key != "pad_token_id" else [config.get(key)]
        if not all(i is None or (_is_int(i) and i >= 0) for i in ids):
            raise bad(key, "a token id (a whole number from 0) or null")
    vocab = config.get("vocab_size")
    if _is_int(config.get("pad_token_id")) and vocab is not None and config["pad_token_id"] >= vocab:
        raise bad("pad_token_id", f"an id below vocab_size ({vocab})")
    eps = config.get("layer_norm_eps")
    if "layer_norm_eps" in config and not (
        isinstance(eps, (int, float)) and not isinstance(eps, bool) and math.isfinite(eps) and 0 < eps < 1
    ):
        raise bad("layer_norm_eps", "a small positive number such as 1e-12")
    for key in _BOOL_KEYS:
        if key in config and not isinstance(config[key], bool):
            raise bad(key, "true or false")
    for key in _STRING_KEYS:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise bad(key, "a string")
    if config.get("hidden_act") is not None and config["hidden_act"] not in _ACTIVATIONS:
        raise bad("hidden_act", "an activation transformers knows (gelu, relu, silu, ...)")
    archs = config.get("architectures")
    if archs is not None and not (isinstance(archs, list) and all(isinstance(a, str) for a in archs)):
        raise bad("architectures", "a list of class names")
    for width, heads in (("hidden_size", "num_attention_heads"), ("dim", "n_heads")):
        if _is_int(config.get(width)) and _is_int(config.get(heads)) and config[width] % config[heads]:
            raise _error(
                f"{file}: {width} {config[width]} is not a multiple of {heads} {config[heads]}",
                hint=f"Fix {width} or {heads} in config.json (or restore the checkpoint's config.json).",
            )
    if config.get("model_type") in _ROBERTA_POSITIONS and _is_int(config.get("max_position_embeddings")):
        pad = config.get("pad_token_id") if _is_int(config.get("pad_token_id")) else 1
        if config["max_position_embeddings"] - pad - 1 < 3:
            raise bad("max_position_embeddings", f"large enough for a sentence after the {pad + 1} reserved positions")


def layer_count(config: dict[str, Any]) -> int | None:
    for key in ("num_hidden_layers", "n_layers", "n_layer"):
        if _is_int(config.get(key)):
            return int(config[key])
    return None


# --------------------------------------------------------------------------------------------
# Weight files
# --------------------------------------------------------------------------------------------


def shard_names(index_file: Path) -> list[str]:
    """The shard file names a ``model.safetensors.index.json`` lists, each checked to stay inside its folder."""
    index = _read_json(index_file, index_file.name)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise _error(f"{index_file} has no weight_map (a JSON object of tensor name to shard file)")
    names = set()
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not shard:
            raise _error(f"{index_file}: tensor {tensor!r} maps to {json.dumps(shard)[:40]}, not a shard file name")
        parts = PurePosixPath(shard).parts
        if (
            PurePosixPath(shard).is_absolute()
            or PureWindowsPath(shard).is_absolute()
            or PureWindowsPath(shard).drive
            or "\\" in shard
            or ".." in parts
            or "\x00" in shard
        ):
            raise _error(
                f"{index_file} names a shard outside the model directory: {shard!r}",
                hint="A checkpoint's shards live in its own directory; this index is damaged or hostile. "
                "Restore it from a source you trust.",
            )
        if not shard.endswith(".safetensors"):
            raise _error(
                f"{index_file} names a shard that is not a safetensors file: {shard!r}",
                hint="Restore the checkpoint's model.safetensors.index.json and its model-*.safetensors shards.",
            )
        names.add(shard)
    return sorted(names)


def weight_files(path: Path) -> list[Path]:
    """The weight files of a checkpoint directory in the order the loader reads them (empty: none)."""
    if (path / "model.safetensors").is_file():
        return [path / "model.safetensors"]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        shards = [path / name for name in shard_names(index)]
        missing = [s for s in shards if not s.is_file()]
        if missing:
            raise _error(
                f"{path} is missing {len(missing)} of the {len(shards)} weight shards its index lists "
                f"(e.g. {missing[0].name})",
                hint="Copy every model-*.safetensors shard into the directory, or restore the checkpoint.",
            )
        return shards
    if (path / "pytorch_model.bin").is_file():
        return [path / "pytorch_model.bin"]
    return []


def safetensors_header(file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) of a safetensors file, after checking it the way safetensors would.

    The header is a little-endian u64 length, then that many bytes of JSON; the offsets must tile
    the data that follows exactly. Reading it needs neither torch nor safetensors.
    """

    def bad(reason: str) -> ModelNotFoundError:
        return _error(
            f"{file} is not a valid safetensors file: {reason}",
            hint=f"The file is damaged or truncated (an interrupted download or copy?): {_RESTORE[0].lower()}"
            f"{_RESTORE[1:]}",
        )

    try:
        size = file.stat().st_size
        with file.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise bad(f"{size} bytes, too short for a header")
            length = int.from_bytes(prefix, "little")
            if length < 2 or length > _MAX_HEADER or 8 + length > size:
                raise bad(f"its header length ({length:,} bytes) does not fit in the file ({size:,} bytes)")
            raw = handle.read(length)
    except OSError as err:
        raise _error(f"cannot read {file}: {err.strerror or one_line(err)}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise bad(f"its header is not JSON ({one_line(err, 80)})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    spans: list[tuple[int, int, str]] = []
    metadata = header.get("__metadata__")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):  # safetensors reads it as a map of string to string, and refuses the whole file otherwise
        raise bad("its __metadata__ is not a JSON object of strings")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)):
            raise bad(f"tensor {name!r} has no dtype")
        dtype, shape, offsets = entry["dtype"], entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPE_BITS:
            raise bad(f"tensor {name!r} has an unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
            raise bad(f"tensor {name!r} has no valid shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)):
            raise bad(f"tensor {name!r} has no valid data_offsets")
        begin, end = offsets
        if not 0 <= begin <= end or end - begin != (math.prod(shape) * _DTYPE_BITS[dtype] + 7) // 8:
            raise bad(f"tensor {name!r}: data_offsets {offsets} do not match its shape {shape} and dtype {dtype}")
        tensors[name] = (dtype, tuple(shape))
        spans.append((begin, end, name))
    data = size - 8 - length
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise bad(f"tensor {name!r} starts at byte {begin:,} of the data, expected {position:,}")
        position = end
    if position > data:
        raise bad(f"its tensors need {position:,} bytes of data but the file holds {data:,} (truncated)")
    if position < data:
        raise bad(f"{data - position:,} bytes follow the last tensor (a damaged or appended file)")
    return tensors


def _pickle_shapes(file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Shapes of a ``pytorch_model.bin``, read only through ``torch.load(weights_only=True)``."""
    import torch

    def load(mmap: bool) -> Any:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr; the verdict is ours
            warnings.simplefilter("ignore")
            return torch.load(file, map_location="cpu", weights_only=True, mmap=mmap)

    try:
        try:
            state = load(mmap=True)  # the zip format maps tensors without reading them
        except RuntimeError as err:
            if "mmap" not in str(err):
                raise
            state = load(mmap=False)  # the legacy (pre-1.6) format cannot be mapped
    except Exception as err:  # an UnpicklingError for a hostile pickle, anything else for a damaged file
        raise _error(
            f"{file} cannot be loaded as plain weights ({one_line(err, 120)})",
            hint="bertprobe reads pickle weights only with torch.load(weights_only=True) and never runs code from "
            "them; use a checkpoint with model.safetensors, or restore this one from a source you trust.",
        ) from None
    if not (
        isinstance(state, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise _error(
            f"{file} does not hold a state dict (tensor names to tensors)",
            hint="Use a checkpoint saved with save_pretrained (model.safetensors), or restore this one.",
        )
    names = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64"}
    return {k: (names.get(v.dtype, str(v.dtype)), tuple(v.shape)) for k, v in state.items()}


def weight_shapes(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) over every weight file, each file checked; a tensor in two shards is refused."""
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    files = weight_files(path)
    for file in files:
        found = safetensors_header(file) if file.suffix == ".safetensors" else _pickle_shapes(file)
        twice = sorted(set(found) & set(shapes))
        if twice:
            raise _error(f"{path}: tensor {twice[0]!r} is stored in two shards")
        shapes.update(found)
    if files and files[0].name not in ("model.safetensors", "pytorch_model.bin"):  # shards named by an index
        index = path / "model.safetensors.index.json"
        absent = sorted(set(_read_json(index, index.name)["weight_map"]) - set(shapes))
        if absent:
            raise _error(f"{index} lists {len(absent)} tensors that no shard holds (e.g. {absent[0]!r})")
    return shapes


# --------------------------------------------------------------------------------------------
# The whole directory
# --------------------------------------------------------------------------------------------


def check_directory(path: Path, config: dict[str, Any], head: str, family: Collection[str]) -> list[str]:
    """Refuse a checkpoint bertprobe cannot run faithfully; return notices about what it ignores.

    ``config`` is ``read_config(path)``; ``family`` the model types bertprobe supports.
    """
    _check_kind(path, config, family)
    vocab_size = _check_tokenizer(path, config)
    shapes = weight_shapes(path)
    _check_dtypes(path, shapes)
    _check_layers(path, config, shapes)
    embeddings = [s for k, (_, s) in shapes.items() if k.endswith(_WORD_EMBEDDINGS) and len(s) == 2]
    rows = embeddings[0][0] if embeddings else config.get("vocab_size")
    if embeddings:
        _check_embeddings(path, config, embeddings[0])
    if vocab_size is not None and _is_int(rows) and vocab_size > rows:
        raise _error(
            f"{path}: the tokenizer has {vocab_size:,} tokens but the model's embeddings hold {rows:,}",
            hint="The tokenizer files belong to another model: copy the checkpoint's own tokenizer files. Tokens "
            "added on purpose need rows of their own: model.resize_token_embeddings(len(tokenizer)), then save.",
        )
    if config.get("model_type") == "bert":
        return _check_bert_tensors(path, config, shapes, head)
    return []


_WORD_EMBEDDINGS = ("word_embeddings.weight", "embeddings.tok_embeddings.weight")


def _check_embeddings(path: Path, config: dict[str, Any], shape: tuple[int, ...]) -> None:
    """The word-embedding matrix is [vocab_size, width]: the cheapest shape test for every family."""
    width_key = next((k for k in ("embedding_size", "hidden_size", "dim") if _is_int(config.get(k))), None)
    checks = [("vocab_size", shape[0])]
    if width_key and config.get("model_type") != "mobilebert":  # MobileBERT embeds trigrams, then projects
        checks.append((width_key, shape[1]))
    for key, held in checks:
        if _is_int(config.get(key)) and config[key] != held:
            raise _error(
                f"{path}: config.json says {key} {config[key]} but the word embeddings in the weights are "
                f"{shape[0]} x {shape[1]}",
                hint="config.json and the weights come from different models: restore the checkpoint.",
            )


def _check_kind(path: Path, config: dict[str, Any], family: Collection[str]) -> None:
    model_type = config.get("model_type")
    if config.get("auto_map"):
        raise _error(
            f"{path} needs custom code to run (config.json has an auto_map); bertprobe never runs code from a "
            "checkpoint (trust_remote_code stays off)",
            hint=_FAMILY_HINT,
        )
    supported = ", ".join(sorted(family))
    if not model_type:
        raise _error(
            f"{path}/config.json has no model_type, so the architecture is unknown",
            hint='Add the right "model_type" (e.g. "bert") to config.json, or restore the checkpoint\'s config.json.',
        )
    if model_type not in family:
        raise _error(
            f"{path} is a {model_type!r} model, not a BERT-family encoder; bertprobe runs the BERT family only "
            f"({supported})",
            hint=_FAMILY_HINT,
        )
    if config.get("is_decoder") or config.get("add_cross_attention") or config.get("is_encoder_decoder"):
        raise _error(
            f"{path} is configured as a decoder (is_decoder / add_cross_attention), not a bidirectional encoder; "
            "bertprobe probes BERT-family encoders only",
            hint=_FAMILY_HINT,
        )


def _token_text(value: Any) -> bool:
    return (
        value is None or isinstance(value, str) or (isinstance(value, dict) and isinstance(value.get("content"), str))
    )


def _check_tokenizer(path: Path, config: dict[str, Any]) -> int | None:
    """Refuse a missing, damaged or self-contradicting tokenizer; return its vocabulary size (highest id + 1)
    when cheap to know."""
    files: dict[str, dict[str, Any]] = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        file = path / name
        if not file.is_file():
            continue
        raw = _read_json(file, name)
        if not isinstance(raw, dict):
            raise _error(f"{file} is not a JSON object", hint=f"Restore the checkpoint's {name}.")
        for key in _SPECIAL_TOKENS:
            if not _token_text(raw.get(key)):
                raise _error(
                    f"{file}: {key} is {json.dumps(raw[key])[:60]}, not a token string",
                    hint=f"Fix {key} in {name} (or restore the checkpoint's {name}).",
                )
        limit = raw.get("model_max_length")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0):
            raise _error(
                f"{file}: model_max_length is {json.dumps(limit)[:40]}, not a positive number",
                hint=f"Fix model_max_length in {name} (or restore the checkpoint's {name}).",
            )
        files[name] = raw
    _check_special_tokens_agree(path, files)
    needs = _SLOW_TOKENIZER_FILES.get(str(config.get("model_type")), _ANY_TOKENIZER)
    if (path / "tokenizer.json").is_file():
        backend = _fast_tokenizer(path / "tokenizer.json")
        _check_casing(path, config, files.get("tokenizer_config.json"), backend)
        if ("vocab.txt",) in needs and (path / "vocab.txt").is_file():
            _check_vocab_agrees(path, _vocab_lines(path / "vocab.txt"), backend)
        return max(backend.get_vocab(with_added_tokens=True).values()) + 1
    if not any(all((path / name).is_file() for name in names) for names in needs):
        wanted = " or ".join(" + ".join(names) for names in (("tokenizer.json",), *needs))
        raise _error(
            f"{path} has no tokenizer files ({wanted}); without them the text would be split with a made-up vocabulary",
            hint="Copy the checkpoint's tokenizer files into the directory (tokenizer.json, tokenizer_config.json, "
            "special_tokens_map.json).",
        )
    vocab = path / "vocab.txt"
    if vocab.is_file() and ("vocab.txt",) in needs:
        return max(len(_vocab_lines(vocab)), _added_tokens_size(path))
    return _added_tokens_size(path) or None


def _vocab_lines(vocab: Path) -> list[str]:
    try:
        lines = vocab.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise _error(f"{vocab} is not a readable UTF-8 word-piece vocabulary ({one_line(err, 80)})") from None
    if not any(line.strip() for line in lines):
        raise _error(f"{vocab} is empty")
    return lines


# The special tokens bertprobe reads from the tokenizer files (tokenizer.py): bos and eos it never uses.
_READ_SPECIAL_TOKENS = ("mask_token", "cls_token", "sep_token", "pad_token", "unk_token")


def _check_special_tokens_agree(path: Path, files: dict[str, dict[str, Any]]) -> None:
    """Both files may name the special tokens; where they name different ones, transformers takes
    special_tokens_map.json's and bertprobe tokenizer_config.json's, and either may be the wrong one."""
    if len(files) < 2:
        return
    config, mapped = files["tokenizer_config.json"], files["special_tokens_map.json"]
    for key in _READ_SPECIAL_TOKENS:
        first, second = _token_content_of(mapped.get(key)), _token_content_of(config.get(key))
        if first and second and first != second:
            raise _error(
                f"{path}: special_tokens_map.json makes {key} {json.dumps(first)[:40]} but tokenizer_config.json "
                f"{json.dumps(second)[:40]}; the model would be run with one of them, maybe the wrong one",
                hint=f"Make both files name the same {key} (the one the model was trained with), or restore the "
                "checkpoint's tokenizer files.",
            )


def _token_content_of(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


# Tokenizer classes transformers builds a BERT normaliser for from tokenizer_config.json, lowercasing unless
# do_lower_case says otherwise (their default): tokenizer.json's own normaliser is not read.
_LOWERCASING_TOKENIZERS = frozenset(
    ("BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer", "MobileBertTokenizer", "MPNetTokenizer",
     "FunnelTokenizer", "ConvBertTokenizer", "SqueezeBertTokenizer", "LayoutLMTokenizer", "RetriBertTokenizer")
)  # fmt: skip
# What transformers' AutoTokenizer picks by model_type when tokenizer_config.json names no class.
_LOWERCASING_TYPES = frozenset(("bert", "distilbert", "electra", "megatron-bert", "mobilebert", "mpnet"))


def _check_casing(path: Path, config: dict[str, Any], tokenizer_config: dict[str, Any] | None, backend: Any) -> None:
    """Refuse a cased tokenizer.json whose casing tokenizer_config.json leaves to transformers' default.

    bertprobe keeps tokenizer.json's normaliser where tokenizer_config.json says nothing (and applies
    do_lower_case, strip_accents, tokenize_chinese_chars where it does, as transformers does); transformers'
    BERT tokenizers rebuild the normaliser with their defaults (lowercase, accents stripped, CJK split), so the
    same text would become other word pieces. Which one the model was trained with, no file says.
    """
    from tokenizers import normalizers

    normaliser = backend.normalizer
    if not isinstance(normaliser, normalizers.BertNormalizer):
        return
    options = tokenizer_config or {}
    named = str(options.get("tokenizer_class") or "").removesuffix("Fast")
    if not (named in _LOWERCASING_TOKENIZERS or (not named and config.get("model_type") in _LOWERCASING_TYPES)):
        return  # a generic class (PreTrainedTokenizerFast, TokenizersBackend) reads tokenizer.json as it is
    ours = {
        "do_lower_case": options.get("do_lower_case", normaliser.lowercase),
        "tokenize_chinese_chars": options.get("tokenize_chinese_chars", normaliser.handle_chinese_chars),
    }
    theirs = {
        "do_lower_case": options.get("do_lower_case", True),
        "tokenize_chinese_chars": options.get("tokenize_chinese_chars", True),
    }
    # strip_accents null means "as do_lower_case".
    strip = options.get("strip_accents", normaliser.strip_accents)
    ours["strip_accents"] = ours["do_lower_case"] if strip is None else strip
    strip = options.get("strip_accents")
    theirs["strip_accents"] = theirs["do_lower_case"] if strip is None else strip
    what = {
        "do_lower_case": ("lowercase", "a cased model", "an uncased one"),
        "strip_accents": ("strip accents", "accents kept", "accents stripped"),
        "tokenize_chinese_chars": ("split CJK characters", "CJK kept whole", "CJK split"),
    }
    for key, value in ours.items():
        if bool(value) != bool(theirs[key]):
            does, when_false, when_true = what[key]
            raise _error(
                f"{path}: tokenizer.json does not {does}, but tokenizer_config.json does not say {key}, and "
                f"transformers' {named or 'BERT tokenizer'} would {does}: the same text gives other word pieces"
                if not value
                else f"{path}: tokenizer.json does {does}, but tokenizer_config.json does not say {key}, and "
                f"transformers' {named or 'BERT tokenizer'} would not: the same text gives other word pieces",
                hint=f'Add "{key}": false ({when_false}) or true ({when_true}) to tokenizer_config.json, as the model '
                "was trained; or restore the checkpoint's tokenizer files.",
            )


def _check_vocab_agrees(path: Path, lines: list[str], backend: Any) -> None:
    """vocab.txt beside tokenizer.json: only tokenizer.json is read (here and in transformers), so a vocab.txt
    that says otherwise (an edit, or a file from another model) would be silently ignored."""
    from tokenizers import models

    if not isinstance(backend.model, models.WordPiece):
        return
    pieces = backend.get_vocab(with_added_tokens=False)  # the WordPiece model's own, vocab.txt's counterpart
    hint = (
        "Keep the pair that belongs to the model: if you edited vocab.txt, delete tokenizer.json (it is rebuilt "
        "from vocab.txt); otherwise restore the checkpoint's vocab.txt."
    )
    for piece, index in sorted(pieces.items(), key=lambda item: item[1]):
        line = lines[index] if index < len(lines) else None
        if line != piece:
            shown = f"has no line {index + 1}" if line is None else f"line {index + 1} is {json.dumps(line)[:40]}"
            raise _error(
                f"{path}: vocab.txt and tokenizer.json disagree: vocab.txt {shown}, but tokenizer.json gives id "
                f"{index} to {json.dumps(piece)[:40]}; tokenizer.json is the one read",
                hint=hint,
            )
    if len(set(lines)) != len(pieces):
        raise _error(
            f"{path}: vocab.txt and tokenizer.json disagree: vocab.txt has {len(set(lines)):,} pieces, tokenizer.json "
            f"{len(pieces):,}; tokenizer.json is the one read",
            hint=hint,
        )


def _added_tokens_size(path: Path) -> int:
    """Highest id + 1 that ``added_tokens.json`` gives a slow tokenizer (0 without the file)."""
    file = path / "added_tokens.json"
    if not file.is_file():
        return 0
    added = _read_json(file, "added_tokens.json")
    if not (isinstance(added, dict) and all(_is_int(i) and i >= 0 for i in added.values())):
        raise _error(f"{file} is not a JSON object of token to id", hint="Restore the checkpoint's added_tokens.json.")
    return max(added.values(), default=-1) + 1


def _fast_tokenizer(file: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        backend = Tokenizer.from_file(str(file))
    except Exception as err:  # tokenizers raises a bare Exception for JSON it cannot use
        raise _error(
            f"{file} is not a valid tokenizer ({one_line(err, 100)})", hint="Restore the checkpoint's tokenizer.json."
        ) from None
    vocab = backend.get_vocab(with_added_tokens=True)
    if not vocab:
        raise _error(f"{file} has an empty vocabulary", hint="Restore the checkpoint's tokenizer.json.")
    return backend


def _check_dtypes(path: Path, shapes: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    odd = sorted(k for k, (dtype, _) in shapes.items() if dtype not in _FLOAT_DTYPES and not k.endswith(_BUFFERS))
    if odd:
        raise _error(
            f"{path}: tensor {odd[0]!r} is stored as {shapes[odd[0]][0]} ({len(odd)} such tensors); bertprobe runs "
            "float16/bfloat16/float32 weights only, a quantised checkpoint would be silently cast",
            hint="Use the checkpoint's full-precision weights.",
        )


def _check_layers(path: Path, config: dict[str, Any], shapes: dict[str, Any]) -> None:
    if config.get("model_type") == "albert":  # ALBERT shares one layer group across all its layers
        return
    declared = layer_count(config)
    held = sorted({int(m.group(1)) for k in shapes for m in [_LAYER_KEY.search(k)] if m})
    if declared is None or not held:
        return
    hint = (
        "config.json and the weights disagree: restore the checkpoint, or fix num_hidden_layers; bertprobe never "
        "runs a model on part of its layers or on random ones."
    )
    if held[-1] + 1 != declared:
        raise _error(
            f"{path}: config.json says {declared} layers but the weights hold {held[-1] + 1} (layers 0-{held[-1]})",
            hint=hint,
        )
    gaps = sorted(set(range(declared)) - set(held))
    if gaps:
        raise _error(f"{path}: the weights lack layer {gaps[0]} of the {declared} config.json declares", hint=hint)


# --------------------------------------------------------------------------------------------
# BERT (model_type bert, run by bertprobe's own implementation): every tensor accounted for
# --------------------------------------------------------------------------------------------


def bert_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor of a BertForPreTraining with this config (pooler, MLM and NSP heads included)."""
    v, h = config["vocab_size"], config["hidden_size"]
    i, p, t = config["intermediate_size"], config["max_position_embeddings"], config.get("type_vocab_size", 2)
    shapes: dict[str, tuple[int, ...]] = {
        "bert.embeddings.word_embeddings.weight": (v, h),
        "bert.embeddings.position_embeddings.weight": (p, h),
        "bert.embeddings.token_type_embeddings.weight": (t, h),
        "bert.embeddings.LayerNorm.weight": (h,),
        "bert.embeddings.LayerNorm.bias": (h,),
    }
    for n in range(config["num_hidden_layers"]):
        layer = f"bert.encoder.layer.{n}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            shapes[layer + name + ".weight"], shapes[layer + name + ".bias"] = (h, h), (h,)
        shapes[layer + "intermediate.dense.weight"], shapes[layer + "intermediate.dense.bias"] = (i, h), (i,)
        shapes[layer + "output.dense.weight"], shapes[layer + "output.dense.bias"] = (h, i), (h,)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[layer + norm + ".weight"], shapes[layer + norm + ".bias"] = (h,), (h,)
    shapes.update(
        {
            "bert.pooler.dense.weight": (h, h),
            "bert.pooler.dense.bias": (h,),
            "cls.predictions.bias": (v,),
            "cls.predictions.transform.dense.weight": (h, h),
            "cls.predictions.transform.dense.bias": (h,),
            "cls.predictions.transform.LayerNorm.weight": (h,),
            "cls.predictions.transform.LayerNorm.bias": (h,),
            "cls.predictions.decoder.weight": (v, h),
            "cls.predictions.decoder.bias": (v,),
            "cls.seq_relationship.weight": (2, h),
            "cls.seq_relationship.bias": (2,),
        }
    )
    return shapes


# Heads of fine-tuned BERT checkpoints (sequence/token classification, QA): not used by any probe.
_TASK_HEADS = ("classifier.", "qa_outputs.")
_BERT_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def _check_bert_tensors(
    path: Path, config: dict[str, Any], shapes: dict[str, tuple[str, tuple[int, ...]]], head: str
) -> list[str]:
    absent = [k for k in (*_BERT_REQUIRED, "max_position_embeddings") if k not in config]
    if absent:
        raise _error(
            f"{path}/config.json lacks {', '.join(absent)}, which a BERT config must give",
            hint="Restore the checkpoint's config.json.",
        )
    expected = bert_shapes(config)
    found: dict[str, tuple[int, ...]] = {}
    task, unknown = [], []
    for raw, (_, shape) in shapes.items():
        if raw.endswith(_BUFFERS):
            continue
        if raw.startswith(_TASK_HEADS):
            task.append(raw)
            continue
        key = raw.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        key = key if key.startswith(("bert.", "cls.")) else "bert." + key
        if key in expected:
            found[key] = shape
        else:
            unknown.append(raw)
    sizes = ", ".join(f"{k} {config[k]}" for k in ("vocab_size", "hidden_size", "intermediate_size"))
    for key, shape in sorted(found.items()):
        if shape != expected[key]:
            raise _error(
                f"{path}: tensor {key} has shape {list(shape)}, but config.json ({sizes}) makes it "
                f"{list(expected[key])}",
                hint="config.json and the weights come from different models: restore the checkpoint.",
            )
    body = [k for k in expected if k.startswith(("bert.embeddings.", "bert.encoder."))]
    lacking = [k for k in body if k not in found]
    if lacking:
        raise _error(
            f"{path} is not a complete BERT checkpoint: it lacks {len(lacking)} of the {len(body)} encoder weights "
            f"config.json calls for (e.g. {lacking[0]})",
            hint="Restore the checkpoint; bertprobe never fills missing weights with random values.",
        )
    stray = [k for k in unknown if k.removeprefix("bert.").startswith(("embeddings.", "encoder."))]
    if stray:
        raise _error(
            f"{path}: the weights hold {len(stray)} encoder tensors a BERT with this config.json does not have "
            f"(e.g. {stray[0]})",
            hint="config.json and the weights come from different models: restore the checkpoint.",
        )
    untied = config.get("tie_word_embeddings") is False and "cls.predictions.decoder.weight" not in found
    if untied and head in {"mlm", "pretraining"} and "cls.predictions.transform.dense.weight" in found:
        raise _error(
            f"{path}: config.json says the MLM decoder is not tied to the word embeddings "
            "(tie_word_embeddings false), but the weights hold no cls.predictions.decoder.weight",
            hint="Restore the checkpoint, or set tie_word_embeddings to true if the decoder really is tied.",
        )
    if unknown:
        example = sorted(unknown)[0]
        return [f"{path.name}: ignoring {len(unknown)} tensors that are not part of a BERT model (e.g. {example})."]
    return []


# --------------------------------------------------------------------------------------------
# After transformers has loaded a non-native model
# --------------------------------------------------------------------------------------------


def unloadable(path: Path, err: BaseException) -> ModelNotFoundError:
    """One line for transformers' own refusal to load a checkpoint (it may refer to a report it logged)."""
    reason = one_line(err, 200)
    if "mismatched_sizes" in reason:
        reason = "some weights do not have the shapes config.json gives"
    return _error(
        f"{path.name}: transformers cannot load it ({reason})",
        hint="The checkpoint's files do not fit together: restore it from its source.",
    )


def first_non_finite(model: Any) -> tuple[str, int] | None:
    """The first parameter holding NaN or infinity, and how many such values it holds; None if all are finite.

    One float32 sum per tensor finds them (any NaN or inf makes the sum non-finite); only a tensor
    whose sum is not finite is counted value by value, so a finite sum that overflowed is no false alarm.
    """
    import torch

    for name, parameter in model.named_parameters():
        if not parameter.is_floating_point() or bool(torch.isfinite(parameter.sum(dtype=torch.float32))):
            continue
        bad = int((~torch.isfinite(parameter)).sum())
        if bad:
            return name, bad
    return None


def check_finite(path: Path, model: Any, dtype: Any = None) -> None:
    """Refuse weights holding NaN or infinity: every number computed from them would be wrong or NaN.

    Checked on the loaded model, after any cast, so a float32 weight too large for float16 is caught too.
    """
    import torch

    found = first_non_finite(model)
    if found is None:
        return
    name, bad = found
    message = f"{path.name}: the weight {name} holds {bad} NaN or infinite value{'s' if bad != 1 else ''}"
    if dtype in (torch.float16, torch.bfloat16):
        raise _error(
            f"{message} as {str(dtype).removeprefix('torch.')}",
            hint="Try --dtype float32 (a weight may be too large for the smaller type); if that fails too, "
            "restore the checkpoint from its source (download or copy it again).",
        )
    raise _error(message)


def check_loading_info(path: Path, head: str, info: dict[str, Any]) -> None:
    """Refuse what transformers would otherwise fill with random weights, or silently drop."""
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.endswith(_BUFFERS))
    if head == "encoder":  # a masked-LM checkpoint has no pooler; features.py refuses --pool pooler then
        missing = [k for k in missing if "pooler." not in k]
    if missing:
        error = MissingHeadError if head != "encoder" else ModelNotFoundError
        raise error(
            f"{path.name} lacks {len(missing)} {head} weights (e.g. {missing[0]}); they would be random",
            hint="Restore the checkpoint, or pick one with that head; bertprobe never runs random weights.",
        )
    mismatched = list(info.get("mismatched_keys", ()))
    if mismatched:
        raise _error(
            f"{path.name}: {len(mismatched)} weights do not have the shape config.json gives (e.g. {mismatched[0]})",
            hint="config.json and the weights come from different models: restore the checkpoint.",
        )
    unexpected = [k for k in info.get("unexpected_keys", ()) if not k.endswith(_BUFFERS)]
    stray = sorted(k for k in unexpected if re.search(r"(^|\.)(embeddings|encoder|layers?)\.", k))
    if stray:
        raise _error(
            f"{path.name}: the weights hold {len(stray)} encoder tensors this config.json does not describe "
            f"(e.g. {stray[0]})",
            hint="config.json and the weights come from different models: restore the checkpoint.",
        )


# --------------------------------------------------------------------------------------------
# Content fingerprint
# --------------------------------------------------------------------------------------------

MEMO_FILE = "fingerprints.json"
MEMO_STEP = "fingerprint-memo"  # crash-test points: fingerprint-memo:temp-written, fingerprint-memo:renamed
_MEMO_VERSION = 1
_MEMO_MIN_SIZE = 1 << 20  # smaller files are hashed each time: cheaper than the bookkeeping
_MEMO_MAX_ENTRIES = 512
_RACY_NS = 2_000_000_000  # a file changed this recently may change again within the same timestamp


def memo_path() -> Path:
    """``$BERTPROBE_CACHE/fingerprints.json`` (default ``~/.cache/bertprobe``)."""
    configured = os.environ.get("BERTPROBE_CACHE")
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "bertprobe"
    return root / MEMO_FILE


def _stamp(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev]


def _read_memo(file: Path) -> dict[str, Any]:
    try:
        memo = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    if not (isinstance(memo, dict) and memo.get("version") == _MEMO_VERSION and isinstance(memo.get("files"), dict)):
        return {}  # a corrupt or foreign memo is rebuilt, never trusted
    return {
        key: entry
        for key, entry in memo["files"].items()
        if isinstance(entry, dict)
        and isinstance(entry.get("stat"), list)
        and isinstance(entry.get("sha256"), str)
        and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
    }


def sha256_file(file: Path) -> str:
    """The SHA-256 of a file's content, read in 1 MiB blocks (hex)."""
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with file.open("rb", buffering=0) as handle:  # hashlib.file_digest is Python 3.11+
        while count := handle.readinto(buffer):
            digest.update(view[:count])
    return digest.hexdigest()


def file_digest(file: Path, memo: dict[str, Any] | None = None) -> tuple[str, bool]:
    """SHA-256 of a file's content, from ``memo`` when its size, times and inode are unchanged.

    Returns ``(digest, memo_updated)``.
    """
    before = file.stat()
    key = os.path.realpath(file)
    if memo is not None and before.st_size >= _MEMO_MIN_SIZE:
        entry = memo.get(key)
        if entry and entry["stat"] == _stamp(before):
            return entry["sha256"], False
    digest = sha256_file(file)
    after = file.stat()
    stable = _stamp(after) == _stamp(before) and time.time_ns() - after.st_mtime_ns > _RACY_NS
    if memo is not None and before.st_size >= _MEMO_MIN_SIZE and stable:
        memo[key] = {"stat": _stamp(after), "sha256": digest}
        return digest, True
    return digest, False


def _write_memo(file: Path, memo: dict[str, Any]) -> None:
    if len(memo) > _MEMO_MAX_ENTRIES:  # keep the most recently changed files
        newest = sorted(memo.items(), key=lambda item: item[1]["stat"][1], reverse=True)[:_MEMO_MAX_ENTRIES]
        memo = dict(newest)
    # The memo only saves time: a read-only cache costs a re-hash next run, never a wrong hash.
    with contextlib.suppress(OSError):
        for stray in file.parent.glob(f".{file.name}.*.tmp*"):  # left by a run killed mid-write
            stray.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        # Its own crash-point names: whether a run writes the memo depends on file ages, and it must
        # not shift the count of the atomic writes a crash test aims at.
        atomic_write(file, json.dumps({"version": _MEMO_VERSION, "files": memo}, sort_keys=True), step=MEMO_STEP)


def content_files(path: Path) -> list[Path]:
    """The files whose content decides what the model computes: config, tokenizer, weights."""
    return [path / name for name in CONTENT_FILES if (path / name).is_file()] + weight_files(path)


def fingerprint(name: str, path: Path, revision: str | None = None, files: Iterable[Path] | None = None) -> str:
    """``name#hash`` (``name@commit#hash`` for a hub snapshot): a hash of the checkpoint's content.

    A hub commit names what was downloaded, not what is on disk now: a blob edited or damaged in
    the cache must not be served features or probes made from the original, so it is hashed too.
    The same files reached another way (a local copy) give the same hash.
    """
    memo_file = memo_path()
    memo = _read_memo(memo_file)
    changed = False
    digest = hashlib.sha256()
    for file in files if files is not None else content_files(path):
        try:
            file_hash, updated = file_digest(file, memo)
        except OSError as err:
            raise _error(f"cannot read {file}: {err.strerror or one_line(err)}") from None
        changed |= updated
        digest.update(f"{file.relative_to(path).as_posix()}\0{file_hash}\n".encode())
    if changed:
        _write_memo(memo_file, memo)
    return f"{name}@{revision}#{digest.hexdigest()[:16]}" if revision else f"{name}#{digest.hexdigest()[:16]}"
