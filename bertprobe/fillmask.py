"""Masked-token predictions: what BERT's MLM head puts at each ``[MASK]``, under several masking modes.

Each masked position is predicted from its own final-layer hidden state; the scores are a
softmax over the whole vocabulary at that position, exactly as ``pipeline("fill-mask")`` does.

Modes (``fill(lm, text, mode=...)``):

- ``single``: the masks written in the text. ``word``: every word piece of a chosen word.
  Both can score ``targets`` (words of any number of pieces), decode several masks jointly,
  and show what the MLM head reads off the ``[CLS]`` position.
- ``bert`` / ``random`` / ``whole-word`` / ``span``: a :mod:`bertprobe.masking` plan applied
  to an unmasked text (BERT's 80/10/10 corruption, or all-``[MASK]``), with the rank and
  probability of each original token and a recovery summary per action.
- ``each``: every token masked in turn: pseudo-log-likelihood (Salazar et al. 2020).

All masked variants of a text go through the model together, in as few padded batches as the
token budget allows; the MLM head runs only at the positions asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bertprobe import masking
from bertprobe.cls_origin import ClsOrigin
from bertprobe.errors import InputError, MaskError, TextTooLongError
from bertprobe.features import encode_checked
from bertprobe.mlm import (
    Prediction,
    Progress,
    mask_positions,
    masked_logits,
    normalise_masks,
    require_mask_token,
    require_masks,
    top_predictions,
)
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered
from bertprobe.tokenizer import Encoding

MODES = ("single", "word", "bert", "random", "whole-word", "span", "each")
CORRUPTING = {"bert": "token", "random": "token", "whole-word": "whole-word", "span": "span"}
DEFAULT_REPLACE = {"bert": "bert", "random": "mask", "whole-word": "mask", "span": "mask"}
REPLACE_PROBS = {"bert": (masking.BERT_MASK_PROB, masking.BERT_RANDOM_PROB), "mask": (1.0, 0.0)}
DECODES = ("independent", "joint")
MAX_JOINT_MASKS = 12
MAX_SAMPLES = 1000

TARGET_SCORE_DEFINITION = (
    "score = product over the target's word pieces, left to right, of P(piece | the text with the "
    "target's earlier pieces filled in, its later pieces still masked, and any other mask of the text "
    "still masked); log_prob = its natural log"
)
JOINT_SCORE_DEFINITION = (
    "joint_score = sum over the masked positions of ln P(token there | the text with every other masked "
    "position filled by this completion): the pseudo-log-likelihood of the fill (higher is better)"
)
PLL_DEFINITION = (
    "log_prob = ln P(token | the text with only that token masked); pll = sum over the tokens that are not "
    "special ([CLS], [SEP], [UNK], ...) "
    "(Salazar et al. 2020, as mlm-scoring and minicons compute it); pseudo_perplexity = exp(-pll / tokens)"
)


@dataclass
class OriginalToken:
    """The token that stood at a masked position, and how the model ranks it there."""

    token: str
    token_id: int
    rank: int  # 1 = the model's top prediction
    score: float  # its probability at that position


@dataclass
class MaskPrediction:
    position: int  # index of the mask among the word pieces (with [CLS] at 0)
    char_start: int
    char_end: int
    predictions: list[Prediction]
    original: OriginalToken | None = None  # word mode: the piece the mask hides


@dataclass
class MaskedWord:
    """One occurrence of ``--mask-word`` and the word pieces masked for it."""

    word: str
    char_start: int
    char_end: int
    positions: list[int]


@dataclass
class PieceScore:
    token: str
    token_id: int
    probability: float  # conditional on the earlier pieces of the same target


@dataclass
class TargetScore:
    word: str
    rank: int  # among the targets at this slot
    score: float  # product of the pieces' conditional probabilities (see TARGET_SCORE_DEFINITION)
    log_prob: float
    pieces: list[PieceScore]


@dataclass
class SlotTargets:
    """The targets scored in one slot: a written mask, or one occurrence of the masked word."""

    slot: int  # 1-based
    char_start: int
    char_end: int
    positions: list[int]
    targets: list[TargetScore]  # best first


@dataclass
class JointFill:
    positions: list[int]
    tokens: list[str]
    token_ids: list[int]
    log_probs: list[float]  # per position: ln P(token | every other masked position filled)
    joint_score: float  # their sum (see JOINT_SCORE_DEFINITION)
    filled: str
    words: list[str] = field(default_factory=list)  # each token as written into ``filled`` (decoded)


@dataclass
class JointDecoding:
    beam: int
    score_definition: str
    completions: list[JointFill]  # best first
    independent: JointFill  # each mask's own top-1, scored the same way


@dataclass
class FillMaskResult(Rendered):
    model: str
    revision: str | None
    source: str
    text: str
    top_k: int
    tokens: list[str]
    masks: list[MaskPrediction]
    text_normalised: str  # the text with the model's own mask token; char spans index into it
    filled: str  # the text with every mask replaced by its top-1 word
    notices: list[str] = field(default_factory=list)
    mode: str = "single"
    decode: str = "independent"
    masked_words: list[MaskedWord] = field(default_factory=list)
    joint: JointDecoding | None = None
    targets: list[SlotTargets] | None = None
    target_score_definition: str | None = None
    cls_predictions: list[Prediction] | None = None  # the MLM head applied at [CLS]
    cls_origin: ClsOrigin | None = None  # with --show-cls: what this model's [CLS] was trained for


@dataclass
class CorruptedPosition:
    """One selected position of one sample: what was there, what the model saw, what it predicts."""

    sample: int  # 1-based
    position: int
    char_start: int
    char_end: int
    group: int  # 1-based index of the unit (token, word or span) it was selected with
    original: str
    original_id: int
    action: str  # mask, random or keep
    seen: str  # the token the model read at this position
    seen_id: int
    predictions: list[Prediction]
    original_rank: int
    original_score: float


@dataclass
class CorruptionSample:
    sample: int  # 1-based
    seed: str  # masking.mask_plan's seed for this sample
    input_ids: list[int]
    seen_tokens: list[str]
    groups: list[list[int]]
    cls_predictions: list[Prediction] | None = None


@dataclass
class RecoveryRow:
    """How often the original token comes back, over every selected position with one action."""

    action: str  # mask, random, keep or all
    count: int
    top1: float | None  # share with the original token ranked first
    top5: float | None
    mean_original_score: float | None


@dataclass
class CorruptionResult(Rendered):
    model: str
    revision: str | None
    source: str
    text: str
    mode: str
    scheme: str  # token, whole-word or span
    replace: str  # bert (80/10/10) or mask (every selected token becomes [MASK])
    rate: float
    mask_prob: float
    random_prob: float
    top_k: int
    tokens: list[str]
    masks: list[CorruptedPosition]  # every sample's selected positions, in order
    samples: list[CorruptionSample]
    summary: list[RecoveryRow]
    replacement_vocabulary: int
    replacement_rule: str
    notices: list[str] = field(default_factory=list)
    cls_origin: ClsOrigin | None = None  # with --show-cls: what this model's [CLS] was trained for
    # Indices into ``masks``: a few positions of each action (mask, random, keep) from all samples, so
    # the rare random and kept tokens are on screen too; one per sample first, then more.
    examples: list[int] = field(default_factory=list)


@dataclass
class TokenLikelihood:
    position: int
    char_start: int
    char_end: int
    token: str
    token_id: int
    log_prob: float
    rank: int
    surprising: bool
    predictions: list[Prediction]


@dataclass
class WordLikelihood:
    word: str
    char_start: int
    char_end: int
    positions: list[int]
    log_prob: float  # sum over its pieces, each masked on its own


@dataclass
class PseudoLikelihoodResult(Rendered):
    model: str
    revision: str | None
    source: str
    text: str
    mode: str
    top_k: int
    tokens: list[str]
    masks: list[TokenLikelihood]  # one per non-special token, each masked on its own
    words: list[WordLikelihood]
    pll: float
    pseudo_perplexity: float
    scored_tokens: int
    surprising: list[int]  # positions of the most surprising tokens, most surprising first
    definition: str = PLL_DEFINITION
    notices: list[str] = field(default_factory=list)


def _rank_and_score(logits_row: Any, token_id: int) -> tuple[int, float]:
    probs = logits_row.softmax(dim=-1)
    score = probs[token_id]
    return int((probs > score).sum()) + 1, float(score)


def splice(text: str, spans: list[tuple[int, int]], words: list[str], starts_word: Sequence[bool] | None = None) -> str:
    """Replace character spans of ``text`` with words (word pieces joined without ``##``).

    ``starts_word`` says which fills begin a word: one written right after another fill (``[MASK][MASK]``,
    or the pieces of a word masked whole) is then set apart by a space, as the model read them: "new
    table", not "newtable".
    """
    out, cursor = [], 0
    starts = list(starts_word) if starts_word is not None else [False] * len(spans)
    previous_end = None
    for (start, end), word, begins in sorted(zip(spans, words, starts, strict=False)):
        out.append(text[cursor:start])
        spaced = after_space(text, start, end, word)
        if spaced is not None:
            out.append(spaced[0])
            word = spaced[1]
        elif begins and start == previous_end and word[:1].isalnum():
            out.append(" ")
        out.append(word.removeprefix("##"))
        cursor = previous_end = end
    out.append(text[cursor:])
    return "".join(out)


def after_space(text: str, start: int, end: int, word: str) -> tuple[str, str] | None:
    """For a slot that follows a space: the space a mask token took in (``<mask>`` absorbs the one before it)
    and the word without its own leading space (a BPE word, "Ġmat", decodes as " mat"), so the two do not
    double up. None for a slot glued to the text before it."""
    span = text[start:end]
    absorbed = span[: len(span) - len(span.lstrip())]
    if absorbed or (start > 0 and text[start - 1].isspace()):
        return absorbed, word.lstrip()
    return None


def starts_word(lm: LoadedModel, token_id: int) -> bool:
    """Whether a predicted piece begins a word: in WordPiece unless it is ``##``-marked, in byte-level BPE
    and SentencePiece only with their space mark (``Ġ``, ``▁``)."""
    piece = lm.tokenizer.id_to_token(token_id) or ""
    if piece.startswith("##"):
        return False
    if piece.startswith(("Ġ", "▁")):
        return True
    return lm.tokenizer.token_to_id("##s") is not None  # a WordPiece vocabulary: continuations are marked


# ---------------------------------------------------------------------------------------------
# The entry point: check the options against the mode, then dispatch.


DEFAULT_BEAM = 5


def fill(
    lm: LoadedModel,
    text: str,
    mode: str = "single",
    top_k: int = 5,
    *,
    mask_word: str | None = None,
    occurrence: int | None = None,
    decode: str = "independent",
    beam: int | None = None,
    targets: Sequence[str] | None = None,
    show_cls: bool = False,
    rate: float | None = None,
    samples: int | None = None,
    replace: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    context: str | Sequence[str] | None = None,
) -> FillMaskResult | CorruptionResult | PseudoLikelihoodResult | ContextResult:
    """Run one masking mode; options that make no sense for the mode are refused, not ignored."""
    _check_options(mode, top_k, mask_word=mask_word, occurrence=occurrence, decode=decode, targets=targets,
                   show_cls=show_cls, rate=rate, samples=samples, replace=replace, context=context,
                   beam=beam)  # fmt: skip
    beam = DEFAULT_BEAM if beam is None else beam
    if context is not None:
        return context_fill(lm, text, context, top_k, mask_word=mask_word, occurrence=occurrence, targets=targets)
    if mode in ("single", "word"):
        return fill_masks(lm, [text], top_k, mask_word=mask_word, occurrence=occurrence, decode=decode, beam=beam,
                          targets=targets, show_cls=show_cls)[0]  # fmt: skip
    if mode == "each":
        return pseudo_log_likelihood(lm, text, top_k, progress=progress)
    return corrupt(
        lm,
        text,
        mode,
        top_k,
        rate=0.15 if rate is None else rate,
        samples=1 if samples is None else samples,
        replace=replace or DEFAULT_REPLACE[mode],
        seed=seed,
        show_cls=show_cls,
        progress=progress,
    )


def fill_many(
    lm: LoadedModel,
    texts: Sequence[str],
    mode: str = "single",
    top_k: int = 5,
    *,
    progress: Progress | None = None,
    **options: Any,
) -> list[FillMaskResult | CorruptionResult | PseudoLikelihoodResult | ContextResult]:
    """``fill`` of each text, with the same options; ``progress(done, total)`` counts texts.

    The single and word modes pad the texts' forward passes together (``fill_masks``); the other
    modes, joint decoding and target scoring run several passes of their own per text.
    """
    _check_options(mode, top_k, **options)
    if mode in ("single", "word") and options.get("context") is None:
        batched = {k: v for k, v in options.items() if k in ("mask_word", "occurrence", "decode", "beam", "targets",
                                                             "show_cls")}  # fmt: skip
        if batched.get("beam") is None:
            batched["beam"] = DEFAULT_BEAM
        return list(fill_masks(lm, texts, top_k, progress=progress, **batched))
    results: list[FillMaskResult | CorruptionResult | PseudoLikelihoodResult | ContextResult] = []
    for done, text in enumerate(texts, start=1):
        results.append(fill(lm, text, mode, top_k, **options))
        if progress is not None:
            progress(done, len(texts))
    return results


def _check_options(
    mode: str,
    top_k: int,
    *,
    mask_word: str | None = None,
    occurrence: int | None = None,
    decode: str = "independent",
    targets: Sequence[str] | None = None,
    show_cls: bool = False,
    rate: float | None = None,
    samples: int | None = None,
    replace: str | None = None,
    context: str | Sequence[str] | None = None,
    beam: int | None = None,  # only with --decode joint
    seed: int = 0,  # any value is fine for any mode
) -> None:
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}", hint=f"Choose one of {', '.join(MODES)}.")
    if top_k < 1:
        raise MaskError("--top-k must be at least 1", hint="e.g. --top-k 10")
    _refuse(mode, "--mask-word", mask_word is not None, ("word",))
    _refuse(mode, "--occurrence", occurrence is not None, ("word",))
    _refuse(mode, "--decode joint", decode == "joint", ("single", "word"))
    _refuse(mode, "--targets", targets is not None, ("single", "word"))
    _refuse(mode, "--show-cls", show_cls, tuple(m for m in MODES if m != "each"))
    corrupting = tuple(CORRUPTING)
    _refuse(mode, "--rate", rate is not None, corrupting)
    _refuse(mode, "--samples", samples is not None, corrupting)
    _refuse(mode, "--replace", replace is not None, corrupting)
    if mode == "word" and mask_word is None:
        raise InputError("--mode word needs --mask-word", hint='e.g. --mode word --mask-word "mat"')
    _refuse(mode, "--context", context is not None, ("single", "word"))
    if context is not None:
        for option, given in (("--decode joint", decode == "joint"), ("--show-cls", show_cls)):
            if given:
                raise InputError(
                    f"{option} does not apply with --context", hint="--context compares one mask's views on its own."
                )
    elif decode not in DECODES:
        raise InputError(f"unknown decoding {decode!r}", hint=f"Choose one of {', '.join(DECODES)}.")
    if beam is not None and decode != "joint":
        # The beam only searches joint completions: given without them it would change nothing, silently.
        raise InputError("--beam applies to --decode joint", hint="Add --decode joint, or leave --beam out.")


def _refuse(mode: str, option: str, given: bool, allowed: tuple[str, ...]) -> None:
    if given and mode not in allowed:
        modes = " / ".join(allowed)
        raise InputError(f"{option} does not apply to --mode {mode}", hint=f"{option} works with --mode {modes}.")


# ---------------------------------------------------------------------------------------------
# single and word modes


@dataclass
class _Slot:
    char_start: int
    char_end: int
    positions: list[int]


@dataclass
class _Prepared:
    """One text's input to the MLM: its encoding, the slots to predict and the ids with those slots masked."""

    text: str
    encoding: Encoding
    slots: list[_Slot]
    ids: list[int]
    masked_words: list[MaskedWord]
    positions: list[int]


def fill_masks(
    lm: LoadedModel,
    texts: Sequence[str],
    top_k: int = 5,
    *,
    mask_word: str | None = None,
    occurrence: int | None = None,
    decode: str = "independent",
    beam: int = 5,
    targets: Sequence[str] | None = None,
    show_cls: bool = False,
    progress: Progress | None = None,
) -> list[FillMaskResult]:
    """Top-k predictions for every mask of each text (or every piece of ``mask_word``), each mask on its own;
    the texts' forward passes are padded together (``masked_logits`` batches them).

    ``decode="joint"`` adds the best joint completions of all masks; ``targets`` scores
    candidate words (of any number of word pieces) in each slot; ``show_cls`` adds what the MLM
    head predicts from the ``[CLS]`` position of the same input.

    Each result is the one its text alone gives, up to float rounding: a batch runs other matrix
    shapes, which can change the last digits (1e-7 has been seen), never a ranking beyond ties.
    """
    if top_k < 1:
        raise MaskError("--top-k must be at least 1", hint="e.g. --top-k 10")
    if beam < 1:
        raise InputError("--beam must be at least 1", hint="e.g. --beam 5")
    require_mask_token(lm)
    prepared = [_prepare(lm, text, mask_word, occurrence) for text in texts]
    wanted = [p.positions + ([0] if show_cls else []) for p in prepared]
    logits = masked_logits(lm, [p.ids for p in prepared], wanted, progress=progress)
    return [
        _finish(lm, p, rows, top_k, mask_word=mask_word, decode=decode, beam=beam, targets=targets,
                show_cls=show_cls)
        for p, rows in zip(prepared, logits, strict=True)
    ]  # fmt: skip


def _prepare(lm: LoadedModel, text: str, mask_word: str | None, occurrence: int | None) -> _Prepared:
    tok = lm.tokenizer
    masked_words: list[MaskedWord] = []
    if mask_word is None:
        encoding, positions = require_masks(lm, text)
        slots = [_Slot(encoding.offsets[p][0], encoding.offsets[p][1], [p]) for p in positions]
        ids = list(encoding.ids)
    else:
        from bertprobe.tokens import find_word

        encoding = encode_checked(lm, normalise_masks(text, tok.mask_token))
        found = find_word(encoding, mask_word, occurrence)
        if not found:
            raise InputError(
                f"{mask_word.strip()!r} does not occur in the text as a whole word",
                hint="--mask-word takes a word of TEXT as written there (case does not matter).",
            )
        masked_words = [MaskedWord(w.text, w.start, w.end, list(w.pieces)) for w in found]
        written = mask_positions(encoding, tok.mask_token_id)
        slots = [_Slot(w.char_start, w.char_end, w.positions) for w in masked_words]
        slots += [_Slot(encoding.offsets[p][0], encoding.offsets[p][1], [p]) for p in written]
        slots.sort(key=lambda s: s.positions[0])
        ids = list(encoding.ids)
        for word in masked_words:
            for p in word.positions:
                ids[p] = tok.mask_token_id
    positions = [p for slot in slots for p in slot.positions]
    return _Prepared(text, encoding, slots, ids, masked_words, positions)


def _finish(
    lm: LoadedModel,
    prepared: _Prepared,
    logits: Any,
    top_k: int,
    *,
    mask_word: str | None,
    decode: str,
    beam: int,
    targets: Sequence[str] | None,
    show_cls: bool,
) -> FillMaskResult:
    """The result of one prepared text from its MLM logits (one row per position, then ``[CLS]``'s if asked)."""
    tok = lm.tokenizer
    encoding, ids, positions = prepared.encoding, prepared.ids, prepared.positions
    masks = []
    for row, pos in enumerate(positions):
        original = None
        if ids[pos] != encoding.ids[pos]:
            rank, score = _rank_and_score(logits[row], encoding.ids[pos])
            original = OriginalToken(tok.id_to_token(encoding.ids[pos]), encoding.ids[pos], rank, score)
        masks.append(
            MaskPrediction(
                position=pos,
                char_start=encoding.offsets[pos][0],
                char_end=encoding.offsets[pos][1],
                predictions=top_predictions(lm, logits[row], top_k),
                original=original,
            )
        )
    filled = splice(
        encoding.text,
        [(m.char_start, m.char_end) for m in masks],
        [m.predictions[0].token_str for m in masks],
        [starts_word(lm, m.predictions[0].token_id) for m in masks],
    )
    result = FillMaskResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        text=prepared.text,
        top_k=top_k,
        tokens=encoding.tokens,
        masks=masks,
        text_normalised=encoding.text,
        filled=filled,
        notices=list(lm.notices),
        mode="word" if mask_word is not None else "single",
        decode=decode,
        masked_words=prepared.masked_words,
        cls_predictions=top_predictions(lm, logits[len(positions)], top_k) if show_cls else None,
        cls_origin=_cls_origin(lm) if show_cls else None,
    )
    if decode == "joint":
        independent = [m.predictions[0].token_id for m in masks]
        result.joint = joint_decode(lm, encoding, ids, positions, independent, beam)
    if targets is not None:
        result.targets = score_targets(lm, encoding, ids, prepared.slots, _parse_targets(targets))
        result.target_score_definition = TARGET_SCORE_DEFINITION
    return result


def _parse_targets(targets: Sequence[str]) -> list[str]:
    words = [w.strip() for item in targets for w in item.split(",")]
    if not words or not all(words):
        raise InputError(
            "--targets holds an empty word", hint='Give words separated by commas, e.g. --targets "mat,carpet,rug"'
        )
    return list(dict.fromkeys(words))


def _target_pieces(lm: LoadedModel, encoding: Encoding, slot: _Slot, word: str) -> list[int]:
    """The word pieces ``word`` becomes when written in the slot (so BPE vocabularies get their spacing).

    They are the pieces of the written text between the text's own pieces before and after the slot:
    that takes in a piece that is only the word's space mark (``▁`` or ``Ġ`` standing alone, whose offsets
    cover the space, not the word) where the mask token had absorbed that space (``<mask>``).
    """
    if word.startswith("##") and len(word) > 2 and lm.tokenizer.token_to_id("##s") is not None:
        # Written into the text, "##s" is the characters "#", "#", "s": a score for those, not for the piece.
        raise InputError(
            f"--targets takes words as they would be written in the text; {word!r} would be scored as the "
            f"characters '#', '#', {word[2:]!r}, not as the word piece {word!r}",
            hint="Write the whole word the piece would end (e.g. --targets cats, not ##s): its pieces are "
            "scored together.",
        )
    span = encoding.text[slot.char_start : slot.char_end]
    begin = slot.char_start + len(span) - len(span.lstrip())  # a mask that absorbed its space keeps it for the word
    text = encoding.text[:begin] + word + encoding.text[slot.char_end :]
    written = lm.tokenizer.encode(text)
    end = begin + len(word)
    overlapping = [
        (token_id, start, stop)
        for token_id, (start, stop), special in zip(written.ids, written.offsets, written.special, strict=True)
        if not special and start < end and stop > begin
    ]
    if not overlapping:
        raise InputError(f"the target {word!r} has no word pieces", hint="Give targets made of letters or digits.")
    start, stop = overlapping[0][1], overlapping[-1][2]
    if text[start:begin].strip() or text[end:stop].strip():  # a piece's own leading space is fine
        # Glued to its neighbours ("the[MASK]" + "mat" reads "them ##at"), the word has no pieces of its own.
        raise InputError(
            f"the target {word!r} merges with the text next to the mask: written there it reads "
            f"{text[min(start, begin) : max(stop, end)]!r}, so its own word pieces cannot be scored",
            hint="Put a space (or punctuation) between the mask and the words around it.",
        )
    before, after = list(encoding.ids[: slot.positions[0]]), list(encoding.ids[slot.positions[-1] + 1 :])
    inside = written.ids[len(before) : len(written.ids) - len(after)]
    if list(written.ids[: len(before)]) != before or list(written.ids[len(written.ids) - len(after) :]) != after:
        raise InputError(
            f"the target {word!r} changes the word pieces around the mask when written there "
            f"({text[max(start - 10, 0) : stop + 10]!r}), so its own word pieces cannot be scored",
            hint="Put a space (or punctuation) between the mask and the words around it.",
        )
    return list(inside)


def score_targets(
    lm: LoadedModel, encoding: Encoding, ids: list[int], slots: list[_Slot], targets: list[str]
) -> list[SlotTargets]:
    """Score each target word in each slot with all its pieces masked, left to right within the word.

    A target of n pieces costs n masked variants (piece j predicted with pieces < j filled in);
    every variant of every slot and target goes through the model together.
    """
    tok = lm.tokenizer
    limit = tok.model_max_length
    unknown = tok.token_to_id(tok.unk_token)
    sequences: list[list[int]] = []
    wanted: list[list[int]] = []
    plan: list[tuple[int, str, list[int], int]] = []  # slot index, word, pieces, first variant
    for s, slot in enumerate(slots):
        first, last = slot.positions[0], slot.positions[-1]
        planned: dict[tuple[int, ...], int] = {}  # "Paris" and "paris" on an uncased model: one score, not two
        for word in targets:
            pieces = _target_pieces(lm, encoding, slot, word)
            if unknown is not None and unknown in pieces:
                # P(unknown) is the score of every word the vocabulary lacks ("🙂" and "😢" alike), not of this one.
                raise InputError(
                    f"{word!r} is not in the vocabulary of {lm.name}: written there it reads "
                    f"{' '.join(tok.id_to_token(i) for i in pieces)}, so its own probability cannot be scored",
                    hint="Pick words the model knows, e.g. among the top predictions of `bertprobe fillmask`.",
                )
            if tuple(pieces) in planned:
                plan.append((s, word, pieces, planned[tuple(pieces)]))
                continue
            planned[tuple(pieces)] = len(sequences)
            base = ids[:first] + [tok.mask_token_id] * len(pieces) + ids[last + 1 :]
            if len(base) > limit:
                raise TextTooLongError(
                    f"with the target {word!r} the text is {len(base)} word pieces long; "
                    f"{lm.name} reads at most {limit}"
                )
            plan.append((s, word, pieces, len(sequences)))
            for j in range(len(pieces)):
                variant = list(base)
                variant[first : first + j] = pieces[:j]
                sequences.append(variant)
                wanted.append([first + j])
    logits = masked_logits(lm, sequences, wanted)
    by_slot: list[list[TargetScore]] = [[] for _ in slots]
    for s, word, pieces, offset in plan:
        scored, log_prob = [], 0.0
        for j, piece in enumerate(pieces):
            piece_log_prob = float(logits[offset + j][0].log_softmax(dim=-1)[piece])
            scored.append(PieceScore(tok.id_to_token(piece), piece, math.exp(piece_log_prob)))
            log_prob += piece_log_prob
        by_slot[s].append(TargetScore(word, 0, math.exp(log_prob), log_prob, scored))
    out = []
    for s, slot in enumerate(slots):
        ranked = sorted(by_slot[s], key=lambda t: -t.log_prob)
        for target in ranked:  # equal scores share a rank, as everywhere else: 1 + the targets scored higher
            target.rank = 1 + sum(other.log_prob > target.log_prob for other in ranked)
        out.append(SlotTargets(s + 1, slot.char_start, slot.char_end, list(slot.positions), ranked))
    return out


def joint_decode(
    lm: LoadedModel,
    encoding: Encoding,
    ids: list[int],
    positions: list[int],
    independent: list[int],
    beam: int = 5,
    refine_rounds: int = 3,
) -> JointDecoding:
    """Fill all masks together; completions are ranked by JOINT_SCORE_DEFINITION.

    Candidates come from a beam search that fills the most confident mask first (every step
    expands each beam state by the top ``beam`` tokens of each open mask), plus the independent
    top-1 combination, plus up to ``refine_rounds`` rounds of coordinate moves (one position set
    to its argmax given all the others). All are scored the same way, so the best joint
    completion never scores below the independent one.
    """
    import torch

    if len(positions) > MAX_JOINT_MASKS:
        raise InputError(
            f"--decode joint fills at most {MAX_JOINT_MASKS} masks together; this text has {len(positions)}",
            hint="Mask fewer word pieces, or use --decode independent.",
        )
    tok = lm.tokenizer
    blocked = torch.tensor(sorted(tok.special_ids), dtype=torch.long)

    def fill_with(assignment: dict[int, int]) -> list[int]:
        seq = list(ids)
        for p, t in assignment.items():
            seq[p] = t
        return seq

    states: list[tuple[dict[int, int], float]] = [({}, 0.0)]
    for _ in positions:
        open_positions = [[p for p in positions if p not in state] for state, _ in states]
        logits = masked_logits(lm, [fill_with(state) for state, _ in states], open_positions)
        expanded: dict[tuple[tuple[int, int], ...], tuple[dict[int, int], float]] = {}
        for (state, score), rows, open_here in zip(states, logits, open_positions, strict=True):
            log_probs = rows.log_softmax(dim=-1)
            log_probs[:, blocked] = -math.inf
            values, indices = log_probs.topk(min(beam, log_probs.shape[-1]), dim=-1)
            for r, p in enumerate(open_here):
                for value, token_id in zip(values[r].tolist(), indices[r].tolist(), strict=True):
                    new = {**state, p: token_id}
                    key = tuple(sorted(new.items()))
                    if key not in expanded or expanded[key][1] < score + value:
                        expanded[key] = (new, score + value)
        states = sorted(expanded.values(), key=lambda item: -item[1])[:beam]

    def key_of(tokens: Sequence[int]) -> tuple[int, ...]:
        return tuple(tokens)

    scored: dict[tuple[int, ...], list[float]] = {}
    pending = [key_of(independent)] + [key_of([state[p] for p in positions]) for state, _ in states]
    for round_number in range(refine_rounds + 1):
        fresh = [c for c in dict.fromkeys(pending) if c not in scored]
        if not fresh:
            break
        argmax = _score_fills(lm, ids, positions, fresh, scored, blocked)
        if round_number == refine_rounds:
            break
        best = sorted(scored, key=lambda c: -sum(scored[c]))[:beam]
        pending = []
        for candidate in best:
            for i, token_id in enumerate(argmax.get(candidate, ())):
                if token_id != candidate[i]:
                    pending.append((*candidate[:i], token_id, *candidate[i + 1 :]))

    def as_fill(candidate: tuple[int, ...]) -> JointFill:
        strs = [tok.decode([t]) for t in candidate]
        spans = [encoding.offsets[p] for p in positions]
        return JointFill(
            positions=list(positions),
            tokens=[tok.id_to_token(t) for t in candidate],
            token_ids=list(candidate),
            log_probs=list(scored[candidate]),
            joint_score=sum(scored[candidate]),
            filled=splice(encoding.text, spans, strs, [starts_word(lm, t) for t in candidate]),
            words=strs,
        )

    ranked = sorted(scored, key=lambda c: -sum(scored[c]))[:beam]
    return JointDecoding(beam, JOINT_SCORE_DEFINITION, [as_fill(c) for c in ranked], as_fill(key_of(independent)))


def _score_fills(
    lm: LoadedModel,
    ids: list[int],
    positions: list[int],
    candidates: list[tuple[int, ...]],
    scored: dict[tuple[int, ...], list[float]],
    blocked: Any,
) -> dict[tuple[int, ...], list[int]]:
    """Score candidates (one variant per masked position) into ``scored``; return each position's argmax."""
    mask_id = dict(zip(positions, [ids[p] for p in positions], strict=True))
    sequences, wanted = [], []
    for candidate in candidates:
        filled = list(ids)
        for p, t in zip(positions, candidate, strict=True):
            filled[p] = t
        for p in positions:
            variant = list(filled)
            variant[p] = mask_id[p]
            sequences.append(variant)
            wanted.append([p])
    logits = masked_logits(lm, sequences, wanted)
    argmax: dict[tuple[int, ...], list[int]] = {}
    for c, candidate in enumerate(candidates):
        log_probs, best = [], []
        for i, token_id in enumerate(candidate):
            row = logits[c * len(positions) + i][0].log_softmax(dim=-1)
            log_probs.append(float(row[token_id]))
            row[blocked] = -math.inf
            best.append(int(row.argmax()))
        scored[candidate] = log_probs
        argmax[candidate] = best
    return argmax


# ---------------------------------------------------------------------------------------------
# corrupting modes: bert, random, whole-word, span


def _require_unmasked(lm: LoadedModel, text: str, mode: str) -> Encoding:
    require_mask_token(lm)
    encoding = encode_checked(lm, normalise_masks(text, lm.tokenizer.mask_token))
    if lm.tokenizer.mask_token_id in encoding.ids:
        raise MaskError(
            f"--mode {mode} masks the text itself; write it without [MASK]",
            hint=f'e.g. bertprobe fillmask "The cat sat on the mat." --mode {mode}',
        )
    if not masking.eligible_positions(encoding.ids, lm.tokenizer.special_ids):
        raise InputError("the text has no tokens to mask (only special or unknown ones)", hint="Give a sentence.")
    return encoding


def corrupt(
    lm: LoadedModel,
    text: str,
    mode: str = "bert",
    top_k: int = 5,
    *,
    rate: float = 0.15,
    samples: int = 1,
    replace: str | None = None,
    seed: int = 0,
    show_cls: bool = False,
    progress: Progress | None = None,
) -> CorruptionResult:
    """Apply a pretraining-style masking plan (``samples`` draws of it) and predict every selected position."""
    if mode not in CORRUPTING:
        raise InputError(f"{mode!r} is not a corrupting mode", hint=f"Choose one of {', '.join(CORRUPTING)}.")
    if not 0.0 < rate <= 1.0:
        raise InputError(f"--rate must be above 0 and at most 1, not {rate}", hint="BERT used --rate 0.15.")
    if not 1 <= samples <= MAX_SAMPLES:
        raise InputError(f"--samples must be between 1 and {MAX_SAMPLES}", hint="e.g. --samples 20")
    replace = replace or DEFAULT_REPLACE[mode]
    if replace not in REPLACE_PROBS:
        raise InputError(f"unknown --replace {replace!r}", hint="Choose bert (80/10/10) or mask.")
    mask_prob, random_prob = REPLACE_PROBS[replace]
    tok = lm.tokenizer
    encoding = _require_unmasked(lm, text, mode)
    scheme = CORRUPTING[mode]
    units = None
    if scheme != "token":
        from bertprobe.tokens import words

        units = [w.pieces for w in words(encoding)]
    replacements = tok.replacement_ids
    plans, seeds = [], []
    for sample in range(samples):
        sample_seed = f"{seed}.{sample}"
        plans.append(
            masking.mask_plan(
                encoding.ids,
                tok.special_ids,
                tok.mask_token_id,
                seed=sample_seed,
                rate=rate,
                scheme=scheme,
                units=units,
                mask_prob=mask_prob,
                random_prob=random_prob,
                replacements=replacements,
            )
        )
        seeds.append(sample_seed)
    wanted = [plan.positions + ([0] if show_cls else []) for plan in plans]
    logits = masked_logits(lm, [plan.input_ids for plan in plans], wanted, progress)
    masks: list[CorruptedPosition] = []
    sample_views: list[CorruptionSample] = []
    for number, (plan, rows, sample_seed) in enumerate(zip(plans, logits, seeds, strict=True), start=1):
        group_of = {p: g for g, group in enumerate(plan.groups, start=1) for p in group}
        for row, (pos, action) in enumerate(zip(plan.positions, plan.actions, strict=True)):
            original = plan.original_ids[pos]
            rank, score = _rank_and_score(rows[row], original)
            masks.append(
                CorruptedPosition(
                    sample=number,
                    position=pos,
                    char_start=encoding.offsets[pos][0],
                    char_end=encoding.offsets[pos][1],
                    group=group_of[pos],
                    original=tok.id_to_token(original),
                    original_id=original,
                    action=action,
                    seen=tok.id_to_token(plan.input_ids[pos]),
                    seen_id=plan.input_ids[pos],
                    predictions=top_predictions(lm, rows[row], top_k),
                    original_rank=rank,
                    original_score=score,
                )
            )
        sample_views.append(
            CorruptionSample(
                sample=number,
                seed=sample_seed,
                input_ids=list(plan.input_ids),
                seen_tokens=[tok.id_to_token(i) for i in plan.input_ids],
                groups=[list(g) for g in plan.groups],
                cls_predictions=top_predictions(lm, rows[len(plan.positions)], top_k) if show_cls else None,
            )
        )
    actions = [a for a in masking.ACTIONS if a == masking.MASK or (replace == "bert")]
    summary = [_recovery(action, [m for m in masks if m.action == action]) for action in actions]
    summary.append(_recovery("all", masks))
    examples = [i for action in actions for i in action_examples(masks, action)]
    return CorruptionResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        text=text,
        mode=mode,
        scheme=scheme,
        replace=replace,
        rate=rate,
        mask_prob=mask_prob,
        random_prob=random_prob,
        top_k=top_k,
        tokens=encoding.tokens,
        masks=masks,
        samples=sample_views,
        summary=summary,
        replacement_vocabulary=len(replacements),
        replacement_rule=masking.REPLACEMENT_RULE,
        notices=list(lm.notices),
        cls_origin=_cls_origin(lm) if show_cls else None,
        examples=examples,
    )


EXAMPLES_PER_ACTION = 3


def action_examples(masks: Sequence[CorruptedPosition], action: str, count: int = EXAMPLES_PER_ACTION) -> list[int]:
    """Indices of up to ``count`` positions with ``action``, from as many different samples as possible."""
    chosen: list[int] = []
    used_samples: set[int] = set()
    candidates = [i for i, m in enumerate(masks) if m.action == action]
    for index in candidates:  # first pass: one per sample, earliest samples first
        if len(chosen) < count and masks[index].sample not in used_samples:
            chosen.append(index)
            used_samples.add(masks[index].sample)
    for index in candidates:
        if len(chosen) < count and index not in chosen:
            chosen.append(index)
    return sorted(chosen)


def _cls_origin(lm: LoadedModel) -> ClsOrigin:
    from bertprobe import cls_origin

    return cls_origin.of(lm)


def _recovery(action: str, selected: list[CorruptedPosition]) -> RecoveryRow:
    if not selected:
        return RecoveryRow(action, 0, None, None, None)
    n = len(selected)
    return RecoveryRow(
        action=action,
        count=n,
        top1=sum(m.original_rank == 1 for m in selected) / n,
        top5=sum(m.original_rank <= 5 for m in selected) / n,
        mean_original_score=sum(m.original_score for m in selected) / n,
    )


# ---------------------------------------------------------------------------------------------
# each: pseudo-log-likelihood


def pseudo_log_likelihood(
    lm: LoadedModel, text: str, top_k: int = 5, progress: Progress | None = None
) -> PseudoLikelihoodResult:
    """Mask every non-special token in turn and score the true token there (see PLL_DEFINITION)."""
    from bertprobe.tokens import words

    tok = lm.tokenizer
    encoding = _require_unmasked(lm, text, "each")
    plans = masking.mask_each(encoding.ids, tok.special_ids, tok.mask_token_id)
    notices = list(lm.notices)
    unknown = sum(1 for i in encoding.ids if i == tok.token_to_id(tok.unk_token))
    if unknown:
        notices.append(f"{unknown} {tok.unk_token} token(s) are special and left out of the PLL")
    logits = masked_logits(lm, [p.input_ids for p in plans], [p.positions for p in plans], progress)
    scores: list[TokenLikelihood] = []
    for plan, rows in zip(plans, logits, strict=True):
        pos = plan.positions[0]
        token_id = encoding.ids[pos]
        log_probs = rows[0].log_softmax(dim=-1)
        log_prob = float(log_probs[token_id])
        scores.append(
            TokenLikelihood(
                position=pos,
                char_start=encoding.offsets[pos][0],
                char_end=encoding.offsets[pos][1],
                token=tok.id_to_token(token_id),
                token_id=token_id,
                log_prob=log_prob,
                rank=int((log_probs > log_probs[token_id]).sum()) + 1,
                surprising=False,
                predictions=top_predictions(lm, rows[0], top_k),
            )
        )
    flagged = min(3, max(1, len(scores) // 5))
    surprising = sorted(scores, key=lambda s: s.log_prob)[:flagged]
    for score in surprising:
        score.surprising = True
    by_position = {s.position: s.log_prob for s in scores}
    word_scores = [
        WordLikelihood(w.text, w.start, w.end, list(w.pieces), sum(by_position[p] for p in w.pieces))
        for w in words(encoding)
        if all(p in by_position for p in w.pieces)
    ]
    pll = sum(s.log_prob for s in scores)
    return PseudoLikelihoodResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        text=text,
        mode="each",
        top_k=top_k,
        tokens=encoding.tokens,
        masks=scores,
        words=word_scores,
        pll=pll,
        pseudo_perplexity=math.exp(-pll / len(scores)),
        scored_tokens=len(scores),
        surprising=[s.position for s in surprising],
        notices=notices,
    )


# ---------------------------------------------------------------------------------------------
# context views: what the model predicts from the left of the mask only, the right only, or both

CONTEXTS = ("left", "right", "both")
CONTEXT_DEFINITION = (
    "left: the words after the mask are removed, not masked: the model reads [CLS] and the text up to the "
    "mask, exactly the words a left-to-right model has when it predicts this word (masking them instead "
    "would still tell it how many words follow). The closing [SEP] is left out too: it would tell the model "
    "that the text ends right after the mask, and it would predict a full stop. right: the words before the "
    "mask are removed; [CLS] still opens the input. both: the whole text, as BERT reads it."
)


@dataclass
class ContextView:
    """What the model reads and predicts with one side of the mask removed (or neither)."""

    context: str  # left, right or both
    text: str  # the text the model read, with the mask token in the slot
    tokens: list[str]  # its word pieces, [CLS] and [SEP] included
    position: int  # the mask's word-piece index in this view
    predictions: list[Prediction]
    targets: list[TargetScore]  # the tracked words, in the order of ContextResult.tracked


@dataclass
class ContextResult(Rendered):
    model: str
    revision: str | None
    source: str
    text: str
    mode: str  # single (a written mask) or word (--mask-word)
    top_k: int
    masked: str | None  # the word --mask-word hid (word mode)
    char_start: int
    char_end: int
    tracked: list[str]  # words whose probability is followed across the views
    tracked_from: str  # "original", "targets" or "top-N with both sides" (the first prediction read as itself)
    views: list[ContextView]
    definition: str = CONTEXT_DEFINITION
    target_score_definition: str = TARGET_SCORE_DEFINITION
    notices: list[str] = field(default_factory=list)


def parse_contexts(value: str | Sequence[str]) -> list[str]:
    """``left,right,both`` (any subset, any order) or ``all``; duplicates dropped, order kept."""
    items = [value] if isinstance(value, str) else list(value)
    words = [w.strip().lower() for item in items for w in item.split(",") if w.strip()]
    if words == ["all"]:
        return list(CONTEXTS)
    unknown = [w for w in words if w not in CONTEXTS]
    if not words or unknown:
        raise InputError(
            f"unknown --context {', '.join(unknown) or '(empty)'}",
            hint="Give left, right, both, a comma list of them (e.g. left,both), or all.",
        )
    return list(dict.fromkeys(words))


def _reads_as(lm: LoadedModel, encoding: Encoding, slot: _Slot, word: str, token_id: int) -> bool:
    """Whether ``word`` written in the slot is read as the one piece ``token_id``."""
    try:
        return _target_pieces(lm, encoding, slot, word) == [token_id]
    except InputError:
        return False


def context_fill(
    lm: LoadedModel,
    text: str,
    contexts: Sequence[str] = CONTEXTS,
    top_k: int = 5,
    *,
    mask_word: str | None = None,
    occurrence: int | None = None,
    targets: Sequence[str] | None = None,
) -> ContextResult:
    """Predict one masked slot from its left context only, its right context only, and both.

    The slot is the one ``[MASK]`` of ``text``, or ``mask_word`` (whose original word is then
    followed across the views). See CONTEXT_DEFINITION for how a one-sided view is made.
    """
    if top_k < 1:
        raise MaskError("--top-k must be at least 1", hint="e.g. --top-k 10")
    contexts = parse_contexts(contexts)
    require_mask_token(lm)
    tok = lm.tokenizer
    if mask_word is None:
        encoding, positions = require_masks(lm, text)
        if len(positions) != 1:
            raise MaskError(
                f"--context compares the sides of one mask; the text has {len(positions)}",
                hint='Keep one [MASK], e.g. bertprobe fillmask "The [MASK] barked at the mailman." --context all',
            )
        start, end = encoding.offsets[positions[0]]
        # A mask token that absorbs the space before it (XLM-R's "<mask>") spans it: the views keep that space.
        start = end - len(encoding.text[start:end].lstrip())
        masked = None
    else:
        from bertprobe.tokens import find_word

        encoding = encode_checked(lm, normalise_masks(text, tok.mask_token))
        if tok.mask_token_id in encoding.ids:
            raise MaskError(
                "--context with --mask-word hides the word itself; write the text without [MASK]",
                hint='e.g. bertprobe fillmask "The dog barked at the mailman." --mask-word dog --context all',
            )
        found = find_word(encoding, mask_word, occurrence)
        if not found:
            raise InputError(
                f"{mask_word.strip()!r} does not occur in the text as a whole word",
                hint="--mask-word takes a word of TEXT as written there (case does not matter).",
            )
        if len(found) > 1:
            raise InputError(
                f"{mask_word.strip()!r} occurs {len(found)} times; --context compares the sides of one word",
                hint="Pick one with --occurrence N.",
            )
        start, end, masked = found[0].start, found[0].end, found[0].text
    whole = encoding.text
    before, after = whole[:start], whole[end:]
    view_texts = {
        "left": before + tok.mask_token,
        "right": tok.mask_token + after,
        "both": before + tok.mask_token + after,
    }
    encodings, slots, ids = {}, {}, {}
    for context in contexts:
        view = encode_checked(lm, view_texts[context])
        (position,) = mask_positions(view, tok.mask_token_id)
        encodings[context] = view
        slots[context] = _Slot(view.offsets[position][0], view.offsets[position][1], [position])
        # A left-to-right model does not know where the text ends: no closing [SEP] after the mask.
        closing = context == "left" and view.special[-1] and len(view) - 1 > position
        ids[context] = list(view.ids[:-1] if closing else view.ids)
    logits = masked_logits(lm, [ids[c] for c in contexts], [slots[c].positions for c in contexts])
    predictions = {c: top_predictions(lm, rows[0], top_k) for c, rows in zip(contexts, logits, strict=True)}
    if masked is not None:
        tracked, tracked_from = [masked, *(_parse_targets(targets) if targets else [])], "original"
    elif targets:
        tracked, tracked_from = _parse_targets(targets), "targets"
    else:
        reference = "both" if "both" in predictions else contexts[-1]
        side = reference if reference != "both" else "both sides"
        spelled = [p.token_str.strip().removeprefix("##") for p in predictions[reference]]
        # Follow the first prediction that, written in the slot, is read as that very piece: a lone "Ġ", or
        # "##dly" after a space (written, "dl ##y"), would be scored as other pieces under the top-1's name.
        rank = next(
            (
                r
                for r, (word, p) in enumerate(zip(spelled, predictions[reference], strict=True), start=1)
                if word and _reads_as(lm, encodings[reference], slots[reference], word, p.token_id)
            ),
            None,
        )
        if rank is not None:
            tracked, tracked_from = [spelled[rank - 1]], f"top-{rank} with {side}"
        else:
            top = next((word for word in spelled if word), predictions[reference][0].token)
            tracked, tracked_from = [top], f"word the top-1 with {side} spells"
    tracked = list(dict.fromkeys(tracked))
    views = []
    for context in contexts:
        view = encodings[context]
        scored = score_targets(lm, view, ids[context], [slots[context]], tracked)[0].targets
        by_word = {t.word: t for t in scored}
        views.append(
            ContextView(
                context=context,
                text=view.text,
                tokens=view.tokens[: len(ids[context])],
                position=slots[context].positions[0],
                predictions=predictions[context],
                targets=[by_word[w] for w in tracked],
            )
        )
    return ContextResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        text=text,
        mode="single" if mask_word is None else "word",
        top_k=top_k,
        masked=masked,
        char_start=start,
        char_end=end,
        tracked=tracked,
        tracked_from=tracked_from,
        views=views,
        notices=list(lm.notices),
    )
