"""Masked-LM pretraining (continued) of a BERT checkpoint on the user's text files.

Each step draws a batch of text chunks, corrupts them with BERT's scheme from
``bertprobe.masking`` (``rate`` of the tokens selected; 80% ``[MASK]``, 10% random, 10%
kept), and minimises the cross-entropy of the original tokens at the selected positions
only. The learning rate warms up linearly, then decays linearly to zero at the end of the
budget (steps, or wall-clock minutes).

The output directory is a normal Hugging Face checkpoint (config, tokenizer, safetensors)
that every bertprobe command and transformers can load. Training state sits beside it
(``trainer_state.json`` + ``optimizer.safetensors``); each file is written atomically and
the state records the weights' hashes, so a resumed run never continues from a
half-written checkpoint. Running the same command again resumes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bertprobe import masking
from bertprobe.atomic import atomic_path
from bertprobe.errors import ArtifactError, DataError, InputError
from bertprobe.features import pad_ids
from bertprobe.models import LoadedModel
from bertprobe.records import read_text

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
WEIGHTS_FILE = "model.safetensors"
STATE_FORMAT = "bertprobe-pretrain"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass
class PretrainSettings:
    source: str
    corpus: list[str]
    out: str
    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.06  # fraction of the budget
    weight_decay: float = 0.01
    rate: float = 0.15
    max_length: int = 128
    seed: int = 0
    save_minutes: float = 5.0
    save_dtype: str = "float32"
    probes: list[str] = field(default_factory=list)


@dataclass
class ProbeTop:
    text: str
    predictions: list[tuple[str, float]]  # top-3 (token, probability) at the first mask


@dataclass
class TrainStatus:
    step: int
    total_steps: int | None
    elapsed: float
    budget_fraction: float
    loss: float  # running mean over the last steps
    lr: float
    tokens_per_second: float
    probes: list[ProbeTop]
    saved_step: int | None


@dataclass
class PretrainResult:
    model: str
    revision: str | None
    source: str
    out: str
    corpus_lines: int
    chunks: int
    start_step: int
    steps: int
    seconds: float
    tokens: int
    first_loss: float | None
    final_loss: float | None
    resumed: bool
    interrupted: bool
    probes_before: list[ProbeTop]
    probes_after: list[ProbeTop]
    settings: dict[str, Any]
    notices: list[str] = field(default_factory=list)


class Interrupted(Exception):
    """Training stopped by Ctrl-C after the checkpoint was written."""

    def __init__(self, result: PretrainResult) -> None:
        super().__init__("interrupted")
        self.result = result


def read_corpus(paths: Sequence[str]) -> list[str]:
    """Non-empty lines of the corpus files (one sentence or paragraph per line)."""
    if not paths:
        raise InputError("no corpus given", hint="Pass --corpus FILE (one sentence or paragraph per line).")
    lines: list[str] = []
    for name in paths:
        text = read_text(name, hint="Check the path given to --corpus.")
        lines.extend(line.strip() for line in text.splitlines() if line.strip())
    if not lines:
        raise DataError(f"{', '.join(paths)}: no text", hint="The corpus needs at least one non-empty line.")
    return lines


def chunk_corpus(lm: LoadedModel, lines: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of every line, long lines cut into chunks that fit ``max_length`` with [CLS] / [SEP]."""
    tok = lm.tokenizer
    room = max_length - 2
    chunks = []
    for encoding in tok.backend.encode_batch(list(lines), add_special_tokens=False):
        ids = list(encoding.ids)
        for start in range(0, len(ids), room):
            piece = ids[start : start + room]
            if piece:
                chunks.append([tok.cls_token_id, *piece, tok.sep_token_id])
    return chunks


def learning_rate(peak: float, fraction: float, warmup: float) -> float:
    """Linear warm-up to ``peak`` over the first ``warmup`` of the budget, then linear decay to 0."""
    fraction = min(max(fraction, 0.0), 1.0)
    if warmup > 0 and fraction < warmup:
        return peak * fraction / warmup
    return peak * max(0.0, 1.0 - fraction) / max(1e-9, 1.0 - warmup)


def probe_predictions(lm: LoadedModel, texts: Sequence[str], top: int = 3) -> list[ProbeTop]:
    """Top predictions at the first mask of each probe sentence, with the model in eval mode."""
    from bertprobe.fillmask import masked_logits, require_masks, top_predictions

    if not texts:
        return []
    encoded = [require_masks(lm, text) for text in texts]
    with lm.backend.mode(training=False):
        rows = masked_logits(lm, [e.ids for e, _ in encoded], [positions[:1] for _, positions in encoded])
    return [
        ProbeTop(text, [(p.token_str, p.score) for p in top_predictions(lm, logits[0], top)])
        for text, logits in zip(texts, rows, strict=True)
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    with atomic_path(target) as temporary:
        write(temporary)


def save_checkpoint(
    lm: LoadedModel,
    model: Any,
    optimizer: Any,
    out: Path,
    state: dict[str, Any],
    save_dtype: str,
) -> None:
    """Weights, config, tokenizer, optimizer and trainer state, each file replaced atomically.

    The trainer state is written last and records the hashes of the other two, so a crash
    between files is detected on resume instead of mixing two checkpoints.
    """
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, save_dtype)
    weights = {
        key: tensor.detach().to("cpu", dtype).contiguous()
        for key, tensor in model.state_dict().items()
        if key != "cls.predictions.decoder.weight"  # tied to the word embeddings
    }
    _atomic_write(out / WEIGHTS_FILE, lambda p: save_file(weights, str(p), metadata={"format": "pt"}))
    config = dict(lm.config)
    config.update(architectures=["BertForMaskedLM"], tie_word_embeddings=True, torch_dtype=save_dtype)
    config.pop("dtype", None)
    _atomic_write(out / "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    for name in _TOKENIZER_FILES:
        source = lm.path / name
        if source.is_file() and source.resolve() != (out / name).resolve():
            _atomic_write(out / name, lambda p, s=source: shutil.copyfile(s, p))

    flat, layout = _flatten_optimizer(optimizer)
    flat["torch_rng"] = torch.get_rng_state()
    _atomic_write(out / OPTIMIZER_FILE, lambda p: save_file(flat, str(p)))
    state = dict(state, optimizer_layout=layout)
    state["hashes"] = {WEIGHTS_FILE: _sha256(out / WEIGHTS_FILE), OPTIMIZER_FILE: _sha256(out / OPTIMIZER_FILE)}
    _atomic_write(out / STATE_FILE, lambda p: p.write_text(json.dumps(state, indent=2) + "\n"))


def _flatten_optimizer(optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    saved = optimizer.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for index, values in saved["state"].items():
        for name, value in values.items():
            key = f"state.{index}.{name}"
            if hasattr(value, "detach"):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    return tensors, {"param_groups": saved["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: Any, tensors: dict[str, Any], layout: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in layout["scalars"].items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": layout["param_groups"]})


def read_state(out: Path) -> dict[str, Any] | None:
    """The trainer state of an earlier run in ``out``, checked against the files it describes."""
    path = out / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(
            f"{path} is unreadable ({err})", hint="Delete the directory or pass --restart to start over."
        ) from None
    if state.get("format") != STATE_FORMAT:
        raise ArtifactError(f"{path} is not a bertprobe pretraining state", hint="Choose another --out directory.")
    for name, expected in state.get("hashes", {}).items():
        if not (out / name).is_file() or _sha256(out / name) != expected:
            raise ArtifactError(
                f"{out / name} does not match {STATE_FILE} (an interrupted write?)",
                hint="Pass --restart to start over from --from, or restore the directory from a copy.",
            )
    return state


def pretrain(
    settings: PretrainSettings,
    device: str = "auto",
    offline: bool = False,
    restart: bool = False,
    on_status: Callable[[TrainStatus], None] | None = None,
    status_seconds: float = 2.0,
    probe_seconds: float = 15.0,
) -> PretrainResult:
    """Train, checkpointing every ``settings.save_minutes``; Ctrl-C saves first, then raises Interrupted."""
    import torch

    from bertprobe import models
    from bertprobe.seeding import seed_everything

    if (settings.steps is None) == (settings.minutes is None):
        raise InputError("give exactly one budget: --steps N or --minutes M", hint="e.g. --steps 1000")
    if (settings.steps is not None and settings.steps < 1) or (settings.minutes is not None and settings.minutes <= 0):
        raise InputError("the training budget must be positive", hint="e.g. --steps 1000 or --minutes 30")
    if settings.lr <= 0 or settings.save_minutes <= 0 or settings.batch_size < 1:
        raise InputError(
            "--lr and --save-minutes must be positive and --batch-size at least 1",
            hint="e.g. --lr 1e-4 --save-minutes 5 --batch-size 32",
        )
    if not 0 < settings.rate < 1:
        raise InputError(f"--rate {settings.rate} must be between 0 and 1", hint="BERT used 0.15.")
    if settings.save_dtype not in {"float32", "float16", "bfloat16"}:
        raise InputError(f"--save-dtype {settings.save_dtype!r} is not float32, float16 or bfloat16")
    out = Path(settings.out)
    state = None if restart else read_state(out)
    resumed = state is not None
    if resumed:
        previous = PretrainSettings(**state["settings"])
        if previous.source != settings.source or previous.corpus != settings.corpus:
            raise InputError(
                f"{out} holds a run from {previous.source} on {', '.join(previous.corpus)}",
                hint="Rerun with the same --from and --corpus to resume, pass --restart, or choose another --out.",
            )
        lm = models.load_trainable(str(out), device=device, offline=True)
        lm.name = settings.source
    else:
        lm = models.load_trainable(settings.source, device=device, offline=offline)
    seed_everything(settings.seed)
    lines = read_corpus(settings.corpus)
    chunks = chunk_corpus(lm, lines, min(settings.max_length, lm.tokenizer.model_max_length))
    model = lm.model
    model.train()
    tok = lm.tokenizer
    special = set(tok.special_ids)
    replacements = tok.replacement_ids
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.lr,
    )
    step, elapsed_before, tokens_seen, losses_first = 0, 0.0, 0, None
    if state is not None:
        from safetensors.torch import load_file

        tensors = load_file(str(out / OPTIMIZER_FILE))
        _restore_optimizer(optimizer, tensors, state["optimizer_layout"])
        torch.set_rng_state(tensors["torch_rng"])
        step, elapsed_before, tokens_seen = state["step"], state["elapsed"], state["tokens"]
        losses_first = state.get("first_loss")
    probes = list(settings.probes)
    probes_before = probe_predictions(lm, probes)

    epoch = state["epoch"] if state else 0
    cursor = state["cursor"] if state else 0
    order = _epoch_order(len(chunks), settings.seed, epoch)
    recent: list[float] = list(state.get("recent_losses", [])) if state else []  # running mean survives a resume
    start = time.perf_counter()
    last_status = last_probe = last_save = start
    saved_step: int | None = step if resumed else None
    current_probes = probes_before
    interrupted = False

    def fraction() -> float:
        if settings.steps is not None:
            return step / settings.steps
        return (elapsed_before + time.perf_counter() - start) / (60 * settings.minutes)

    def snapshot() -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "version": 1,
            "step": step,
            "elapsed": elapsed_before + time.perf_counter() - start,
            "tokens": tokens_seen,
            "first_loss": losses_first,
            "last_loss": sum(recent) / len(recent) if recent else None,
            "recent_losses": recent,
            "settings": asdict(settings),
            "base_fingerprint": lm.fingerprint,
            "epoch": epoch,
            "cursor": cursor,
        }

    try:
        while fraction() < 1.0:
            batch_ids = []
            for _ in range(settings.batch_size):
                if cursor >= len(order):
                    epoch, cursor = epoch + 1, 0
                    order = _epoch_order(len(chunks), settings.seed, epoch)
                batch_ids.append(chunks[order[cursor]])
                cursor += 1
            plans = [
                masking.mask_plan(
                    ids, special, tok.mask_token_id, seed=f"{settings.seed}/{step}/{row}",
                    rate=settings.rate, replacements=replacements,
                )
                for row, ids in enumerate(batch_ids)
            ]  # fmt: skip
            input_ids, attention = pad_ids([p.input_ids for p in plans], tok.pad_token_id)
            labels, _ = pad_ids([p.labels() for p in plans], -100)
            input_ids, attention, labels = (t.to(lm.device) for t in (input_ids, attention, labels))
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(settings.lr, fraction(), settings.warmup)
            hidden = lm.backend.forward(input_ids=input_ids, attention_mask=attention).last_hidden_state
            selected = labels != -100
            logits = lm.backend.mlm_logits(hidden[selected])
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[selected])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            tokens_seen += int(attention.sum())
            value = float(loss.detach())
            losses_first = value if losses_first is None else losses_first
            recent = [*recent[-49:], value]

            now = time.perf_counter()
            if probes and now - last_probe >= probe_seconds:
                current_probes = probe_predictions(lm, probes)
                last_probe = now
            if now - last_save >= 60 * settings.save_minutes:
                save_checkpoint(lm, model, optimizer, out, snapshot(), settings.save_dtype)
                saved_step, last_save = step, time.perf_counter()
            if on_status is not None and now - last_status >= status_seconds:
                elapsed = elapsed_before + now - start
                on_status(
                    TrainStatus(
                        step=step,
                        total_steps=settings.steps,
                        elapsed=elapsed,
                        budget_fraction=min(fraction(), 1.0),
                        loss=sum(recent) / len(recent),
                        lr=optimizer.param_groups[0]["lr"],
                        tokens_per_second=tokens_seen / max(elapsed, 1e-9),
                        probes=current_probes,
                        saved_step=saved_step,
                    )
                )
                last_status = now
    except KeyboardInterrupt:
        interrupted = True
    save_checkpoint(lm, model, optimizer, out, snapshot(), settings.save_dtype)
    model.eval()
    result = PretrainResult(
        model=settings.source,
        revision=lm.revision,
        source=settings.source,
        out=str(out),
        corpus_lines=len(lines),
        chunks=len(chunks),
        start_step=state["step"] if state else 0,
        steps=step,
        seconds=elapsed_before + time.perf_counter() - start,
        tokens=tokens_seen,
        first_loss=losses_first,
        final_loss=sum(recent) / len(recent) if recent else None,
        resumed=resumed,
        interrupted=interrupted,
        probes_before=probes_before,
        probes_after=probe_predictions(lm, probes),
        settings=asdict(settings),
        notices=list(lm.notices),
    )
    if interrupted:
        raise Interrupted(result)
    return result


def _epoch_order(count: int, seed: int, epoch: int) -> list[int]:
    """The chunk order of one pass over the corpus: a seeded shuffle, so a resumed run continues it."""
    order = list(range(count))
    random.Random(f"order/{seed}/{epoch}").shuffle(order)
    return order


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else math.exp(min(loss, 50.0))
