"""Which input tokens drive a prediction: Captum attributions, judged before they are shown.

Two predictions can be explained, each as a differentiable number F of the word embeddings:

* a fill-mask prediction: F is the MLM logit of the target word at one ``[MASK]``;
* a saved linear probe (``cls-train --out``) read through frozen BERT on the probe's own layer and
  pooling: F is the log-odds of a class, ``log p_c - log(1 - p_c)``; for a binary probe that is
  scikit-learn's decision function, signed for the class.

The baseline replaces the word embedding of every *free* word piece (by the ``[PAD]`` or ``[MASK]``
embedding, or zeros) and keeps the *fixed* pieces as they are: ``[CLS]``, ``[SEP]`` and any
``[MASK]``, which pose the question rather than answer it. Fixed pieces score 0 under every method.

Integrated Gradients is complete: its attributions sum to F(x) - F(baseline) up to the error of
the integral, the convergence delta, which is flagged above 5% of |F(x) - F(baseline)|.

Faithfulness follows ERASER (DeYoung et al., 2020): comprehensiveness is how much the
prediction's probability drops when the top 1, 5, 10, 20 and 50% of word pieces are deleted,
sufficiency how much it drops when only they are kept; AOPC averages over those bins. The same
numbers for random orders of the word pieces say whether the attribution beats chance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from bertprobe.errors import InputError, MaskError, TextTooLongError
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered
from bertprobe.tokenizer import Encoding

if TYPE_CHECKING:
    from bertprobe.inputs import Problem

BASELINES = ("pad", "mask", "zero")
DELTA_TOLERANCE = 0.05  # |delta| above this share of |F(x) - F(baseline)| is flagged
DELTA_ROUNDING = 1e-6  # a |delta| this small passes whatever the share: float rounding, F(x) ≈ F(baseline)
# ... or this share of the larger |F|: F(x) and F(baseline) come from two rows of one float32 batch, which can differ
# by a few units in the last place (~5e-6 at |F| = 10) even where F cannot see the free word pieces at all.
DELTA_ROUNDING_RELATIVE = 1e-5
AOPC_BINS = (1, 5, 10, 20, 50)  # percent of word pieces removed, as in ERASER
TOKEN_BUDGET = 2048  # word pieces per forward pass when no internal batch size is given
DEFAULT_STEPS = 50
DEFAULT_MAX_STEPS = 800
# The most --steps / --max-steps take: past this a run takes hours and the delta no longer shrinks visibly.
MAX_STEPS = 10_000
DEFAULT_RANDOM_ORDERS = 20

Progress = Callable[[int, int], None]  # (stages done, stages in all)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class TokenScore:
    """One word piece and its attribution (in units of F) and share of the total |attribution|."""

    index: int  # position among the word pieces, [CLS] at 0
    token: str
    char_start: int
    char_end: int
    attribution: float
    normalised: float  # attribution / sum of |attribution| over the text, in [-1, 1]
    fixed: bool  # [CLS], [SEP] or a [MASK]: kept in the baseline, so it scores 0


@dataclass
class WordScore:
    """One word of the text: its word pieces' attributions summed."""

    text: str
    char_start: int
    char_end: int
    pieces: list[int]
    attribution: float
    normalised: float
    fixed: bool


@dataclass
class Target:
    """What is explained: a word at a mask, or a probe's class."""

    kind: str  # "fill-mask" or "probe"
    label: str  # the word piece or class name
    index: int  # its vocabulary id or class index
    predicted: bool  # the model's own top choice (no --target / --label given)
    probability: float  # the model's probability for it on the text
    rank: int  # 1 = the model's top choice
    position: int | None = None  # the mask's word-piece index (fill-mask)
    probe: str | None = None  # the probe's directory
    layer: int | None = None
    pooling: str | None = None
    labels: list[str] = field(default_factory=list)  # every class of the probe


@dataclass
class StepTry:
    steps: int
    delta: float
    relative: float | None


@dataclass
class Convergence:
    """How far Integrated Gradients' sum is from F(x) - F(baseline)."""

    delta: float  # sum of attributions - (F(x) - F(baseline))
    difference: float  # F(x) - F(baseline)
    relative: float | None  # |delta| / |difference| (None when the difference is 0)
    tolerance: float
    passed: bool
    steps: int
    tries: list[StepTry]
    rounding: float = DELTA_ROUNDING  # a |delta| up to this passes as float rounding, whatever the share
    auto_steps: bool = False  # whether --auto-steps doubled the steps
    max_steps: int = DEFAULT_MAX_STEPS  # the cap --auto-steps doubles up to

    def advice(self) -> str:
        """What would let the delta shrink, for a run that did not converge: the options that can still add steps."""
        if self.auto_steps:
            if self.max_steps >= MAX_STEPS:
                return f"--auto-steps stopped at {self.max_steps:,} steps, the most --max-steps allows"
            return f"--auto-steps stopped at its cap of {self.max_steps}; raise --max-steps"
        if self.steps >= MAX_STEPS:
            return f"{self.steps:,} steps is the most --steps allows"
        if self.steps < self.max_steps:
            return "rerun with --auto-steps or a larger --steps"
        # --auto-steps alone is refused here: it would have no room to double.
        return f"rerun with a larger --steps, or with --auto-steps and a --max-steps above {self.steps}"


@dataclass
class Faithfulness:
    """ERASER comprehensiveness and sufficiency of this attribution, next to random orders."""

    quantity: str  # what is measured, e.g. "probability of 'mat' at the [MASK]"
    removal: str  # how a word piece is removed
    bins: list[int]  # percent of the free word pieces
    removed: list[int]  # word pieces that makes, per bin
    full: float  # the probability on the whole text
    comprehensiveness: list[float]  # full - p(text without the top pieces), per bin (higher is better)
    sufficiency: list[float]  # full - p(only the top pieces), per bin (lower is better)
    comprehensiveness_aopc: float
    sufficiency_aopc: float
    random_orders: int
    random_comprehensiveness_aopc: float  # mean over the random orders
    random_comprehensiveness_std: float
    random_sufficiency_aopc: float
    random_sufficiency_std: float
    beats_random_comprehensiveness: float  # share of random orders with a lower comprehensiveness
    beats_random_sufficiency: float  # share of random orders with a higher sufficiency
    # Shares of random orders that score exactly the same (on short texts, many remove the very same pieces).
    ties_random_comprehensiveness: float = 0.0
    ties_random_sufficiency: float = 0.0


@dataclass
class AttributionResult(Rendered):
    model: str
    revision: str | None
    source: str
    text: str
    method: str
    method_description: str
    baseline: str
    score: str  # what F is, in words
    target: Target
    output: float  # F(x)
    baseline_output: float  # F(baseline)
    tokens: list[TokenScore]
    words: list[WordScore]
    steps: int | None  # integration steps used (ig)
    internal_batch_size: int
    convergence: Convergence | None
    faithfulness: Faithfulness | None
    device: str
    notices: list[str] = field(default_factory=list)


@dataclass
class AttributionSettings:
    method: str = "ig"
    baseline: str = "pad"
    steps: int = DEFAULT_STEPS
    auto_steps: bool = False
    max_steps: int = DEFAULT_MAX_STEPS
    internal_batch_size: int | None = None  # None: as many as fit in TOKEN_BUDGET word pieces
    faithfulness: bool = True
    random_orders: int = DEFAULT_RANDOM_ORDERS
    seed: int = 0


# --------------------------------------------------------------------------------------------
# The method registry
# --------------------------------------------------------------------------------------------


@dataclass
class Problem:
    """One text to attribute: F over embeddings, the input and baseline embeddings [1, tokens, hidden]."""

    forward: Callable[[Any, Any], Any]  # (embeddings [batch, tokens, hidden], attention mask) -> F [batch]
    inputs: Any
    baselines: Any
    attention_mask: Any  # [1, tokens]


METHODS: dict[str, type[Method]] = {}


class Method:
    """An attribution method; subclasses register themselves under ``method_name``."""

    method_name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # a few words for --help
    description: ClassVar[str] = ""
    uses_steps: ClassVar[bool] = False  # whether --steps / --auto-steps mean anything to it
    uses_baseline: ClassVar[bool] = True  # whether --baseline means anything to it
    complete: ClassVar[bool] = False  # whether its attributions should sum to F(x) - F(baseline)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.method_name:
            METHODS[cls.method_name] = cls

    def attribute(self, problem: Problem, steps: int, internal_batch_size: int) -> Any:
        """Per-word-piece scores [tokens] for the one text in ``problem``."""
        raise NotImplementedError


class IntegratedGradientsMethod(Method):
    # Integrating over the word-embedding layer's output is exactly what Captum's
    # LayerIntegratedGradients on that layer does; taking the embeddings as the input lets the
    # baseline be any embedding, zeros included, not only a token's.
    method_name = "ig"
    summary = "Integrated Gradients"
    description = "Integrated Gradients (Captum) over the word embeddings"
    uses_steps = True
    complete = True

    def attribute(self, problem: Problem, steps: int, internal_batch_size: int) -> Any:
        from captum.attr import IntegratedGradients

        attributions = IntegratedGradients(problem.forward).attribute(
            problem.inputs,
            baselines=problem.baselines,
            additional_forward_args=(problem.attention_mask,),
            n_steps=steps,
            internal_batch_size=internal_batch_size,
        )
        return attributions.sum(-1)[0]


class SaliencyMethod(Method):
    method_name = "saliency"
    summary = "gradient x input"
    description = "gradient x input on the word embeddings (Captum InputXGradient)"
    uses_baseline = False  # the gradient at x times x itself: no baseline input is ever formed

    def attribute(self, problem: Problem, steps: int, internal_batch_size: int) -> Any:
        from captum.attr import InputXGradient

        inputs = problem.inputs.detach().clone().requires_grad_()
        attributions = InputXGradient(problem.forward).attribute(
            inputs, additional_forward_args=(problem.attention_mask,)
        )
        return attributions.sum(-1)[0]


class OcclusionMethod(Method):
    method_name = "occlusion"
    summary = "leave one word piece out"
    description = "leave one word piece out: F(x) - F(x with that piece replaced by the baseline)"

    def attribute(self, problem: Problem, steps: int, internal_batch_size: int) -> Any:
        import torch
        from captum.attr import FeatureAblation

        length = problem.inputs.shape[1]
        # One feature per word piece: its whole embedding is swapped for the baseline's at once.
        feature_mask = torch.arange(length, device=problem.inputs.device).view(1, length, 1)
        attributions = FeatureAblation(problem.forward).attribute(
            problem.inputs,
            baselines=problem.baselines,
            additional_forward_args=(problem.attention_mask,),
            feature_mask=feature_mask.expand_as(problem.inputs),
            perturbations_per_eval=internal_batch_size,
        )
        # Every hidden unit of a piece carries the piece's full difference: read one.
        return attributions[0, :, 0]


def get_method(name: str) -> Method:
    try:
        return METHODS[name]()
    except KeyError:
        raise InputError(
            f"unknown attribution method {name!r}; known methods: {', '.join(METHODS)}",
            hint=f"Pass --method {next(iter(METHODS))} (the default), or one of the others listed.",
        ) from None


# --------------------------------------------------------------------------------------------
# What F is: objectives
# --------------------------------------------------------------------------------------------


def _model_output(lm: LoadedModel, attention_mask: Any, inputs_embeds: Any = None, input_ids: Any = None, **kw: Any):
    # The encoder only: heads are applied here, to the positions that matter.
    return lm.backend.forward(input_ids=input_ids, inputs_embeds=inputs_embeds, attention_mask=attention_mask, **kw)


class Objective:
    """F over embeddings for attribution, and the matching probability over token subsets for faithfulness."""

    def __init__(self, lm: LoadedModel, encoding: Encoding, device: Any) -> None:
        self.lm = lm
        self.encoding = encoding
        self.device = device

    def score(self, embeds: Any, attention_mask: Any) -> Any:
        raise NotImplementedError

    def _probabilities(self, input_ids: Any, attention_mask: Any, kept: Sequence[Sequence[int]]) -> Any:
        raise NotImplementedError

    def probabilities(self, kept: Sequence[Sequence[int]]) -> list[float]:
        """The probability for each text made of only the word pieces ``kept`` (original indices, in order)."""
        import torch

        from bertprobe.features import pad_ids

        values: list[float] = []
        for chunk in _chunks(kept, TOKEN_BUDGET):
            ids, mask = pad_ids(
                [[self.encoding.ids[i] for i in indices] for indices in chunk], self.lm.tokenizer.pad_token_id
            )
            with torch.inference_mode():
                probs = self._probabilities(ids.to(self.device), mask.to(self.device), chunk)
            values.extend(probs.float().cpu().tolist())
        return values


def _chunks(kept: Sequence[Sequence[int]], budget: int) -> Iterator[Sequence[Sequence[int]]]:
    start = 0
    while start < len(kept):
        width = max(len(k) for k in kept[start:])
        size = max(1, budget // max(width, 1))
        yield kept[start : start + size]
        start += size


class FillMaskObjective(Objective):
    def __init__(self, lm: LoadedModel, encoding: Encoding, device: Any, position: int, token_id: int) -> None:
        super().__init__(lm, encoding, device)
        self.position = position
        self.token_id = token_id

    def _mask_logits(self, output: Any, rows: Any, positions: Any) -> Any:
        return self.lm.backend.mlm_logits(output.last_hidden_state[rows, positions])

    def vocabulary_logits(self, embeds: Any, attention_mask: Any) -> Any:
        import torch

        output = _model_output(self.lm, attention_mask, inputs_embeds=embeds)
        rows = torch.arange(embeds.shape[0], device=embeds.device)
        return self._mask_logits(output, rows, torch.full_like(rows, self.position))

    def score(self, embeds: Any, attention_mask: Any) -> Any:
        return self.vocabulary_logits(embeds, attention_mask)[:, self.token_id].float()

    def _probabilities(self, input_ids: Any, attention_mask: Any, kept: Sequence[Sequence[int]]) -> Any:
        import torch

        output = _model_output(self.lm, attention_mask, input_ids=input_ids)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        positions = torch.tensor([list(k).index(self.position) for k in kept], device=input_ids.device)
        return self._mask_logits(output, rows, positions).float().softmax(-1)[:, self.token_id]


class ProbeObjective(Objective):
    def __init__(self, lm: LoadedModel, encoding: Encoding, device: Any, probe: Any, class_index: int) -> None:
        super().__init__(lm, encoding, device)
        self.probe = probe
        self.class_index = class_index

    def class_logits(self, output: Any, attention_mask: Any) -> Any:
        from bertprobe.features import pool

        hidden = output.hidden_states[self.probe.layer]
        # Probes are trained on float32 features (features.run_batch), so read them the same way; the pooler's
        # weights are in the model's dtype, and cls-train feeds it the hidden states in that dtype (featcache).
        if self.probe.pooling == "pooler":
            return self.probe.logits(pool(self.lm, hidden, attention_mask, "pooler").float())
        return self.probe.logits(pool(self.lm, hidden.float(), attention_mask, self.probe.pooling))

    def logits_for_embeddings(self, embeds: Any, attention_mask: Any) -> Any:
        output = _model_output(self.lm, attention_mask, inputs_embeds=embeds, hidden_states=True)
        return self.class_logits(output, attention_mask)

    def score(self, embeds: Any, attention_mask: Any) -> Any:
        return log_odds(self.logits_for_embeddings(embeds, attention_mask), self.class_index)

    def _probabilities(self, input_ids: Any, attention_mask: Any, kept: Sequence[Sequence[int]]) -> Any:
        output = _model_output(self.lm, attention_mask, input_ids=input_ids, hidden_states=True)
        return self.class_logits(output, attention_mask).softmax(-1)[:, self.class_index]


def log_odds(logits: Any, class_index: int) -> Any:
    """``log p_c - log(1 - p_c)`` from class logits [batch, classes], without forming p (stable)."""
    import torch

    others = torch.cat([logits[:, :class_index], logits[:, class_index + 1 :]], dim=-1)
    return logits[:, class_index] - torch.logsumexp(others, dim=-1)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def attribute_fill_mask(
    lm: LoadedModel,
    text: str,
    target: str | None = None,
    mask: int = 1,
    settings: AttributionSettings | None = None,
    progress: Progress | None = None,
) -> AttributionResult:
    """Attribute the MLM logit of ``target`` (default: the top-1 word) at the ``mask``-th [MASK] of ``text``."""
    import torch

    from bertprobe.mlm import require_masks

    settings = settings or AttributionSettings()
    method = check_settings(settings)
    lm, notices = _prepare_device(lm)
    encoding, positions = require_masks(lm, text)
    if not 1 <= mask <= len(positions):
        raise MaskError(
            f"the text has {len(positions)} mask(s); there is no mask {mask}",
            hint=f"Use --mask between 1 and {len(positions)}.",
        )
    position = positions[mask - 1]
    finder = FillMaskObjective(lm, encoding, lm.device, position, token_id=0)
    ids = torch.tensor([encoding.ids], device=lm.device)
    with torch.inference_mode():
        embeds = lm.input_embeddings()(ids)
        logits = finder.vocabulary_logits(embeds, torch.ones_like(ids))[0].float()
    probs = logits.softmax(-1)
    token_id = int(logits.argmax()) if target is None else _target_id(lm, encoding, position, target)
    objective = FillMaskObjective(lm, encoding, lm.device, position, token_id)
    piece = lm.tokenizer.id_to_token(token_id)
    chosen = Target(
        kind="fill-mask",
        label=piece,
        index=token_id,
        predicted=target is None,
        probability=float(probs[token_id]),
        rank=int((logits > logits[token_id]).sum()) + 1,
        position=position,
    )
    score = f"logit of {piece!r} at the [MASK] (word piece {position})"
    quantity = f"probability of {piece!r} at the [MASK]"
    return _explain(lm, encoding, objective, chosen, score, quantity, method, settings, notices, progress)


def attribute_probe(
    lm: LoadedModel,
    text: str,
    probe: Any,
    label: str | None = None,
    settings: AttributionSettings | None = None,
    progress: Progress | None = None,
) -> AttributionResult:
    """Attribute a saved probe's class log-odds (default: the predicted class) on ``text``."""
    import torch

    from bertprobe.features import encode_checked

    settings = settings or AttributionSettings()
    method = check_settings(settings)
    probe.check_model(lm)
    lm, notices = _prepare_device(lm)
    notices = [*probe.tokenizer_notices(), *notices]
    encoding = encode_checked(lm, text)
    too_long = _longer_than_probe(probe, encoding)
    if too_long is not None:
        raise TextTooLongError(
            f"the text is {too_long}", hint="Shorten the text, or train the probe with a larger --max-length."
        )
    labels = [str(name) for name in probe.labels]
    finder = ProbeObjective(lm, encoding, lm.device, probe, 0)
    ids = torch.tensor([encoding.ids], device=lm.device)
    with torch.inference_mode():
        embeds = lm.input_embeddings()(ids)
        logits = finder.logits_for_embeddings(embeds, torch.ones_like(ids))[0].float()
    probs = logits.softmax(-1)
    class_index = int(logits.argmax()) if label is None else _class_index(labels, label)
    objective = ProbeObjective(lm, encoding, lm.device, probe, class_index)
    directory = getattr(probe, "directory", None)
    chosen = Target(
        kind="probe",
        label=labels[class_index],
        index=class_index,
        predicted=label is None,
        probability=float(probs[class_index]),
        rank=int((logits > logits[class_index]).sum()) + 1,
        probe=str(directory) if directory is not None else None,
        layer=int(probe.layer),
        pooling=str(probe.pooling),
        labels=labels,
    )
    score = f"log-odds of class {labels[class_index]!r} (probe on layer {probe.layer}, {probe.pooling} pooling)"
    quantity = f"probability of class {labels[class_index]!r}"
    return _explain(lm, encoding, objective, chosen, score, quantity, method, settings, notices, progress)


def check_settings(settings: AttributionSettings) -> Method:
    """The method the settings name, or an ``InputError`` for settings no text can run with."""
    method = get_method(settings.method)
    if settings.baseline not in BASELINES:
        raise InputError(
            f"unknown baseline {settings.baseline!r}; known baselines: {', '.join(BASELINES)}",
            hint="Pass --baseline pad (the default), mask or zero.",
        )
    if settings.steps < 1:
        raise InputError("--steps must be at least 1", hint=f"e.g. --steps {DEFAULT_STEPS}")
    if method.uses_steps and settings.auto_steps and settings.steps >= settings.max_steps:
        raise InputError(*_no_room_to_double(settings.steps, settings.max_steps))
    if settings.internal_batch_size is not None and settings.internal_batch_size < 1:
        raise InputError("--internal-batch-size must be at least 1", hint="Leave it out to fit the machine.")
    if settings.random_orders < 1:
        raise InputError("--random-orders must be at least 1", hint=f"e.g. --random-orders {DEFAULT_RANDOM_ORDERS}")
    return method


def _no_room_to_double(steps: int, max_steps: int) -> tuple[str, str]:
    """The refusal of --auto-steps starting at or above its cap: it would run once and advise what it was given."""
    where = "at" if steps == max_steps else "above"
    default = " (the default)" if max_steps == DEFAULT_MAX_STEPS else ""
    message = f"--auto-steps has no room to double: --steps {steps} is {where} --max-steps {max_steps}{default}"
    once = f"drop --auto-steps to run --steps {steps} once"
    if steps >= MAX_STEPS:
        return message, f"Lower --steps to let it double up to --max-steps, or {once}."
    return message, f"Pass a --max-steps above {steps} (e.g. --max-steps {min(2 * steps, MAX_STEPS)}), or {once}."


def _prepare_device(lm: LoadedModel) -> tuple[LoadedModel, list[str]]:
    """Attribution on MPS falls back to the CPU: Captum forms float64 tensors, which MPS lacks.

    The CPU model is a copy: the cached one stays on its device for the next command.
    """
    device = attribution_device(lm.device)
    if device == lm.device:
        return lm, []
    notice = "attribution runs on the CPU: Captum uses float64 tensors, which Apple's MPS device does not support"
    return lm.on_device(device), [notice]


def attribution_device(device: Any) -> Any:
    import torch

    return torch.device("cpu") if torch.device(device).type == "mps" else device


def _target_id(lm: LoadedModel, encoding: Encoding, position: int, target: str) -> int:
    """The word piece ``target`` becomes when written in place of the mask, as fill-mask writes it.

    Byte-level BPE spells a word differently after a space (``Ġmat``) than at the start (``mat``):
    only the piece written in the slot is the prediction the user means.
    """
    tok = lm.tokenizer
    word = target.strip()
    if not word:
        raise InputError("--target is empty", hint="Give the word to explain, e.g. --target mat")
    # A vocabulary piece spelled out (``##s``, ``Ġmat``), which no text tokenises to on its own.
    direct = tok.token_to_id(word)
    if direct is not None and word.startswith(("##", "Ġ", "▁")):
        return int(direct)
    from bertprobe.fillmask import _Slot, _target_pieces

    # The pieces fillmask --targets scores: a lone space mark ("Ġ" "x") counts, a word glued to the text is refused.
    start, end = encoding.offsets[position]
    pieces = _target_pieces(lm, encoding, _Slot(start, end, [position]), word)
    if pieces == [tok.token_to_id(tok.unk_token)]:
        raise InputError(
            f"{target!r} is not in the vocabulary of {lm.name}: it reads {tok.unk_token}, not the word",
            hint="Pick a word the model knows, e.g. one of the top predictions of `bertprobe fillmask`.",
        )
    if len(pieces) == 1:
        return int(pieces[0])
    spelled = " ".join(tok.id_to_token(i) for i in pieces)
    raise InputError(
        f"{target!r} is {len(pieces)} word pieces ({spelled}) for this model; a [MASK] predicts exactly one",
        hint="Pick a word that is one word piece, e.g. one of the top predictions of `bertprobe fillmask`.",
    )


def _class_index(labels: list[str], label: str) -> int:
    if label in labels:
        return labels.index(label)
    folded = [name.casefold() for name in labels]
    if label.casefold() in folded:
        return folded.index(label.casefold())
    raise InputError(
        f"the probe has no class {label!r}; its classes are {', '.join(repr(n) for n in labels)}",
        hint="Pass --label with one of those, or leave it out to explain the predicted class.",
    )


NOTHING_FREE = "the text holds no word pieces to attribute (only special tokens and masks)"


def _longer_than_probe(probe: Any, encoding: Encoding) -> str | None:
    max_length = getattr(probe, "meta", {}).get("max_length")
    if isinstance(max_length, int) and len(encoding) > max_length:
        return f"{len(encoding)} word pieces long; the probe was trained on texts cut at {max_length}"
    return None


def text_problem(lm: LoadedModel, probe: Any = None) -> Problem:
    """For inputs.TextSource.check: why ``attribute --input`` cannot explain a text (too long for the model or
    the probe, no [MASK] for a fill-mask target, nothing but special tokens and masks) or None, and its pieces.

    The same refusals as a one-text run, found before any model work so that a file's bad line is named.
    """
    from bertprobe import inputs

    def encoded(encoding: Encoding) -> str | None:
        if all(fixed_positions(lm, encoding)):
            return NOTHING_FREE
        return None if probe is None else _longer_than_probe(probe, encoding)

    if probe is None:
        return inputs.mask_problem(lm, wanted=True, encoded=encoded)
    return inputs.length_problem(lm, encoded=encoded)


def fixed_positions(lm: LoadedModel, encoding: Encoding) -> list[bool]:
    """Word pieces kept in the baseline: special tokens and masks."""
    mask_id = lm.tokenizer.mask_token_id
    return [bool(s) or i == mask_id for i, s in zip(encoding.ids, encoding.special, strict=True)]


def baseline_embeddings(lm: LoadedModel, ids: Any, fixed: Any, baseline: str) -> Any:
    """The baseline [1, tokens, hidden]: fixed pieces as in the input, free ones pad / mask / zeros."""
    import torch

    embedding = lm.input_embeddings()
    inputs = embedding(ids)
    if baseline == "zero":
        replaced = torch.zeros_like(inputs)
    else:
        token_id = lm.tokenizer.pad_token_id if baseline == "pad" else lm.tokenizer.mask_token_id
        if token_id is None:
            raise InputError(f"{lm.name}'s tokenizer has no {baseline} token", hint="Use --baseline zero.")
        replaced = embedding(torch.full_like(ids, int(token_id)))
    return torch.where(fixed.view(1, -1, 1), inputs, replaced)


def _internal_batch_size(method: Method, per_pass: int, steps: int, length: int) -> int:
    """Inputs per forward pass: integration steps (ig) or occluded copies (occlusion)."""
    if method.uses_steps:
        return min(per_pass, steps)
    return min(per_pass, length) if isinstance(method, OcclusionMethod) else 1


def _explain(
    lm: LoadedModel,
    encoding: Encoding,
    objective: Objective,
    target: Target,
    score: str,
    quantity: str,
    method: Method,
    settings: AttributionSettings,
    notices: list[str],
    progress: Progress | None,
) -> AttributionResult:
    import torch

    fixed_list = fixed_positions(lm, encoding)
    free = [i for i, f in enumerate(fixed_list) if not f]
    if not free:
        raise InputError(NOTHING_FREE, hint='Give a sentence around the mask, e.g. "The cat sat on the [MASK]."')
    device = lm.device
    ids = torch.tensor([encoding.ids], device=device)
    fixed = torch.tensor(fixed_list, device=device)
    attention_mask = torch.ones_like(ids)
    length = len(encoding)
    steps = settings.steps
    if not method.uses_steps and (settings.auto_steps or settings.steps != DEFAULT_STEPS):
        notices.append(f"--steps and --auto-steps apply to ig only; {method.method_name} has no integration steps")
    if not method.uses_baseline and settings.baseline != AttributionSettings.baseline:
        using = " and ".join(name for name, known in METHODS.items() if known.uses_baseline)
        notices.append(f"--baseline applies to {using}; {method.method_name} compares with no baseline")
    per_pass = settings.internal_batch_size or max(1, TOKEN_BUDGET // length)
    stages = 1 + (1 if settings.faithfulness else 0)
    done = 0

    def tick(extra: int = 0) -> None:
        nonlocal done, stages
        done += 1
        stages += extra
        if progress is not None:
            progress(done, stages)

    # Gradients are taken with respect to the input embeddings only (Captum calls torch.autograd.grad on
    # them), so the model is left as it is: no requires_grad switched, no .grad written. Loaded models
    # carry no parameter gradients anyway (the loader turns them off), so no weight gradient is formed.
    with torch.enable_grad():
        with torch.no_grad():
            inputs = lm.input_embeddings()(ids).detach()
            baselines = baseline_embeddings(lm, ids, fixed, settings.baseline).detach()
            outputs = objective.score(torch.cat([inputs, baselines]), attention_mask.expand(2, -1))
        output, baseline_output = (float(v) for v in outputs.float().cpu())
        rounding = rounding_slack(output, baseline_output)
        problem = Problem(objective.score, inputs, baselines, attention_mask)
        tries: list[StepTry] = []
        while True:
            internal = _internal_batch_size(method, per_pass, steps, length)
            raw = method.attribute(problem, steps, internal).detach().float().cpu()
            raw[fixed.cpu()] = 0.0
            if not method.complete:
                tick()
                break
            delta = float(raw.double().sum()) - (output - baseline_output)
            relative = abs(delta) / abs(output - baseline_output) if output != baseline_output else None
            tries.append(StepTry(steps, delta, relative))
            passed = _passes(delta, output - baseline_output, rounding)
            if passed or not settings.auto_steps or steps >= settings.max_steps:
                tick()
                break
            steps = min(steps * 2, settings.max_steps)
            tick(extra=1)
    convergence = None
    if method.complete:
        last = tries[-1]
        convergence = Convergence(
            delta=last.delta,
            difference=output - baseline_output,
            relative=last.relative,
            tolerance=DELTA_TOLERANCE,
            passed=_passes(last.delta, output - baseline_output, rounding),
            steps=steps,
            tries=tries,
            rounding=rounding,
            auto_steps=settings.auto_steps,
            max_steps=settings.max_steps,
        )
        if not convergence.passed:
            share = "inf" if last.relative is None else f"{last.relative:.1%}"
            notices.append(
                f"Integrated Gradients did not converge: |delta| is {share} of |F(x) - F(baseline)|, above "
                f"{DELTA_TOLERANCE:.0%}; the attributions are not yet trustworthy ({convergence.advice()})"
            )
    total = float(raw[free].abs().sum())
    normalised = raw / total if total > 0 else torch.zeros_like(raw)
    tokens = [
        TokenScore(
            index=i,
            token=encoding.tokens[i],
            char_start=encoding.offsets[i][0],
            char_end=encoding.offsets[i][1],
            attribution=float(raw[i]),
            normalised=float(normalised[i]),
            fixed=fixed_list[i],
        )
        for i in range(length)
    ]
    faithfulness = None
    if settings.faithfulness:
        faithfulness = measure_faithfulness(objective, fixed_list, raw.tolist(), quantity, settings)
        tick()
    return AttributionResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        text=encoding.text,
        method=method.method_name,
        method_description=method.description,
        baseline=settings.baseline,
        score=score,
        target=target,
        output=output,
        baseline_output=baseline_output,
        tokens=tokens,
        words=merge_words(encoding, tokens),
        steps=steps if method.uses_steps else None,
        internal_batch_size=_internal_batch_size(method, per_pass, steps, length),
        convergence=convergence,
        faithfulness=faithfulness,
        device=str(device),
        notices=notices,
    )


def rounding_slack(output: float, baseline_output: float) -> float:
    """The |delta| that is float rounding of F itself: at least DELTA_ROUNDING, more where |F| is large."""
    return max(DELTA_ROUNDING, DELTA_ROUNDING_RELATIVE * max(abs(output), abs(baseline_output)))


def _passes(delta: float, difference: float, rounding: float = DELTA_ROUNDING) -> bool:
    # An exact zero difference passes only with an (all but) zero delta.
    return abs(delta) <= DELTA_TOLERANCE * abs(difference) + rounding


def merge_words(encoding: Encoding, tokens: list[TokenScore]) -> list[WordScore]:
    """Per-word scores: the word's pieces summed (sums keep completeness)."""
    from bertprobe.tokens import words

    merged = []
    for span in words(encoding):
        merged.append(
            WordScore(
                text=span.text,
                char_start=span.start,
                char_end=span.end,
                pieces=list(span.pieces),
                attribution=sum(tokens[i].attribution for i in span.pieces),
                normalised=sum(tokens[i].normalised for i in span.pieces),
                fixed=all(tokens[i].fixed for i in span.pieces),
            )
        )
    return merged


# --------------------------------------------------------------------------------------------
# Faithfulness (ERASER)
# --------------------------------------------------------------------------------------------


def removal_counts(free: int, bins: Sequence[int] = AOPC_BINS) -> list[int]:
    """Word pieces removed per bin: k% of the free pieces, rounded up, at least 1."""
    return [min(free, max(1, math.ceil(free * k / 100 - 1e-9))) for k in bins]


def aopc_curves(
    probability: Callable[[Sequence[Sequence[int]]], list[float]],
    fixed: Sequence[bool],
    orders: Sequence[Sequence[int]],
    counts: Sequence[int],
) -> tuple[float, list[list[float]], list[list[float]]]:
    """(p(full), comprehensiveness per order per bin, sufficiency per order per bin).

    Every distinct subset is evaluated once, all in a few padded batches.
    """
    length = len(fixed)
    kept_sets: dict[tuple[int, ...], int] = {tuple(range(length)): 0}
    plans = []
    for order in orders:
        rows = []
        for count in counts:
            top = set(order[:count])
            without = tuple(i for i in range(length) if i not in top)
            only = tuple(i for i in range(length) if fixed[i] or i in top)
            rows.append((kept_sets.setdefault(without, len(kept_sets)), kept_sets.setdefault(only, len(kept_sets))))
        plans.append(rows)
    values = probability(list(kept_sets))
    full = values[0]
    comprehensiveness = [[full - values[w] for w, _ in rows] for rows in plans]
    sufficiency = [[full - values[o] for _, o in rows] for rows in plans]
    return full, comprehensiveness, sufficiency


def measure_faithfulness(
    objective: Objective,
    fixed: Sequence[bool],
    scores: Sequence[float],
    quantity: str,
    settings: AttributionSettings,
) -> Faithfulness:
    """ERASER comprehensiveness / sufficiency AOPC of the ranking by ``scores``, next to random rankings."""
    import torch

    free = [i for i, f in enumerate(fixed) if not f]
    # Highest attribution first; ties keep text order, so the ranking is deterministic.
    ranked = sorted(free, key=lambda i: (-scores[i], i))
    generator = torch.Generator().manual_seed(settings.seed)
    randoms = [
        [free[j] for j in torch.randperm(len(free), generator=generator).tolist()]
        for _ in range(settings.random_orders)
    ]
    counts = removal_counts(len(free))
    full, comp, suff = aopc_curves(objective.probabilities, fixed, [ranked, *randoms], counts)
    comp_aopc = [sum(row) / len(row) for row in comp]
    suff_aopc = [sum(row) / len(row) for row in suff]
    ours_comp, ours_suff = comp_aopc[0], suff_aopc[0]
    rand_comp, rand_suff = comp_aopc[1:], suff_aopc[1:]
    return Faithfulness(
        quantity=quantity,
        removal="deleted from the text ([CLS], [SEP] and masks stay)",
        bins=list(AOPC_BINS),
        removed=counts,
        full=full,
        comprehensiveness=comp[0],
        sufficiency=suff[0],
        comprehensiveness_aopc=ours_comp,
        sufficiency_aopc=ours_suff,
        random_orders=len(randoms),
        random_comprehensiveness_aopc=_mean(rand_comp),
        random_comprehensiveness_std=_std(rand_comp),
        random_sufficiency_aopc=_mean(rand_suff),
        random_sufficiency_std=_std(rand_suff),
        beats_random_comprehensiveness=sum(r < ours_comp for r in rand_comp) / len(rand_comp),
        beats_random_sufficiency=sum(r > ours_suff for r in rand_suff) / len(rand_suff),
        ties_random_comprehensiveness=sum(r == ours_comp for r in rand_comp) / len(rand_comp),
        ties_random_sufficiency=sum(r == ours_suff for r in rand_suff) / len(rand_suff),
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def _std(values: Sequence[float]) -> float:
    mean = _mean(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
