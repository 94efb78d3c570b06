"""Masked-LM (and optionally next-sentence) pretraining of a BERT-family checkpoint on the user's text.

Any masked LM of the family continues: BERT on the native backend, RoBERTa, XLM-R, DistilBERT,
ALBERT, ELECTRA's generator (and BERT with ``BERTPROBE_BACKEND=transformers``) through
transformers, all through the ``Backend`` contract; masks use each tokenizer's own mask and
special tokens.

Each step draws a batch of examples, corrupts them with BERT's scheme from
``bertprobe.masking`` (``rate`` of the tokens selected; 80% ``[MASK]``, 10% random, 10%
kept), and minimises the cross-entropy of the original tokens at the selected positions.
With ``nsp`` the examples are sentence pairs, as in BERT: a line and the line after it in
the same document half of the time, a line from another document otherwise, and the NSP
head (pooled ``[CLS]``) learns to tell them apart. The learning rate warms up linearly, then
decays linearly to zero at the end of the budget (steps, or wall-clock minutes).

Everything a step depends on is a function of the step number (which examples, which
masks, the learning rate for a ``--steps`` budget), and a checkpoint holds all the rest
(weights in float32, optimizer moments, RNG states, running losses), so a run interrupted at
any moment and resumed ends with the same weights as one that was never interrupted.

Layout of ``out``::

    out/checkpoint-00000120/   the resumable state: weights, optimizer, trainer_state.json
    out/config.json, out/model.safetensors, out/tokenizer.json ...   the model, in --save-dtype

A checkpoint is written as a hidden temporary directory, every file and the directory
fsynced, then renamed into place; the previous checkpoint is removed only after that. A kill
at any point leaves the previous checkpoint or the new one, never a mix; the next run removes
what a killed save left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bertprobe import checkpoint, masking
from bertprobe.atomic import atomic_path, crash_point, directory_lock, plain_file
from bertprobe.checkpoint import sha256_file
from bertprobe.errors import ArtifactError, BertprobeError, DataError, InputError, MaskError
from bertprobe.features import pad_ids
from bertprobe.inputs import read_text
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.safetensors"
WEIGHTS_FILE = "model.safetensors"
STATE_FORMAT = "bertprobe-pretrain"
STATE_VERSION = 2
STATE_DIGEST = "state_sha256"
CHECKPOINT_PREFIX = "checkpoint-"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_TEMPORARY = re.compile(r"\.checkpoint-.*\.(tmp|old)(-\d+)?")
_TOKENIZER_FILES = checkpoint.TOKENIZER_FILES
_MODEL_FILES = ("config.json", WEIGHTS_FILE, "pytorch_model.bin", "model.safetensors.index.json")
# Settings that decide every step: a resumed run must use the same ones.
_TRAJECTORY = ("source", "corpus", "batch_size", "lr", "warmup", "weight_decay", "rate", "max_length", "seed", "nsp",
               "freeze_layers", "nsp_negatives")  # fmt: skip
# Where NSP's "not next" second sentences come from. BERT's: a sentence of another document, so a
# topic change gives it away. A non-adjacent sentence of the same document asks for coherence
# instead (is this the sentence that comes next, not just one from the same text?): the question
# `nsp --shuffle` asks of a story. "mixed" draws each from either, half and half.
NSP_NEGATIVES = ("other-document", "same-document", "mixed")
# How a sentence pair longer than --max-length is cut. "junction" (runs from 0.2 on): the first sentence loses its
# start and the second its end, so the words where they meet, which say most about whether B follows A, are kept.
# "ends": both lost their ends, and most of a long pair's junction with them; a run saved before this setting
# existed resumes with it, so that its remaining steps see the examples its first steps were drawn from.
PAIR_CUTS = ("junction", "ends")
_MAX_STEPS = 100_000_000
LOSS_WINDOW = 50  # the final loss (and NSP accuracy) is the mean over this many last steps (``_Run.step``)
_MAX_MINUTES = 60 * 24 * 366
_MAX_BATCH = 65_536


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
    save_steps: int | None = None
    save_dtype: str = "float32"
    probes: list[str] = field(default_factory=list)
    nsp: bool = False
    freeze_layers: int = 0  # the embeddings and this many lowest encoder layers stay as they are
    nsp_negatives: str = "other-document"  # where NSP's random second sentences come from (NSP_NEGATIVES)
    pair_cut: str = "junction"  # how a pair longer than max_length is cut (PAIR_CUTS); a resumed run keeps its own


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
    loss: float  # running mean over the last steps (MLM + NSP)
    lr: float
    tokens_per_second: float
    probes: list[ProbeTop]
    saved_step: int | None
    nsp_accuracy: float | None = None  # on the last training batches, when training NSP


@dataclass
class PretrainResult(Rendered):
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
    saved_step: int | None = None  # the step a resumed run continues from
    nsp_pairs: int = 0  # lines that have a next line in their document
    nsp_accuracy: float | None = None
    notices: list[str] = field(default_factory=list)
    exported: bool = True  # the model files at the top of ``out`` are this run's (not after a second Ctrl-C)


class Interrupted(Exception):
    """Training stopped by Ctrl-C; ``result.saved_step`` says where a rerun continues."""

    def __init__(self, result: PretrainResult) -> None:
        super().__init__("interrupted")
        self.result = result


class TrainingDiverged(BertprobeError):
    default_hint = "Lower --lr (and check the corpus); rerun the same command to continue from the last checkpoint."


# --- settings ---------------------------------------------------------------------------


def _finite(value: float, low: float, high: float, low_open: bool = True) -> bool:
    above = value > low if low_open else value >= low
    return isinstance(value, (int, float)) and math.isfinite(value) and above and value <= high


def check_settings(settings: PretrainSettings) -> None:
    """Refuse option values that would train nothing, train forever or save garbage (nan, inf, <= 0)."""
    if (settings.steps is None) == (settings.minutes is None):
        raise InputError("give exactly one budget: --steps N or --minutes M", hint="e.g. --steps 1000")
    if settings.steps is not None and not 1 <= settings.steps <= _MAX_STEPS:
        raise InputError(f"--steps {settings.steps} must be between 1 and {_MAX_STEPS:,}", hint="e.g. --steps 1000")
    if settings.minutes is not None and not _finite(settings.minutes, 0, _MAX_MINUTES):
        raise InputError(
            f"--minutes {settings.minutes} must be a positive number of minutes, at most {_MAX_MINUTES:,}",
            hint="e.g. --minutes 30",
        )
    checks = [
        (_finite(settings.lr, 0, 1.0), f"--lr {settings.lr} must be a number above 0 and at most 1", "e.g. --lr 1e-4"),
        (
            _finite(settings.save_minutes, 0, _MAX_MINUTES),
            f"--save-minutes {settings.save_minutes} must be a positive number of minutes, at most {_MAX_MINUTES:,}",
            "e.g. --save-minutes 5",
        ),
        (
            settings.save_steps is None or 1 <= settings.save_steps <= _MAX_STEPS,
            f"--save-steps {settings.save_steps} must be between 1 and {_MAX_STEPS:,}",
            "e.g. --save-steps 500",
        ),
        (
            1 <= settings.batch_size <= _MAX_BATCH,
            f"--batch-size {settings.batch_size} must be between 1 and {_MAX_BATCH:,}",
            "e.g. --batch-size 32",
        ),
        (_finite(settings.rate, 0, 1.0) and settings.rate < 1, f"--rate {settings.rate} must be between 0 and 1",
         "BERT used 0.15."),
        (_finite(settings.warmup, 0, 0.9, low_open=False), f"--warmup {settings.warmup} must be between 0 and 0.9",
         "e.g. --warmup 0.06"),
        (_finite(settings.weight_decay, 0, 1.0, low_open=False),
         f"weight decay {settings.weight_decay} must be between 0 and 1", "BERT used 0.01."),
        (8 <= settings.max_length <= 100_000, f"--max-length {settings.max_length} must be between 8 and 100,000",
         "e.g. --max-length 128"),
        (0 <= settings.freeze_layers <= 1000, f"--freeze-layers {settings.freeze_layers} must be between 0 and 1,000",
         "e.g. --freeze-layers 4"),
        (0 <= settings.seed < 2**32, f"--seed {settings.seed} must be between 0 and 2**32 - 1", "e.g. --seed 0"),
        (settings.nsp_negatives in NSP_NEGATIVES,
         f"--nsp-negatives {settings.nsp_negatives!r} is not one of {', '.join(NSP_NEGATIVES)}",
         "e.g. --nsp-negatives other-document (BERT's)"),
        (settings.nsp or settings.nsp_negatives == "other-document", "--nsp-negatives goes with --nsp",
         "Add --nsp to train next-sentence prediction."),
        (settings.save_dtype in {"float32", "float16", "bfloat16"},
         f"--save-dtype {settings.save_dtype!r} is not float32, float16 or bfloat16", "e.g. --save-dtype float16"),
    ]  # fmt: skip
    for ok, message, hint in checks:
        if not ok:
            raise InputError(message, hint=hint)


# --- corpus and examples -------------------------------------------------------------------


@dataclass
class Corpus:
    """Non-empty lines of the corpus files; a blank line (or a new file) starts a new document."""

    lines: list[str]
    documents: list[int]
    sha256: list[str]  # of each file, so a resumed run refuses an edited corpus


_LINE_END = re.compile(r"\r\n|\r|\n")


def read_corpus(paths: Sequence[str]) -> Corpus:
    """The corpus files: one sentence (or paragraph) per line, documents separated by blank lines."""
    if not paths:
        raise InputError("no corpus given", hint="Pass --corpus FILE (one sentence or paragraph per line).")
    lines: list[str] = []
    documents: list[int] = []
    hashes = []
    document = -1
    for name in paths:
        text = read_text(name, hint="Check the path given to --corpus.")
        hashes.append(hashlib.sha256(text.encode("utf-8")).hexdigest())
        document += 1
        gap = False
        for line in _LINE_END.split(text):  # old-Mac lone \r ends a line too, as in every other reader
            line = line.strip()
            if not line:
                gap = True
                continue
            if gap and documents and documents[-1] == document:
                document += 1
            gap = False
            lines.append(line)
            documents.append(document)
    if not lines:
        raise DataError(f"{', '.join(paths)}: no text", hint="The corpus needs at least one non-empty line.")
    return Corpus(lines, documents, hashes)


@dataclass
class Batch:
    input_ids: Any
    attention_mask: Any
    token_type_ids: Any
    labels: Any  # -100 where no prediction is asked
    next_labels: Any | None  # 0: B follows A, 1: B is random, -100: a single segment
    examples: list[tuple[int, int]]  # (epoch, position) of each row


def _check_layout(lm: LoadedModel, line: str) -> None:
    """Examples are built as ``cls + pieces + sep``: refuse a tokenizer that frames a text otherwise,
    or the model would train on inputs it never sees at inference."""
    tok = lm.tokenizer
    plain = tok.backend.encode(line, add_special_tokens=False).ids
    framed = tok.backend.encode(line, add_special_tokens=True).ids
    if framed != [tok.cls_token_id, *plain, tok.sep_token_id]:
        raise DataError(
            f"{lm.name}'s tokenizer does not frame a text as {tok.cls_token} text {tok.sep_token}: pretrain "
            "would train it on inputs laid out unlike the ones it reads",
            hint="Start from a checkpoint whose tokenizer adds its [CLS]/[SEP] tokens around each text.",
        )


def cut_pair(
    first: list[int], second: list[int], max_length: int, pair_cut: str = "junction"
) -> tuple[list[int], list[int]]:
    """A pair cut to fit [CLS] A [SEP] B [SEP] in max_length, a piece at a time from the longer sentence.

    "junction" keeps where A meets B (A loses its start, B its end); "ends" (runs saved before) cuts both ends.
    """
    keep_first, keep_second = len(first), len(second)
    while keep_first + keep_second > max_length - 3:  # the shorter loses nothing until they are even
        if keep_first >= keep_second:
            keep_first -= 1
        else:
            keep_second -= 1
    if pair_cut == "ends":
        return first[:keep_first], second[:keep_second]
    return first[len(first) - keep_first :], second[:keep_second]


class TrainingData:
    """The examples of a run and the batch of any step, as a pure function of (seed, step).

    Example ``g = step * batch_size + row`` is position ``g % n`` of epoch ``g // n``'s seeded
    shuffle; its masks are seeded by ``seed/step/row``. Nothing here keeps a cursor that a
    crash could leave half-advanced.
    """

    def __init__(self, lm: LoadedModel, corpus: Corpus, max_length: int, seed: int, rate: float, nsp: bool,
                 negatives: str = "other-document", pair_cut: str = "junction") -> None:  # fmt: skip
        import numpy as np

        tok = lm.tokenizer
        self.tok = tok
        self.seed, self.rate, self.nsp, self.negatives, self.pair_cut = seed, rate, nsp, negatives, pair_cut
        self.max_length = max_length
        self.special = set(tok.special_ids)
        self.replacements = tok.replacement_ids
        # Corpus text is text: a line that mentions "[MASK]" or "[SEP]" gets the pieces of those characters,
        # not the special tokens (a literal [SEP] mid-line would fake a sentence boundary).
        literal = tok.backend.encode_special_tokens
        tok.backend.encode_special_tokens = True
        try:
            encodings = tok.backend.encode_batch(list(corpus.lines), add_special_tokens=False)
        finally:
            tok.backend.encode_special_tokens = literal
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        self.offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.offsets[1:])
        self.ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(self.offsets[-1]))
        self.documents = np.asarray(corpus.documents, dtype=np.int64)
        room = max_length - 2
        line_of, start_of = [], []
        for line, length in enumerate(lengths.tolist()):
            for start in range(0, length, room):
                line_of.append(line)
                start_of.append(start)
        self.line_of = np.asarray(line_of, dtype=np.int64)
        self.start_of = np.asarray(start_of, dtype=np.int64)
        has_next = np.zeros(len(lengths), dtype=bool)
        has_next[:-1] = (self.documents[1:] == self.documents[:-1]) & (lengths[1:] > 0)
        self.has_next = has_next & (lengths > 0)
        self.pairs = int(self.has_next.sum()) if nsp else 0
        # Random second sentences come from other documents of two or more lines, as BERT's came
        # from other documents of running text: a lone line (a dictionary gloss, say) would make
        # "random" recognisable by its style alone, and the head would learn that, not coherence.
        in_pairs = self.has_next.copy()
        in_pairs[1:] |= self.has_next[:-1]
        self.partners = np.flatnonzero(in_pairs)
        # The lines of each line's document: [first_line[line], end_line[line]) (documents are runs of lines).
        starts = np.flatnonzero(np.r_[True, self.documents[1:] != self.documents[:-1]])
        ends = np.r_[starts[1:], len(self.documents)]
        segment = np.repeat(np.arange(len(starts)), ends - starts)
        self.first_line, self.end_line = starts[segment], ends[segment]
        self.lengths = lengths
        self._orders: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.line_of)

    def _line(self, line: int) -> list[int]:
        return self.ids[self.offsets[line] : self.offsets[line + 1]].tolist()

    def order(self, epoch: int) -> Any:
        if epoch not in self._orders:
            import numpy as np

            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self))}
        return self._orders[epoch]

    def locate(self, index: int) -> tuple[int, int]:
        """(epoch, position in that epoch's order) of the index-th example of the run."""
        return divmod(index, len(self))

    def example(self, epoch: int, position: int) -> tuple[list[int], list[int], int]:
        """Token ids, segment ids and NSP label (-100 for none) of one example."""
        chunk = int(self.order(epoch)[position])
        line, start = int(self.line_of[chunk]), int(self.start_of[chunk])
        cls_id, sep_id = self.tok.cls_token_id, self.tok.sep_token_id
        if self.nsp and start == 0 and self.has_next[line]:
            draw = random.Random(f"nsp/{self.seed}/{epoch}/{position}")
            if draw.random() < 0.5:
                partner, label = line + 1, 0
            else:
                partner, label = self._negative(draw, line), 1
            first, second = self._cut(self._line(line), self._line(partner))
            ids = [cls_id, *first, sep_id, *second, sep_id]
            return ids, [0] * (len(first) + 2) + [1] * (len(second) + 1), label
        piece = self._line(line)[start : start + self.max_length - 2]
        return [cls_id, *piece, sep_id], [0] * (len(piece) + 2), -100

    def _cut(self, first: list[int], second: list[int]) -> tuple[list[int], list[int]]:
        return cut_pair(first, second, self.max_length, self.pair_cut)

    def _negative(self, draw: random.Random, line: int) -> int:
        """The second sentence of a "not next" pair (``--nsp-negatives``)."""
        source = self.negatives
        if source == "mixed":
            source = "same-document" if draw.random() < 0.5 else "other-document"
        if source == "same-document":
            same = self._same_document_line(draw, line)
            if same is not None:
                return same
        return self._random_line(draw, line)

    def _same_document_line(self, draw: random.Random, line: int) -> int | None:
        """A line of ``line``'s document that is neither it nor its next line; None if the document has none."""
        first, end = int(self.first_line[line]), int(self.end_line[line])
        for _ in range(20):  # a draw or two in any document of more than a few lines
            candidate = draw.randrange(first, end)
            if candidate not in (line, line + 1) and self.lengths[candidate] > 0:
                return candidate
        choices = [c for c in range(first, end) if c not in (line, line + 1) and self.lengths[c] > 0]
        return choices[draw.randrange(len(choices))] if choices else None

    def _random_line(self, draw: random.Random, line: int) -> int:
        """A line of another multi-line document (BERT's random next sentence); any other line if there is one."""
        count = len(self.partners)
        for _ in range(20):
            candidate = int(self.partners[draw.randrange(count)])
            if self.documents[candidate] != self.documents[line]:
                return candidate
        while count > 2:  # (nearly) all pairs come from one document
            candidate = int(self.partners[draw.randrange(count)])
            if candidate not in (line, line + 1):
                return candidate
        # The corpus's only pair: a lone line of another document, else the line itself; never its true next.
        others = [
            c for c in range(len(self.lengths)) if self.lengths[c] > 0 and self.documents[c] != self.documents[line]
        ]
        return others[draw.randrange(len(others))] if others else line

    def batch(self, step: int, batch_size: int) -> Batch:
        import torch

        rows, types, next_labels, where = [], [], [], []
        for row in range(batch_size):
            epoch, position = self.locate(step * batch_size + row)
            ids, segments, label = self.example(epoch, position)
            rows.append(ids)
            types.append(segments)
            next_labels.append(label)
            where.append((epoch, position))
        plans = [
            masking.mask_plan(ids, self.special, self.tok.mask_token_id, seed=f"{self.seed}/{step}/{row}",
                              rate=self.rate, replacements=self.replacements)
            for row, ids in enumerate(rows)
        ]  # fmt: skip
        input_ids, attention = pad_ids([p.input_ids for p in plans], self.tok.pad_token_id)
        labels, _ = pad_ids([p.labels() for p in plans], -100)
        token_types, _ = pad_ids(types, 0)
        nsp_labels = torch.tensor(next_labels) if self.nsp else None
        return Batch(input_ids, attention, token_types, labels, nsp_labels, where)


# --- optimizer ----------------------------------------------------------------------------


class AdamW:
    """AdamW with decoupled weight decay, the same arithmetic as ``torch.optim.AdamW`` on the CPU.

    ``torch.optim`` imports the torch compiler (``torch._dynamo``) the first time an optimizer
    is built: seconds of every ``pretrain`` start. This one is a few tensor operations, and its
    state is plain named tensors that a checkpoint stores as they are.
    """

    def __init__(
        self,
        named_groups: list[tuple[list[tuple[str, Any]], float]],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        import torch

        self.groups = [{"params": params, "weight_decay": decay} for params, decay in named_groups]
        self.lr, self.betas, self.eps = lr, betas, eps
        self.steps = 0
        self.exp_avg = {name: torch.zeros_like(p) for params, _ in named_groups for name, p in params}
        self.exp_avg_sq = {name: torch.zeros_like(p) for params, _ in named_groups for name, p in params}
        self.stepped: set[str] = set()  # parameters that ever had a gradient

    def zero_grad(self) -> None:
        for group in self.groups:
            for _, parameter in group["params"]:
                parameter.grad = None

    def step(self) -> None:
        import torch

        self.steps += 1
        beta1, beta2 = self.betas
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps) ** 0.5
        step_size = self.lr / bias_correction1
        with torch.no_grad():
            for group in self.groups:
                for name, parameter in group["params"]:
                    grad = parameter.grad
                    if grad is None:
                        continue
                    self.stepped.add(name)
                    exp_avg, exp_avg_sq = self.exp_avg[name], self.exp_avg_sq[name]
                    parameter.mul_(1 - self.lr * group["weight_decay"])
                    exp_avg.lerp_(grad, 1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
                    parameter.addcdiv_(exp_avg, denom, value=-step_size)

    def tensors(self) -> dict[str, Any]:
        out = {}
        for name in self.exp_avg:
            out[f"exp_avg.{name}"] = self.exp_avg[name].detach().cpu().contiguous()
            out[f"exp_avg_sq.{name}"] = self.exp_avg_sq[name].detach().cpu().contiguous()
        return out

    def load(self, tensors: dict[str, Any], steps: int) -> None:
        for name in self.exp_avg:
            for kind, store in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                saved = tensors.get(f"{kind}.{name}")
                if saved is None or saved.shape != store[name].shape:
                    raise ArtifactError(
                        f"the optimizer state has no {kind} for {name}",
                        hint="Pass --restart to start over, or choose another --out.",
                    )
                store[name].copy_(saved)
        self.steps = steps


def clip_grad_norm(parameters: list[Any], max_norm: float) -> None:
    """Scale gradients so their global L2 norm is at most ``max_norm`` (as torch's clip_grad_norm_)."""
    import torch

    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, 2.0) for g in grads]), 2.0)
    coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for grad in grads:
        grad.mul_(coefficient)


def learning_rate(peak: float, fraction: float, warmup: float) -> float:
    """Linear warm-up to ``peak`` over the first ``warmup`` of the budget, then linear decay to 0."""
    fraction = min(max(fraction, 0.0), 1.0)
    if warmup > 0 and fraction < warmup:
        return peak * fraction / warmup
    return peak * max(0.0, 1.0 - fraction) / max(1e-9, 1.0 - warmup)


# --- the model ------------------------------------------------------------------------------


def _add_nsp_head(model: Any, weights: dict[str, Any], seed: int) -> bool:
    """Give the model a pooler and an NSP head: the checkpoint's when it has them, else new ones.

    New weights follow BERT's initialiser (normal(0, 0.02), zero bias) from a generator seeded
    by ``seed``, so a restarted run starts from the same head. Returns whether any are new.
    """
    import torch
    from torch import nn

    from bertprobe.models import native

    width = model.config.hidden_size
    generator = torch.Generator().manual_seed(seed)
    created = False

    def linear(prefix: str, out_features: int) -> nn.Linear:
        nonlocal created
        layer = nn.Linear(width, out_features)
        with torch.no_grad():
            if f"{prefix}.weight" in weights and f"{prefix}.bias" in weights:
                layer.weight.copy_(weights[f"{prefix}.weight"])
                layer.bias.copy_(weights[f"{prefix}.bias"])
            else:
                created = True
                layer.weight.copy_(torch.randn(out_features, width, generator=generator) * 0.02)
                layer.bias.zero_()
        return layer

    device = model.get_input_embeddings().weight.device
    if model.bert.pooler is None:
        model.bert.pooler = native.Pooler(model.config)
        model.bert.pooler.dense = linear("bert.pooler.dense", width)
    if model.cls.seq_relationship is None:
        model.cls.seq_relationship = linear("cls.seq_relationship", 2)
    model.to(device)
    return created


def _checkpoint_weights(path: Path) -> dict[str, Any]:
    """The pooler and NSP tensors of a checkpoint, under our key names (empty when it has none)."""
    from bertprobe.models import _weight_files
    from bertprobe.models import native as bert

    wanted = ("bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight",
              "cls.seq_relationship.bias")  # fmt: skip
    found: dict[str, Any] = {}
    for file in _weight_files(path):
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(file), "pt") as handle:
                keys = handle.keys()  # a safetensors handle is not iterable
                renamed = {new: key for key in keys for new in bert.normalise_keys({key: None})}
                for key in wanted:
                    if key in renamed:
                        found[key] = handle.get_tensor(renamed[key]).float()
        else:
            import torch

            state = bert.normalise_keys(torch.load(file, map_location="cpu", weights_only=True))
            found.update({k: state[k].float() for k in wanted if k in state})
    return found


def _weights(model: Any, dtype: Any) -> dict[str, Any]:
    """The tensors to save, each once: a weight tied to another (the MLM decoder to the word embeddings,
    RoBERTa's decoder bias to its head's bias, ...) is stored under its first name only, as transformers
    saves it; the loader ties it again. Integer buffers keep their type."""
    weights, seen = {}, set()
    for key, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) in seen:  # tied (an untied decoder is a weight of its own, and is saved)
            continue
        seen.add(id(tensor))
        value = tensor.detach().to("cpu")
        weights[key] = (value.to(dtype) if value.is_floating_point() else value).contiguous()
    return weights


def _config(lm: LoadedModel, model: Any, dtype: str) -> dict[str, Any]:
    config = dict(lm.config)
    if lm.native:
        nsp = model.cls is not None and model.cls.seq_relationship is not None
        head = model.cls.predictions if model.cls is not None else None
        tied = head is None or head.decoder.weight is model.bert.embeddings.word_embeddings.weight
        config.update(architectures=["BertForPreTraining" if nsp else "BertForMaskedLM"], tie_word_embeddings=tied)
    else:  # the Auto class transformers picks from model_type reads it back
        config["architectures"] = [type(model).__name__]
    config["torch_dtype"] = dtype
    config.pop("dtype", None)
    return config


def probe_predictions(lm: LoadedModel, texts: Sequence[str], top: int = 3) -> list[ProbeTop]:
    """Top predictions at the first mask of each probe sentence, with the model in eval mode."""
    from bertprobe.mlm import masked_logits, require_masks, top_predictions

    if not texts:
        return []
    encoded = [require_masks(lm, text) for text in texts]
    with lm.backend.mode(training=False):
        rows = masked_logits(lm, [e.ids for e, _ in encoded], [positions[:1] for _, positions in encoded])
    return [
        ProbeTop(text, [(p.token_str, p.score) for p in top_predictions(lm, logits[0], top)])
        for text, logits in zip(texts, rows, strict=True)
    ]


# --- the output directory and its checkpoints ----------------------------------------------


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file of a checkpoint being built, and flush it to disk."""
    write(path)
    plain_file(path)
    _fsync(path)


def checkpoints(out: Path) -> list[tuple[int, Path]]:
    """The complete checkpoints in ``out``, newest first (temporary directories are not among them)."""
    if not out.is_dir():
        return []
    found = []
    for entry in out.iterdir():
        match = _CHECKPOINT.fullmatch(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found, reverse=True)


def remove_strays(out: Path) -> list[str]:
    """Remove what a killed save left in ``out`` (temporary checkpoint directories and files)."""
    removed = []
    if not out.is_dir():
        return removed
    exported = {*_TOKENIZER_FILES, "config.json", WEIGHTS_FILE}
    for entry in out.iterdir():
        name = entry.name
        atomic_leftover = (
            name.startswith(".") and ".tmp" in name and name[1:].split(".tmp")[0].rsplit(".", 1)[0] in exported
        )
        if _TEMPORARY.fullmatch(name) or atomic_leftover:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(name)
    return removed


def prepare_out(out: Path, source: str, restart: bool) -> list[str]:
    """Check ``--out`` before any training: a writable directory that is empty or holds a pretrain run.

    Returns notices (stray files of a killed save that were removed).
    """
    hint = "Choose another --out directory."
    source_path = Path(source)
    if source_path.exists() and out.exists() and out.resolve() == source_path.resolve():
        raise InputError(f"--out {out} is the --from checkpoint itself: training would overwrite it", hint=hint)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a directory", hint=hint)
    if not out.exists():  # created only once the model has loaded: nothing is written before that
        existing = next(p for p in [out, *out.parents] if p.exists() or p == Path(p.anchor))
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            reason = "is a file" if existing.exists() and not existing.is_dir() else "is not writable"
            raise InputError(f"cannot write to --out {out}: {existing} {reason}", hint=hint)
        return []
    try:
        probe = out / f".checkpoint-probe.tmp-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise InputError(f"cannot write to --out {out}: {err.strerror or err}", hint=hint) from None
    removed = remove_strays(out)
    notices = [f"removed {len(removed)} leftover file(s) of an interrupted save in {out}"] if removed else []
    if not checkpoints(out):
        if (out / STATE_FILE).is_file():
            if not restart:
                raise ArtifactError(
                    f"{out} holds a run of an older bertprobe, which cannot be resumed exactly",
                    hint="Pass --restart to start over in it, or choose another --out.",
                )
        elif any((out / name).exists() for name in _MODEL_FILES):
            raise InputError(f"--out {out} holds a checkpoint that pretrain did not write; it would be overwritten",
                             hint=hint)  # fmt: skip
    return notices


def read_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint, checked against the files it describes."""
    path = checkpoint / STATE_FILE
    hint = "Pass --restart to start over from --from, or choose another --out."
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path} is unreadable ({type(err).__name__})", hint=hint) from None
    required = {"step": int, "elapsed": (int, float), "tokens": int, "settings": dict, "hashes": dict,
                "recent_losses": list, "rng": dict, "optimizer_steps": int}  # fmt: skip
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ArtifactError(f"{path} is not a bertprobe pretraining state", hint=hint)
    if state.get("version") != STATE_VERSION or any(not isinstance(state.get(k), t) for k, t in required.items()):
        raise ArtifactError(f"{path} is malformed (fields missing or of the wrong type)", hint=hint)
    try:
        PretrainSettings(
            **{k: v for k, v in state["settings"].items() if k in {f.name for f in fields(PretrainSettings)}}
        )
    except TypeError:
        raise ArtifactError(f"{path} is malformed (its settings are incomplete)", hint=hint) from None
    # The state's own fields (its step, clock, losses, the hashes below): a state saved before the digest
    # existed has none, and its files are still checked against its hashes.
    if STATE_DIGEST in state and state[STATE_DIGEST] != _state_digest(state):
        raise ArtifactError(f"{path} does not match its own digest (damaged or edited)", hint=hint)
    for name, expected in state["hashes"].items():
        if not (checkpoint / name).is_file() or sha256_file(checkpoint / name) != expected:
            raise ArtifactError(f"{checkpoint / name} does not match {STATE_FILE} (damaged or edited)", hint=hint)
    return state


def _state_digest(state: dict[str, Any]) -> str:
    """The SHA-256 of a trainer state's fields, its own digest left out, in one canonical JSON spelling."""
    fields_only = {key: value for key, value in state.items() if key != STATE_DIGEST}
    return hashlib.sha256(json.dumps(fields_only, sort_keys=True).encode("utf-8")).hexdigest()


def _rng_states() -> tuple[dict[str, Any], dict[str, Any]]:
    """Python, numpy and torch RNG states: JSON-able parts and tensors."""
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    json_part = {"python": [version, list(internal), gauss], "numpy": [kind, int(pos), int(has_gauss), float(cached)]}
    tensors = {"rng.torch": torch.get_rng_state(), "rng.numpy_keys": torch.from_numpy(keys.astype(np.int64))}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    return json_part, tensors


def _restore_rng(saved: dict[str, Any], tensors: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = saved["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state((kind, tensors["rng.numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def tokenizer_files(path: Path) -> dict[str, bytes]:
    """The tokenizer files of the model a run loaded, read once: on a resumed run ``path`` is a checkpoint
    that the next save prunes, and the saves and the export after it must still carry them."""
    return {name: (path / name).read_bytes() for name in _TOKENIZER_FILES if (path / name).is_file()}


def save_checkpoint(
    lm: LoadedModel, optimizer: AdamW, out: Path, state: dict[str, Any], tokenizer: dict[str, bytes]
) -> Path:
    """Write ``out/checkpoint-STEP`` as one unit, then drop the other checkpoints.

    Files go into a hidden temporary directory, each fsynced; the directory is fsynced and
    renamed into place, and ``out`` fsynced. Only then are the others removed (renamed
    to a temporary name first, so a kill while deleting leaves only something to clean up).
    """
    import torch
    from safetensors.torch import save_file

    step = state["step"]
    final = out / f"{CHECKPOINT_PREFIX}{step:08d}"
    building = out / f".{final.name}.tmp-{os.getpid()}"
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        _write(building / WEIGHTS_FILE, lambda p: save_file(_weights(lm.model, torch.float32), str(p),
                                                             metadata={"format": "pt"}))  # fmt: skip
        crash_point("pretrain-checkpoint-weights")
        rng_json, rng_tensors = _rng_states()
        _write(building / OPTIMIZER_FILE, lambda p: save_file({**optimizer.tensors(), **rng_tensors}, str(p)))
        crash_point("pretrain-checkpoint-optimizer")
        config = _config(lm, lm.model, "float32")
        _write(building / "config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
        for name, data in tokenizer.items():
            _write(building / name, lambda p, data=data: p.write_bytes(data))
        state = dict(state, rng=rng_json, optimizer_steps=optimizer.steps, stepped=sorted(optimizer.stepped))
        # Every file a resume reads: an edited config.json or tokenizer would otherwise train on as if it were
        # the run's own (read_state checks each name listed, so checkpoints saved before these were listed
        # still resume).
        written = [WEIGHTS_FILE, OPTIMIZER_FILE, "config.json", *tokenizer]
        state["hashes"] = {name: sha256_file(building / name) for name in written}
        state[STATE_DIGEST] = _state_digest(json.loads(json.dumps(state)))  # as read back
        _write(building / STATE_FILE, lambda p: p.write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8"))
        crash_point("pretrain-checkpoint-state")
        _fsync(building)
        if final.exists():  # the same step saved before (a finished run rerun): replace it
            stale = out / f".{final.name}.old-{os.getpid()}"
            final.rename(stale)
            shutil.rmtree(stale)
        building.rename(final)
        _fsync(out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    crash_point("pretrain-checkpoint-rename")
    # Every other checkpoint goes, a later-numbered one too: that is a run --restart replaced, and the next
    # rerun would otherwise resume it (the newest) instead of this one.
    for older_step, older in checkpoints(out):
        if older_step != step:
            stale = out / f".{older.name}.old-{os.getpid()}"
            older.rename(stale)
            crash_point("pretrain-checkpoint-prune")
            shutil.rmtree(stale)
    _fsync(out)
    return final


def export_model(lm: LoadedModel, out: Path, dtype: str, tokenizer: dict[str, bytes]) -> None:
    """The model files at the top of ``out`` (config, tokenizer, weights in ``dtype``), each replaced atomically."""
    import torch
    from safetensors.torch import save_file

    def replace(name: str, write: Callable[[Path], None]) -> None:
        with atomic_path(out / name) as temporary:
            write(temporary)
            _fsync(temporary)

    weights = _weights(lm.model, getattr(torch, dtype))
    replace(WEIGHTS_FILE, lambda p: save_file(weights, str(p), metadata={"format": "pt"}))
    crash_point("pretrain-export-weights")
    config = _config(lm, lm.model, dtype)
    replace("config.json", lambda p: p.write_text(json.dumps(config, indent=2) + "\n"))
    for name, data in tokenizer.items():
        replace(name, lambda p, data=data: p.write_bytes(data))
    _fsync(out)
    crash_point("pretrain-export")


class _StopRequests:
    """Ctrl-C while training asks to stop after the current step (and save); a second one stops at once.

    The handler is installed only in the main thread (signals cannot be caught elsewhere).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# --- the run -------------------------------------------------------------------------------


@dataclass
class _Progress:
    """What a checkpoint stores besides tensors; ``step`` counts finished optimizer steps."""

    step: int = 0
    elapsed: float = 0.0
    tokens: int = 0
    first_loss: float | None = None
    recent: list[float] = field(default_factory=list)
    recent_nsp: list[float] = field(default_factory=list)  # share of NSP labels right, per step

    def mean(self) -> float | None:
        return sum(self.recent) / len(self.recent) if self.recent else None

    def nsp_accuracy(self) -> float | None:
        return sum(self.recent_nsp) / len(self.recent_nsp) if self.recent_nsp else None


def _same_place(before: Any, now: str) -> bool:
    """The same --from or --corpus as typed, or another spelling of the same path ("./m" and "m")."""
    if before == now:
        return True
    if not isinstance(before, str):
        return False
    try:
        return Path(before).exists() and Path(before).resolve() == Path(now).resolve()
    except OSError:
        return False


def _resume_checks(state: dict[str, Any], settings: PretrainSettings, corpus: Corpus, out: Path) -> list[str]:
    previous = state["settings"]
    hint = "Rerun with the same options to resume, pass --restart to start over, or choose another --out."
    same_source = _same_place(previous.get("source"), settings.source)
    corpus_before = previous.get("corpus") or []
    same_corpus = len(corpus_before) == len(settings.corpus) and all(
        _same_place(a, b) for a, b in zip(corpus_before, settings.corpus, strict=False)
    )
    if not (same_source and same_corpus):
        raise InputError(f"{out} holds a run from {previous.get('source')} on {', '.join(previous.get('corpus', []))}",
                         hint=hint)  # fmt: skip
    if state.get("corpus_sha256") != corpus.sha256:
        raise InputError(f"the --corpus files changed since the run in {out} started", hint=hint)
    defaults = {f.name: f.default for f in fields(PretrainSettings)}  # a run saved before a setting existed had it
    before = {name: previous.get(name, defaults[name]) for name in _TRAJECTORY}
    changed = [
        name
        for name in _TRAJECTORY
        if name not in ("source", "corpus") and before[name] != getattr(settings, name)  # those two: checked above
    ]
    if changed:
        options = ", ".join(f"--{n.replace('_', '-')} {before[n]} → {getattr(settings, n)}" for n in changed)
        raise InputError(f"{out} holds a run with other settings ({options})", hint=hint)
    budget = ("steps", "minutes")
    if any(previous.get(n) != getattr(settings, n) for n in budget):
        # As _Run.train decides: a --steps budget is spent at that step, a --minutes one after that much training.
        if settings.steps is not None and state["step"] >= settings.steps:
            spent = f"--steps {settings.steps}"
        elif settings.minutes is not None and state["elapsed"] >= 60 * settings.minutes:
            spent = f"--minutes {settings.minutes:g} ({state['elapsed'] / 60:.1f} min trained)"
        else:
            return [f"the budget changed since step {state['step']}: the learning-rate schedule follows the new one"]
        return [f"the run in {out} is already at step {state['step']}, past {spent}: nothing is trained"]
    return []


def _load(settings: PretrainSettings, out: Path, device: str, offline: bool, restart: bool, corpus: Corpus):
    """The model (from the latest checkpoint when resuming), the trainer state (or None) and notices."""
    from bertprobe import models

    notices = prepare_out(out, settings.source, restart)
    found = [] if restart else checkpoints(out)
    state = read_state(found[0][1]) if found else None
    if state is not None:
        notices += _resume_checks(state, settings, corpus, out)
        # The run's own cut, not this version's default: its remaining steps draw from the examples its first did.
        settings.pair_cut = state["settings"].get("pair_cut", "ends")
        if settings.pair_cut not in PAIR_CUTS:
            raise InputError(
                f"{out} holds a run with an unknown pair cut {settings.pair_cut!r}",
                hint="It was made by a newer bertprobe: upgrade, or pass --restart to start over.",
            )
        lm = models.load_trainable(str(found[0][1]), device=device, offline=True, nsp=settings.nsp, seed=settings.seed)
        lm.name = settings.source
        lm.revision = state.get("revision")  # the run's --from, not the checkpoint folder it resumes from
        lm.notices = notices
    else:
        lm = models.load_trainable(
            settings.source, device=device, offline=offline, nsp=settings.nsp, seed=settings.seed
        )
        if lm.path.resolve() == out.resolve():
            raise InputError(f"--out {out} is the --from checkpoint itself: training would overwrite it",
                             hint="Choose another --out directory.")  # fmt: skip
        lm.notices = list(lm.notices) + notices
    _check_layout(lm, corpus.lines[0])
    if settings.freeze_layers > lm.num_layers:
        raise InputError(
            f"--freeze-layers {settings.freeze_layers}: {settings.source} has only {lm.num_layers} layers",
            hint="Freeze fewer layers, e.g. --freeze-layers 2.",
        )
    freeze(lm, settings.freeze_layers)
    if settings.nsp and lm.native:  # the transformers backend loaded its NSP head with the model
        weights = _checkpoint_weights(lm.path)
        if _add_nsp_head(lm.model, weights, settings.seed) and state is None:
            lm.notices.append(f"{settings.source} has no NSP head: training a new one.")
    return lm, state


def freeze(lm: LoadedModel, layers: int) -> None:
    """Keep the embeddings (and so the tied MLM decoder) and the lowest ``layers`` encoder layers fixed.

    On a CPU most of a step is the backward pass; stopping it below the trained layers makes
    a step several times cheaper, and the frozen layers keep what the checkpoint knew. Which
    modules those are is each architecture's own (the backend knows).
    """
    if layers <= 0:
        return
    for module in lm.backend.lowest_modules(layers):
        module.requires_grad_(False)


def _optimizer(model: Any, settings: PretrainSettings) -> AdamW:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append((name, parameter))
    return AdamW([(decay, settings.weight_decay), (no_decay, 0.0)], lr=settings.lr)


def _train_step(lm: LoadedModel, optimizer: AdamW, batch: Batch, lr: float) -> tuple[float, float | None]:
    """One optimizer step on a batch; returns the loss and the NSP accuracy (None without NSP labels)."""
    import torch

    model = lm.model
    input_ids, attention, token_types, labels = (
        t.to(lm.device) for t in (batch.input_ids, batch.attention_mask, batch.token_type_ids, batch.labels)
    )
    optimizer.lr = lr
    backend = lm.backend
    hidden = backend.forward(
        input_ids=input_ids, attention_mask=attention, token_type_ids=token_types
    ).last_hidden_state
    selected = labels != -100
    logits = backend.mlm_logits(hidden[selected])
    loss = torch.nn.functional.cross_entropy(logits.float(), labels[selected])
    accuracy = None
    if batch.next_labels is not None:
        next_labels = batch.next_labels.to(lm.device)
        paired = next_labels != -100
        if bool(paired.any()):
            next_logits = model.cls.seq_relationship(backend.pooler()(hidden[paired])).float()
            loss = loss + torch.nn.functional.cross_entropy(next_logits, next_labels[paired])
            accuracy = float((next_logits.argmax(-1) == next_labels[paired]).float().mean())
    value = float(loss.detach())
    if not math.isfinite(value):
        return value, accuracy
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm([p for _, p in model.named_parameters()], 1.0)
    optimizer.step()
    return value, accuracy


class _Run:
    """One training session: the loop, its clock, its checkpoints and its live status."""

    def __init__(self, settings: PretrainSettings, lm: LoadedModel, data: TrainingData, corpus: Corpus,
                 state: dict[str, Any] | None) -> None:  # fmt: skip
        self.settings, self.lm, self.data, self.corpus = settings, lm, data, corpus
        self.tokenizer = tokenizer_files(lm.path)
        self.out = Path(settings.out)
        self.optimizer = _optimizer(lm.model, settings)
        self.progress = _Progress()
        if state is not None:
            from safetensors.torch import load_file

            tensors = load_file(str(checkpoints(self.out)[0][1] / OPTIMIZER_FILE))
            self.optimizer.load(tensors, state["optimizer_steps"])
            self.optimizer.stepped = set(state.get("stepped", []))
            _restore_rng(state["rng"], tensors)
            self.progress = _Progress(state["step"], state["elapsed"], state["tokens"], state.get("first_loss"),
                                      list(state["recent_losses"]), list(state.get("recent_nsp", [])))  # fmt: skip
        self.saved_step: int | None = self.progress.step if state is not None else None
        # The model the run started from: a resumed run loads its checkpoint, which is not that.
        self.base_fingerprint = state.get("base_fingerprint") if state is not None else lm.fingerprint
        self.exported = False
        self.start = self.last_save = time.perf_counter()

    def elapsed(self) -> float:
        return self.progress.elapsed + time.perf_counter() - self.start

    def fraction(self) -> float:
        if self.settings.steps is not None:
            return self.progress.step / self.settings.steps
        return self.elapsed() / (60 * self.settings.minutes)

    def snapshot(self) -> dict[str, Any]:
        progress = self.progress
        epoch, cursor = self.data.locate(progress.step * self.settings.batch_size)
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "step": progress.step,
            "elapsed": self.elapsed(),
            "tokens": progress.tokens,
            "first_loss": progress.first_loss,
            "last_loss": progress.mean(),
            "recent_losses": progress.recent,
            "recent_nsp": progress.recent_nsp,
            "settings": asdict(self.settings),
            "corpus_sha256": self.corpus.sha256,
            "base_fingerprint": self.base_fingerprint,
            "revision": self.lm.revision,
            "epoch": epoch,
            "cursor": cursor,  # the next example: derived from the step, stored for people reading the file
        }

    def save(self) -> None:
        if self.saved_step == self.progress.step and checkpoints(self.out):
            return
        if checkpoint.first_non_finite(self.lm.model) is not None:
            raise TrainingDiverged(f"the weights are no longer finite at step {self.progress.step}; nothing was saved")
        save_checkpoint(self.lm, self.optimizer, self.out, self.snapshot(), self.tokenizer)
        self.saved_step, self.last_save = self.progress.step, time.perf_counter()

    def step(self) -> float:
        """One optimizer step; the progress (and so the next batch) moves only once it is complete."""
        settings, progress = self.settings, self.progress
        batch = self.data.batch(progress.step, settings.batch_size)
        lr = learning_rate(settings.lr, self.fraction(), settings.warmup)
        loss, accuracy = _train_step(self.lm, self.optimizer, batch, lr)
        if not math.isfinite(loss):
            kept = self.saved_step if self.saved_step is not None else "(none)"
            raise TrainingDiverged(f"the loss became {loss} at step {progress.step + 1}; the checkpoint of step "
                                   f"{kept} is kept")  # fmt: skip
        progress.step += 1
        progress.tokens += int(batch.attention_mask.sum())
        progress.first_loss = loss if progress.first_loss is None else progress.first_loss
        progress.recent = [*progress.recent[-49:], loss]
        if accuracy is not None:
            progress.recent_nsp = [*progress.recent_nsp[-49:], accuracy]
        return lr

    def status(self, lr: float, probes: list[ProbeTop]) -> TrainStatus:
        progress = self.progress
        return TrainStatus(
            step=progress.step,
            total_steps=self.settings.steps,
            elapsed=self.elapsed(),
            budget_fraction=min(self.fraction(), 1.0),
            loss=progress.mean() or 0.0,
            lr=lr,
            tokens_per_second=progress.tokens / max(self.elapsed(), 1e-9),
            probes=probes,
            saved_step=self.saved_step,
            nsp_accuracy=progress.nsp_accuracy(),
        )

    def train(self, probes_before: list[ProbeTop], on_status: Callable[[TrainStatus], None] | None,
              status_seconds: float, probe_seconds: float) -> tuple[bool, list[ProbeTop]]:  # fmt: skip
        """Train to the end of the budget or a Ctrl-C; returns (interrupted, latest probe predictions)."""
        settings, texts = self.settings, list(self.settings.probes)
        current = probes_before
        # The clock starts here: loading and the "before" probes are not training, and a --minutes budget is.
        self.start = self.last_save = time.perf_counter()
        last_status = last_probe = time.perf_counter()
        with _StopRequests() as stop:
            try:
                while self.fraction() < 1.0 and not stop.requested:
                    lr = self.step()
                    now = time.perf_counter()
                    if texts and now - last_probe >= probe_seconds:
                        current, last_probe = probe_predictions(self.lm, texts), now
                    due = settings.save_steps is not None and self.progress.step % settings.save_steps == 0
                    if due or now - self.last_save >= 60 * settings.save_minutes:
                        self.save()
                    if on_status is not None and now - last_status >= status_seconds:
                        on_status(self.status(lr, current))
                        last_status = now
                self.save()
                export_model(self.lm, self.out, settings.save_dtype, self.tokenizer)
                self.exported = True
                if stop.requested:  # "after" is what the saved model predicts, not the last look (maybe none yet)
                    current = probe_predictions(self.lm, texts)
                return stop.requested, current
            except KeyboardInterrupt:
                # A second Ctrl-C: the last complete checkpoint stands, and the weights in memory may be past it
                # (or mid-step): no "after" to show for the saved model.
                return True, []


def pretrain(
    settings: PretrainSettings,
    device: str = "auto",
    offline: bool = False,
    restart: bool = False,
    on_status: Callable[[TrainStatus], None] | None = None,
    status_seconds: float = 2.0,
    probe_seconds: float = 15.0,
) -> PretrainResult:
    """Train, checkpointing every ``save_minutes`` (and ``save_steps``); Ctrl-C saves, then raises Interrupted."""
    check_settings(settings)
    corpus = read_corpus(settings.corpus)
    with contextlib.ExitStack() as stack:
        _claim(Path(settings.out), stack)
        return _pretrain(settings, corpus, device, offline, restart, on_status, status_seconds, probe_seconds)


def _claim(out: Path, stack: contextlib.ExitStack) -> None:
    """Hold ``--out``'s lock (``.NAME.lock`` beside it) until the run ends; refuse if another run holds it.

    Two runs in one ``--out`` would write interleaved checkpoints, and each would delete the other's
    save in progress as the leftovers of a killed save. The lock dies with its process, so a killed
    run never blocks the next one.
    """
    created = [folder for folder in (out.parent, *out.parent.parents) if not folder.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        held = stack.enter_context(directory_lock(out, wait=False))
    except OSError:
        return  # a place that cannot be written: prepare_out refuses it in its own words
    if held:
        stack.callback(_unclaim, out, created)  # runs before the lock is let go
    else:
        raise InputError(
            f"another bertprobe pretrain is writing to --out {out}",
            hint="Let it finish (Ctrl-C in it saves a checkpoint; the same command then resumes), or choose "
            "another --out.",
        )


def _unclaim(out: Path, created: list[Path]) -> None:
    """A run refused before ``--out`` was made leaves nothing: not its lock file, nor the folders made for it."""
    if out.exists():
        return  # the lock file stays beside a run's checkpoints, as beside a saved probe
    (out.parent / f".{out.name}.lock").unlink(missing_ok=True)
    for folder in created:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return  # something else was put there meanwhile: it stays


def _pretrain(settings: PretrainSettings, corpus: Corpus, device: str, offline: bool, restart: bool,
              on_status: Callable[[TrainStatus], None] | None, status_seconds: float,
              probe_seconds: float) -> PretrainResult:  # fmt: skip
    from bertprobe.seeding import seed_everything

    lm, state = _load(settings, Path(settings.out), device, offline, restart, corpus)
    seed_everything(settings.seed)
    limit = lm.tokenizer.model_max_length
    if settings.max_length > limit:  # the echoed settings say what was asked: say what is done
        lm.notices.append(f"--max-length {settings.max_length}: {settings.source} reads at most {limit} tokens; "
                          f"examples are cut at {limit}")  # fmt: skip
    data = TrainingData(lm, corpus, min(settings.max_length, limit), settings.seed, settings.rate, settings.nsp,
                        settings.nsp_negatives, settings.pair_cut)  # fmt: skip
    if len(data) == 0:
        raise DataError(f"{', '.join(settings.corpus)}: the tokenizer finds no word pieces in the corpus")
    if settings.nsp and data.pairs == 0:
        raise DataError(
            "--nsp needs documents of two or more lines; every line of the corpus stands alone",
            hint="Put consecutive sentences on consecutive lines, blank lines between documents.",
        )
    _check_probes(lm, settings.probes)
    from bertprobe.tokens import special_notices

    lm.notices += [n for n in special_notices(lm.tokenizer, settings.probes, (lm.tokenizer.mask_token,))
                   if n not in lm.notices]  # fmt: skip
    out = Path(settings.out)
    try:  # created only now: a run refused above leaves no empty --out behind
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot write to --out {out}: {err.strerror or err}", hint="Choose another --out.") from None
    lm.model.train()
    run = _Run(settings, lm, data, corpus, state)
    start_step = run.progress.step
    probes_before = probe_predictions(lm, settings.probes)
    interrupted, probes_after = run.train(probes_before, on_status, status_seconds, probe_seconds)
    lm.model.eval()
    result = PretrainResult(
        model=settings.source,
        revision=lm.revision,
        source=settings.source,
        out=settings.out,
        corpus_lines=len(corpus.lines),
        chunks=len(data),
        start_step=start_step,
        steps=run.progress.step,
        seconds=run.elapsed(),
        tokens=run.progress.tokens,
        first_loss=run.progress.first_loss,
        final_loss=run.progress.mean(),
        resumed=state is not None,
        interrupted=interrupted,
        probes_before=probes_before,
        probes_after=probes_after if interrupted else probe_predictions(lm, settings.probes),
        settings=asdict(settings),
        saved_step=run.saved_step,
        nsp_pairs=data.pairs,
        nsp_accuracy=run.progress.nsp_accuracy(),
        notices=list(lm.notices),
        exported=run.exported,
    )
    if interrupted:
        raise Interrupted(result)
    return result


def _check_probes(lm: LoadedModel, texts: Sequence[str]) -> None:
    """Refuse a --probe sentence the model cannot be asked about, naming the option, before ``--out`` is made."""
    from bertprobe.mlm import require_masks

    for text in texts:
        try:
            require_masks(lm, text)
        except InputError as err:
            hint = err.hint
            if hint == MaskError.default_hint:  # it names fillmask
                hint = 'Write [MASK] in each --probe sentence, e.g. --probe "The cat sat on the [MASK]."'
            raise type(err)(f"--probe {text!r}: {err.message}", hint) from None


def rerun_notice(result: PretrainResult, restart: bool) -> str:
    """What a rerun does after a Ctrl-C: resume this run, start over, or (a --restart run stopped before its
    first save) find the old run it was replacing still there."""
    if result.saved_step is not None:
        # The same command with --restart would throw the saved steps away.
        how = "a rerun without --restart" if restart else "a rerun of the same command"
        return f"Interrupted: {how} resumes from step {result.saved_step}."
    old = checkpoints(Path(result.out)) if restart else []
    if old:
        return (
            f"Interrupted before this run's first checkpoint: {result.out} still holds the run it was to replace "
            f"(step {old[-1][0]}); a rerun with --restart starts over, one without resumes that old run."
        )
    return "Interrupted before the first checkpoint: a rerun starts from the beginning."


def perplexity(loss: float | None) -> float | None:
    """exp(loss); infinite past what a float holds (a loss above about 709), never a capped figure."""
    if loss is None:
        return None
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf
