"""The Python API: one function per command, returning the result object the command renders.

``bertprobe.fill("The cat sat on the [MASK].", model="tiny-mlm")`` runs what
``bertprobe fillmask "The cat sat on the [MASK]." --model tiny-mlm`` runs, through the same core
functions, and returns its result: ``.to_dict()`` is the document ``--json`` prints, ``.show()`` prints
the tables, and a notebook shows them as HTML. Arguments have the CLI options' names and defaults;
``model`` is a spec (``"auto"``, a bundled name, a directory, a hub id) or a model from
``bertprobe.load``. User errors raise the exceptions of ``bertprobe.errors`` (each with a ``.hint``).

The argument preparation the CLI shares with these functions lives here too (``fill_mode``,
``training_split``, ``nsp_pairs``, ``cloze_items``, ...), so the two cannot drift apart. Nothing heavy is
imported at the top: ``import bertprobe`` and ``bertprobe --help`` stay free of torch.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib
import inspect
import logging
import math
import numbers
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from bertprobe.errors import InputError

SEED_MAX = 2**32 - 1
MAX_LAYER = 10_000  # as the CLI's --layer parser: no BERT has more
MAX_BATCH_TOKENS = 1 << 24  # as score's --batch-size
MAX_PRETRAIN_STEPS = 100_000_000  # as pretrain's --steps and --save-steps
MAX_MINUTES = 60 * 24 * 30  # as pretrain's --minutes and --save-minutes
# attribute's defaults, as bertprobe.attribute has them (importing it here would load more than this module needs)
DEFAULT_STEPS = 50
DEFAULT_MAX_STEPS = 800
DEFAULT_RANDOM_ORDERS = 20


# ---------------------------------------------------------------------------------------------
# argument preparation shared with the CLI


def fill_mode(mode: str | None, mask_word: str | None) -> str:
    """fillmask's mode: the one given, else ``word`` when a word to mask is given, else ``single``."""
    return mode if mode is not None else ("word" if mask_word is not None else "single")


def fill_problem(lm: Any, mode: str, mask_word: str | None) -> Any:
    """What makes a text bad for fillmask's ``mode``: no [MASK] where one is needed, one where none may be, or
    no ``mask_word`` to mask (``inputs.mask_problem``)."""
    from bertprobe import inputs

    wanted = {"single": True, "word": None}.get(mode, False)
    return inputs.mask_problem(lm, wanted=wanted, word=mask_word)


def fill_targets(targets: str | Sequence[str] | None) -> list[str] | None:
    """``--targets`` as the core takes it: a list of comma-separated word lists."""
    if targets is None:
        return None
    return [targets] if isinstance(targets, str) else list(targets)


def probe_model(model: Any, revision: str | None, saved: Any) -> tuple[Any, str | None]:
    """A probe reads one model's features only: ``auto`` means that model (and its revision)."""
    if isinstance(model, str) and model == "auto":
        return saved.default_model_spec(), revision or saved.revision
    return _spec(model), revision


def check_attribute_question(probe: Any, target: str | None, label: str | None, mask: int | None = None) -> None:
    """``attribute`` explains either a probe's class or the word at a [MASK], not both."""
    if probe is not None and target is not None:
        raise InputError(
            "--probe and --target ask two different questions",
            hint="Use --probe DIR [--label L] for a probe's class, or --target WORD for the word at a [MASK].",
        )
    if probe is not None and mask is not None:
        # A probe reads the whole text: --mask would pick nothing, and be ignored without a word.
        raise InputError(
            "--mask picks the [MASK] whose prediction is explained; with --probe the probe's class is explained",
            hint="Drop --mask, or drop --probe to explain a fill-mask prediction.",
        )
    if label is not None and probe is None:
        raise InputError("--label names a probe class, but no --probe was given", hint="Add --probe DIR.")


def training_split(
    task: str | None,
    data_dir: Path | None,
    data: Path | None,
    eval_data: Path | None,
    text_column: str | None,
    label_column: str | None,
    test_size: float,
    max_train: int | None,
    seed: int,
    offline: bool,
) -> Any:
    """The train / evaluation split ``cls-train`` reads: a known task or the user's files, maybe subsampled."""
    from bertprobe import datasets

    if (task is None) == (data is None):
        raise InputError(
            "give either --task or --data" if task is None else "give --task or --data, not both",
            hint="e.g. --task sst2, or --data examples/sentiment.csv",
        )
    if data_dir is not None and task is None:
        raise InputError("--data-dir goes with --task", hint="e.g. --task sst2 --data-dir SST-2/")
    if eval_data is not None and data is None:
        raise InputError("--eval-data goes with --data", hint="e.g. --data train.csv --eval-data dev.csv")
    if task is not None:
        split = datasets.load_task(task, data_dir, offline)
    else:
        split = datasets.load_files(data, eval_data, text_column, label_column, test_size, seed)
    if max_train is not None and max_train < len(split.train):
        split.train = datasets.subsample(split.train, max_train, seed)
        split.source += f"; {max_train} training rows sampled (stratified, seed {seed})"
    return split


def nsp_pairs(
    first: str | None, second: str | None, pairs: Path | None, shuffle: Path | None, seed: int
) -> tuple[list[tuple[str, str]], Any, Any, str, str]:
    """The sentence pairs ``nsp`` scores: (pairs, truth, line numbers, source, mode)."""
    from bertprobe import nsp

    if pairs is not None:
        pair_list, truth, lines = nsp.read_pairs(pairs)
        return pair_list, truth, lines, str(pairs), "pairs"
    if shuffle is not None:
        pair_list, truth = nsp.shuffled_pairs(nsp.read_sentences(shuffle), seed)
        return pair_list, truth, None, str(shuffle), "shuffle"
    return [(first or "", second or "")], None, None, "arguments", "pairs"


def check_nsp_sources(first: Any, second: Any, *others: Any) -> None:
    """``nsp`` takes two sentences or one file option, exactly one of them."""
    given = sum(x is not None for x in others) + (first is not None)
    if given != 1 or (first is not None and second is None):
        raise InputError(
            "give two sentences, or --pairs FILE, or --shuffle FILE, or --input FILE (exactly one of them)",
            hint='e.g. bertprobe nsp "I was hungry." "So I made a sandwich."',
        )


def cloze_items(data: Path | None, cloze_set: str) -> tuple[list[dict], str]:
    """The cloze sentences (a built-in set or the user's jsonl) and the name results carry for them."""
    from bertprobe import cloze

    if cloze_set not in cloze.SETS:
        raise InputError(f"--set {cloze_set!r} is not one of {', '.join(cloze.SETS)}", hint="e.g. --set heldout")
    if data is not None and cloze_set != "builtin":
        raise InputError("give --data or --set, not both", hint="--data FILE scores your own sentences.")
    items = cloze.read_items(data) if data else cloze.builtin_items(cloze_set)
    return items, str(data) if data else cloze_set


def note_special_tokens(result: Any, lm: Any, inputs: Sequence[str | Sequence[str]]) -> Any:
    """Add to ``result.notices`` the special tokens written in the user's ``inputs`` (texts, or NSP's pairs).

    "[SEP]" typed in a sentence is read as the separator itself, as transformers reads it; that stays, but the
    user is told, once. [MASK] is what a command on the masked-LM head asks for, and is not mentioned there.
    """
    from bertprobe.tokens import special_notices

    notices = getattr(result, "notices", None)
    if isinstance(notices, list):
        expected = (lm.tokenizer.mask_token,) if lm.head in ("mlm", "pretraining") else ()
        told = [n for n in special_notices(lm.tokenizer, inputs, expected) if n not in notices]
        if told:  # a new list: results of one run may share theirs
            object.__setattr__(result, "notices", [*notices, *told])
    return result


# ---------------------------------------------------------------------------------------------
# what the CLI's option parsers check, for callers that skip them


def _count(name: str, value: Any, low: int, high: int | None = None, optional: bool = True) -> int | None:
    """A whole number in range, numpy's too (``True`` and ``2.0`` are none), returned as an int.

    A numpy integer as it came would reach ``random.seed`` (which refuses it) and the JSON a probe or a run is
    saved with (which cannot write it)."""
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value
    if not ok or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"{low} to {high}"
        raise InputError(f"{name}={value!r} is not a whole number {bound}", hint=f"Pass {name} as an int, {bound}.")
    return int(value)


def _seed(seed: Any) -> int:
    """``--seed``'s range: python, numpy and torch each take it (numpy modulo 2**32)."""
    return _count("seed", seed, 0, SEED_MAX, optional=False)


def _real(
    name: str,
    value: Any,
    low: float,
    high: float,
    optional: bool = True,
    high_included: bool = False,
    low_included: bool = False,
) -> None:
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (low < value < high or (high_included and value == high) or (low_included and value == low)):
        interval = f"{'[' if low_included else '('}{low:g}, {high:g}{']' if high_included else ')'}"
        raise InputError(f"{name}={value!r} is not a number in {interval}", hint=f"e.g. {name}=0.15")


def _layer(name: str, value: Any) -> int | None:
    """What ``options.parse_layer`` checks: a whole number (numpy's too; ``True`` is no layer), at most 10,000.

    Returned as an int: a numpy integer would reach the JSON a probe is saved with, and fail there."""
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or abs(value) > MAX_LAYER:
        raise InputError(
            f"{name}={value!r} is not a layer number",
            hint=f"Pass {name} as an int: 0 = embeddings, 1..L = layers, -1 = last.",
        )
    return int(value)


def _flag(name: str, value: Any, optional: bool = False) -> None:
    # A string such as "false" is truthy: taken as given, it would silently switch the option on.
    if not isinstance(value, bool) and not (optional and value is None):
        raise InputError(f"{name}={value!r} is not True or False", hint=f"e.g. {name}=True")


def _text(name: str, value: Any, optional: bool = True) -> None:
    """A text option is a str: a number or None would fail deep in the tokenizer."""
    if not isinstance(value, str) and not (optional and value is None):
        raise InputError(f"{name}={value!r} is not text", hint=f"Pass {name} as a str.")


def _listed(name: str, value: Any) -> list[str]:
    """One text or many as a list of str, refusing anything else before it fails deep in the tokenizer."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (bytes, bytearray)):
        raise InputError(f"{name}={value!r} is not text", hint=f"Decode it first: {name}=value.decode('utf-8').")
    if isinstance(value, Mapping) or hasattr(value, "columns"):
        # A dict or a DataFrame iterates over its keys: their names would be read as the texts, without a word.
        raise InputError(
            f"{name} is a {type(value).__name__}, whose keys or column names are no texts",
            hint=f"Pass {name} as a list of str, e.g. {name}=list(table['text']).",
        )
    if not isinstance(value, Iterable):
        raise InputError(f"{name}={value!r} is not text", hint=f"Pass {name} as a str or a list of str.")
    listed = list(value)
    for index, text in enumerate(listed, start=1):
        if not isinstance(text, str):
            raise InputError(f"{name}: item {index} ({text!r}) is not text", hint=f"Pass {name} as a list of str.")
    return listed


def _path(name: str, value: Any, optional: bool = True) -> Path | None:
    """A file argument as a Path; anything else (a number, a list) is refused here, not as a raw TypeError."""
    if value is None and optional:
        return None
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes) and os.fspath(value) != "":
        return Path(value)
    raise InputError(f"{name}={value!r} is not a file path", hint=f"Pass {name} as a str or a pathlib.Path.")


def _choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value is not None and value not in choices:
        raise InputError(f"{name}={value!r} is not one of {', '.join(choices)}", hint=f"e.g. {name}={choices[0]!r}")


# ---------------------------------------------------------------------------------------------
# the model every function runs on, and what results carry


def _model(model: Any, head: str, revision: str | None, device: str, dtype: str, offline: bool, seed: int) -> Any:
    """Seed, then load ``model`` for ``head`` (or reuse a model from ``bertprobe.load``) as the CLI does."""
    from bertprobe import models
    from bertprobe.models.spec import DTYPES
    from bertprobe.seeding import seed_everything

    _check_shared(revision, device, dtype, offline, seed)
    model = _spec(model)
    _check_model(model)
    seed_everything(seed)
    if isinstance(model, models.LoadedModel):
        _same_setup(model, revision, device, dtype)
        if model.head == head:
            return model
        # Same checkpoint, the head this command needs (the loader refuses one the checkpoint lacks), on the
        # loaded model's own device and dtype.
        own = str(model.dtype).removeprefix("torch.")
        lm = models.load(model.name, head, model.revision, model.device.type, own if own in DTYPES else dtype, offline)
        # Said: a notebook that edited the passed model's weights (an ablation) would otherwise read this
        # command's numbers as those of its edited model.
        from bertprobe import render

        render.notice(
            f"the model passed was loaded with the {model.head} head and this command needs the {head} head: it "
            f"runs on {model.name} loaded again with that head, without any change made to the one passed"
        )
    else:
        lm = models.load(model, head, revision, device, dtype, offline)
    if lm.notices:
        from bertprobe import render

        for notice in lm.notices:
            render.notice(notice)
    return lm


def _check_shared(revision: Any, device: Any, dtype: Any, offline: Any, seed: Any) -> None:
    """What the CLI's parsers check of the options every command shares."""
    from bertprobe.models.spec import DEVICES, DTYPES

    _seed(seed)
    _choice("device", device, DEVICES)
    _choice("dtype", dtype, DTYPES)
    _text("revision", revision)
    _flag("offline", offline)


def _same_setup(lm: Any, revision: str | None, device: str, dtype: str) -> None:
    """A model from ``bertprobe.load`` runs as it was loaded: a call asking for another revision, device or
    dtype is refused, not silently run on the loaded one."""
    import torch

    asked = []
    if revision is not None and revision != lm.revision:
        asked.append(f"revision={revision!r} (it is {lm.revision!r})")
    if device != "auto" and device != lm.device.type:
        asked.append(f"device={device!r} (it is on {lm.device.type})")
    if dtype != "auto" and getattr(torch, dtype) != lm.dtype:
        asked.append(f"dtype={dtype!r} (it is {str(lm.dtype).removeprefix('torch.')})")
    if asked:
        raise InputError(
            f"this call asks for {' and '.join(asked)}, but model= was already loaded as it is",
            hint="Leave them out to run it as loaded, or load it again: bertprobe.load(NAME, ..., device=..., "
            "dtype=...).",
        )


def _spec(model: Any) -> Any:
    """A model folder given as a ``pathlib.Path`` is the same spec as its str."""
    return os.fspath(model) if isinstance(model, os.PathLike) else model


def _check_model(model: Any) -> None:
    if isinstance(model, str):
        return
    from bertprobe import models

    if not isinstance(model, models.LoadedModel):
        raise InputError(
            f"model={model!r} is neither a model name nor a model from bertprobe.load",
            hint='e.g. model="tiny-mlm", or model=bertprobe.load("minilm")',
        )


def _done(result: Any, lm: Any, seed: int) -> Any:
    """Print the result's own notices on stderr as the CLI does, and keep the seed for ``to_dict``."""
    fresh = [n for n in getattr(result, "notices", []) or [] if n not in lm.notices]
    if fresh:
        from bertprobe import render

        for notice in fresh:
            render.notice(notice)
    object.__setattr__(result, "_bertprobe_seed", seed)
    return result


def _done_each(results: list[Any], lm: Any, seed: int) -> list[Any]:
    """``_done`` for one result per text: each notice said once, with how many texts it concerns (as the CLI's
    ``--input`` says it), not once per text."""
    told: Counter[str] = Counter()
    for result in results:
        told.update(n for n in dict.fromkeys(getattr(result, "notices", []) or []) if n not in lm.notices)
        object.__setattr__(result, "_bertprobe_seed", seed)
    if told:
        from bertprobe import render

        for notice, times in told.items():
            render.notice(f"{times} text(s): {notice}" if len(results) > 1 else notice)
    return results


# ---------------------------------------------------------------------------------------------
# what a call leaves behind in the caller's process: nothing

Command = TypeVar("Command", bound=Callable[..., Any])
# Libraries whose logging and progress bars the loaders turn down (for the rest of the process, as the CLI wants):
# put back after each call, the hub last (transformers' switch turns the hub's bars on and off with its own).
QUIETED = ("transformers", "datasets", "huggingface_hub")


def _command(function: Command) -> Command:
    """A command function as ``import bertprobe`` offers it: its arguments checked as the CLI's parser checks a
    command line (a misspelt option names the one meant), and the process left as the call found it."""
    signature = inspect.signature(function)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as err:
            raise _argument_error(function.__name__, signature, kwargs, err) from None
        with left_as_found():
            return function(*args, **kwargs)

    return cast(Command, call)


def _argument_error(name: str, signature: inspect.Signature, kwargs: dict[str, Any], err: TypeError) -> InputError:
    """``fill(topk=5)``: Python's TypeError, in the words and with the hint every other user error has."""
    options = [n for n, p in signature.parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    where = f"help(bertprobe.api.{name}) lists its options."
    unknown = [key for key in kwargs if key not in signature.parameters]
    if unknown:
        meant = [m for key in unknown for m in difflib.get_close_matches(key, options, n=1)]
        hint = f"Did you mean {', '.join(f'{m}=' for m in meant)}? {where}" if meant else where
        return InputError(f"{name}() takes no option {', '.join(unknown)}", hint=hint)
    positional = [n for n, p in signature.parameters.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    takes = f"{', '.join(positional)} by position, every option by name" if positional else "every option by name"
    return InputError(f"{name}() {err}", hint=f"It takes {takes}; {where}")


@contextlib.contextmanager
def left_as_found() -> Iterator[None]:
    """Run a call as the CLI runs it (seeded, the libraries quiet), then put back the caller's random generators and
    the libraries' logging and progress bars: a notebook's own code does not inherit a command's process settings."""
    with _random_state_kept(), _library_settings_kept():
        yield


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Each call seeds python, numpy and torch with its ``seed``; the caller's draws then go on where they were (a
    loop sampling with ``random`` between calls drew the same sample after each call). Generators the call first
    brought in (numpy, torch, CUDA) are reseeded from fresh entropy, as a process starts them."""
    python = random.getstate()
    numpy = sys.modules.get("numpy")
    legacy = numpy.random.get_state() if numpy is not None else None
    torch = sys.modules.get("torch")
    cpu = torch.random.get_rng_state() if torch is not None else None
    cuda = torch.cuda.get_rng_state_all() if torch is not None and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python)
        if legacy is not None:
            numpy.random.set_state(legacy)
        elif "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        if cpu is not None:
            torch.random.set_rng_state(cpu)
        elif "torch" in sys.modules:
            torch = sys.modules["torch"]
            torch.random.seed()
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        elif torch is not None and torch.cuda.is_available():
            torch.cuda.seed_all()  # a CUDA generator first used (or seeded for later) by the call: unseeded again


@contextlib.contextmanager
def _library_settings_kept() -> Iterator[None]:
    """transformers stays quiet for the call (it logs at run time too) and the caller's levels and progress bars come
    back after it; a library the call imported gets its defaults, as its import gives them."""
    found = {name: _library_settings(name) for name in QUIETED}
    if found["transformers"] is not None:
        importlib.import_module("transformers.utils.logging").set_verbosity_error()
    try:
        yield
    finally:
        for name, settings in found.items():
            _restore_library(name, settings)


def _library_switches(name: str) -> tuple[Any, Callable[[], bool], Callable[[bool], None]] | None:
    """A library's logging module and its progress-bar switch (read, set); None when it is not imported."""
    if name not in sys.modules:
        return None
    log = importlib.import_module(f"{name}.utils.logging")
    if name == "huggingface_hub":
        hub = importlib.import_module("huggingface_hub.utils")
        return (
            log,
            lambda: not hub.are_progress_bars_disabled(),
            lambda on: hub.enable_progress_bars() if on else hub.disable_progress_bars(),
        )
    return log, log.is_progress_bar_enabled, lambda on: log.enable_progress_bar() if on else log.disable_progress_bar()


def _library_settings(name: str) -> tuple[int, bool] | None:
    """A library's logging level and whether its progress bars show; None when it is not imported."""
    with contextlib.suppress(ImportError, AttributeError):  # a version without these switches is left as it is
        switches = _library_switches(name)
        if switches is not None:
            log, bars_on, _ = switches
            return log.get_verbosity(), bars_on()
    return None


def _restore_library(name: str, settings: tuple[int, bool] | None) -> None:
    with contextlib.suppress(ImportError, AttributeError):
        switches = _library_switches(name)
        if switches is None:
            return
        log, bars_on, set_bars = switches
        if settings is None:  # imported by the call: its import's defaults (environment variables may set them)
            hub = importlib.import_module("huggingface_hub.constants")
            default_level = getattr(log, "_get_default_logging_level", lambda: logging.WARNING)
            settings = default_level(), not hub.HF_HUB_DISABLE_PROGRESS_BARS
        level, bars = settings
        if log.get_verbosity() != level:
            log.set_verbosity(level)
        if bars_on() != bars:
            set_bars(bars)


# ---------------------------------------------------------------------------------------------
# one function per command


@_command
def fill(
    text: str | Sequence[str],
    *,
    mode: str | None = None,
    top_k: int = 5,
    mask_word: str | None = None,
    occurrence: int | None = None,
    decode: str = "independent",
    beam: int | None = None,
    targets: str | Sequence[str] | None = None,
    show_cls: bool = False,
    rate: float | None = None,
    samples: int | None = None,
    replace: str | None = None,
    context: str | None = None,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe fillmask``: the words behind each [MASK], or BERT's pretraining masking of a text.

    A list of texts gives a list of results, as ``fillmask --input`` computes them (single and word
    modes pad the texts into shared forward passes); each equals its own run up to float rounding.
    """
    from bertprobe import inputs
    from bertprobe.fillmask import DECODES, MODES, REPLACE_PROBS, fill_many, parse_contexts

    _choice("mode", mode, MODES)
    _choice("decode", decode, DECODES)
    _choice("replace", replace, tuple(REPLACE_PROBS))
    top_k = _count("top_k", top_k, 1, 100_000, optional=False)
    beam = _count("beam", beam, 1, 50)
    occurrence = _count("occurrence", occurrence, 1)
    samples = _count("samples", samples, 1, 1000)
    seed = _seed(seed)
    _real("rate", rate, 0, 1, high_included=True)
    _text("mask_word", mask_word)
    _text("context", context)
    _flag("show_cls", show_cls)
    if targets is not None:
        targets = _listed("targets", targets)
    if context is not None:
        parse_contexts(context)  # a misspelt view is refused before the model loads
    if not isinstance(text, str) and not text:
        raise InputError("no text given", hint='e.g. bertprobe.fill("The cat sat on the [MASK].")')
    listed = _listed("text", text)
    chosen = fill_mode(mode, mask_word)
    lm = _model(model, "mlm", revision, device, dtype, offline, seed)
    if not isinstance(text, str):  # name the text at fault, as --input names the line
        inputs.TextSource(listed).check(fill_problem(lm, chosen, mask_word), "stop", skippable=False)
    results = fill_many(
        lm,
        listed,
        chosen,
        top_k,
        mask_word=mask_word,
        occurrence=occurrence,
        decode=decode,
        beam=beam,
        targets=fill_targets(targets),
        show_cls=show_cls,
        rate=rate,
        samples=samples,
        replace=replace,
        seed=seed,
        context=context,
    )
    for one, result in zip(listed, results, strict=True):
        note_special_tokens(result, lm, [one])
    done = _done_each(results, lm, seed)
    return done[0] if isinstance(text, str) else done


@_command
def score(
    texts: str | Sequence[str] | None = None,
    *,
    pairs: str | Path | None = None,
    group_column: str | None = None,
    metric: str = "original",
    unk: str = "skip",
    batch_size: int = 4096,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe score``: a text's pseudo-log-likelihood (a list of texts: a list of results), or with
    ``pairs=FILE`` the minimal-pair accuracy."""
    from bertprobe import inputs
    from bertprobe.score import check_options, score_texts, text_problem

    batch_size = _count("batch_size", batch_size, 1, MAX_BATCH_TOKENS, optional=False)
    seed = _seed(seed)
    check_options(metric, unk, batch_size)
    _text("group_column", group_column)
    if pairs is not None:
        if texts is not None:
            raise InputError("pairs= reads its own sentences: leave out texts", hint="e.g. score(pairs='blimp.jsonl')")
        path = _path("pairs", pairs, optional=False)
        return _pairs(path, group_column, metric, unk, batch_size, model, revision, device, dtype, offline, seed)
    if group_column is not None:
        raise InputError("group_column applies to pairs=", hint="e.g. score(pairs='pairs.csv', group_column='UID')")
    if texts is None or (not isinstance(texts, str) and not texts):
        raise InputError("no text given", hint='e.g. bertprobe.score("The cat sat on the mat.")')
    one = isinstance(texts, str)
    listed = _listed("texts", texts)
    lm = _model(model, "mlm", revision, device, dtype, offline, seed)
    inputs.TextSource(listed).check(text_problem(lm, metric, unk), "stop", skippable=False)
    labels = [f"text {n}" for n in range(1, len(listed) + 1)]
    results = score_texts(lm, listed, metric, unk, batch_size, None, labels)
    for text, result in zip(listed, results, strict=True):
        note_special_tokens(result, lm, [text])
    results = _done_each(results, lm, seed)
    return results[0] if one else results


def _pairs(
    path: Path,
    group_column: str | None,
    metric: str,
    unk: str,
    batch_size: int,
    model: Any,
    revision: str | None,
    device: str,
    dtype: str,
    offline: bool,
    seed: int,
) -> Any:
    from bertprobe import inputs
    from bertprobe.score import MinimalPair, pair_problem, pairs_columns, pairs_result, score_pair_chunk

    with inputs.TextSource(path=path, columns=pairs_columns(group_column)) as source:
        lm = _model(model, "mlm", revision, device, dtype, offline, seed)
        checked = source.check(pair_problem(lm, metric, unk), "stop", skippable=False)
        pair_list: list[MinimalPair] = []
        scores: list[Any] = []
        for items in source.chunks(checked):
            for item, (good, bad) in zip(
                items, score_pair_chunk(lm, items, source.label, metric, unk, batch_size), strict=True
            ):
                pair_list.append(MinimalPair(item.text, item.pair or "", item.group, item.index, item.line))
                scores.extend((good, bad))
    found = source.found[2] if source.found else None
    result = pairs_result(lm, pair_list, scores, metric, unk, str(path), found, [])
    note_special_tokens(result, lm, [text for pair in pair_list for text in (pair.good, pair.bad)])
    return _done(result, lm, seed)


@_command
def sense(
    word: str | None = None,
    *,
    sentence: Sequence[str] | None = None,
    sentences: str | Path | None = None,
    pool: str = "mean",
    occurrence: int | None = None,
    layer: int | None = None,
    clusters: int | None = None,
    centred: bool = False,
    plot: str | Path | None = None,
    list_sets: bool = False,
    batch_size: int = 32,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe sense``: how one word's contextual vectors separate by sense, layer by layer
    (``list_sets=True``: the built-in sense sets)."""
    from bertprobe import sense as core

    _flag("list_sets", list_sets)
    # Checked with list_sets too: the CLI's parsers refuse `sense --list --pool max` before --list is read.
    _choice("pool", pool, core.POOLINGS)
    occurrence = _count("occurrence", occurrence, 1)
    clusters = _count("clusters", clusters, 2, 10_000)
    batch_size = _count("batch_size", batch_size, 1, optional=False)
    seed = _seed(seed)
    layer = _layer("layer", layer)
    _flag("centred", centred)
    _text("word", word)
    sentences = _path("sentences", sentences)
    plot = _path("plot", plot)
    if list_sets:
        _check_shared(revision, device, dtype, offline, seed)
        model = _spec(model)
        _check_model(model)
        spec = model.name if not isinstance(model, str) else model
        # A loaded model's own revision, as every other command reports it.
        result = core.catalog(spec, revision if isinstance(model, str) else model.revision)
        object.__setattr__(result, "_bertprobe_seed", seed)
        return result
    if plot is not None:
        from bertprobe import render

        render.check_plot_path(plot)
    sentence = _listed("sentence", sentence) if sentence is not None else []  # "" is refused, as -s "" is
    word, labelled, origin = core.collect(word, sentence or (), sentences)
    lm = _model(model, "encoder", revision, device, dtype, offline, seed)
    result = core.probe(
        lm,
        word,
        labelled,
        pool=pool,
        occurrence=occurrence,
        layer=layer,
        clusters=clusters,
        seed=seed,
        origin=origin,
        centred=centred,
        batch_size=batch_size,
    )
    note_special_tokens(result, lm, [s.text for s in labelled])
    if plot is not None:
        from bertprobe.render import sense as sense_render

        sense_render.plot(result, plot)
    return _done(result, lm, seed)


@_command
def cls_train(
    *,
    task: str | None = None,
    data_dir: str | Path | None = None,
    data: str | Path | None = None,
    eval_data: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    test_size: float = 0.2,
    layer: int | None = None,
    pool: str = "cls",
    C: float | None = 1.0,  # the CLI's --C, scikit-learn's name
    max_train: int | None = None,
    max_length: int | None = None,
    batch_size: int = 32,
    sweep: bool = False,
    control: bool | None = None,
    out: str | Path | None = None,
    no_cache: bool = False,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe cls-train``: a logistic-regression probe on frozen sentence vectors, and how good it is."""
    from bertprobe import cls_origin
    from bertprobe.features import POOLINGS
    from bertprobe.probe import cls_train as train

    _choice("pool", pool, tuple(POOLINGS))
    _real("test_size", test_size, 0, 1, optional=False)
    max_train = _count("max_train", max_train, 1)
    max_length = _count("max_length", max_length, 3)  # [CLS] and [SEP] take two
    batch_size = _count("batch_size", batch_size, 1, optional=False)
    seed = _seed(seed)
    layer = _layer("layer", layer)
    _flag("sweep", sweep)
    _flag("control", control, optional=True)
    _flag("no_cache", no_cache)
    out = _path("out", out)
    for name, value in (("task", task), ("text_column", text_column), ("label_column", label_column)):
        _text(name, value)
    if isinstance(C, str) and C.strip().lower() == "auto":  # the CLI's --C auto
        C = None
    if C is not None and not (isinstance(C, (int, float)) and not isinstance(C, bool) and math.isfinite(C) and C > 0):
        raise InputError(f"C={C!r} is not a positive number or 'auto' (cross-validated)", hint="e.g. C=0.1")
    split = training_split(
        task,
        _path("data_dir", data_dir),
        _path("data", data),
        _path("eval_data", eval_data),
        text_column,
        label_column,
        test_size,
        max_train,
        seed,
        offline,
    )
    lm = _model(model, "encoder", revision, device, dtype, offline, seed)
    result = train(
        lm,
        split,
        layer=layer,
        pooling=pool,
        C=C,
        max_length=max_length,
        batch_size=batch_size,
        sweep=sweep,
        control=sweep if control is None else control,
        seed=seed,
        use_cache=not no_cache,
        out=out,
        task=task,
    )
    result.cls_origin = cls_origin.of(lm)
    note_special_tokens(result, lm, [*split.train.texts, *split.eval.texts])
    return _done(result, lm, seed)


@_command
def cls_predict(
    probe_dir: str | Path,
    texts: str | Sequence[str],
    *,
    layer: int | None = None,
    pool: str | None = None,
    batch_size: int = 32,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe cls-predict``: label texts with a saved probe (``model="auto"``: the probe's own model)."""
    from bertprobe.features import POOLINGS
    from bertprobe.probe import load_probe, predict

    _choice("pool", pool, tuple(POOLINGS))  # before the probe is read, as the CLI's parser refuses it
    batch_size = _count("batch_size", batch_size, 1, optional=False)
    seed = _seed(seed)
    layer = _layer("layer", layer)
    listed = _listed("texts", texts)
    saved = load_probe(_path("probe_dir", probe_dir, optional=False))
    saved.check_reading(layer, pool)
    model, revision = probe_model(model, revision, saved)
    lm = _model(model, "encoder", revision, device, dtype, offline, seed)
    result = predict(lm, saved, listed, batch_size=batch_size)
    note_special_tokens(result, lm, listed)
    return _done(result, lm, seed)


@_command
def attribute(
    text: str,
    *,
    probe: str | Path | None = None,
    label: str | None = None,
    target: str | None = None,
    mask: int | None = None,
    method: str = "ig",
    baseline: str = "pad",
    steps: int | None = DEFAULT_STEPS,
    auto_steps: bool = False,
    max_steps: int | None = DEFAULT_MAX_STEPS,
    internal_batch_size: int | None = None,
    faithfulness: bool = True,
    random_orders: int | None = DEFAULT_RANDOM_ORDERS,
    html: str | Path | None = None,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe attribute``: which input tokens drive a fill-mask prediction or a saved probe's class."""
    from bertprobe.attribute import (
        BASELINES,
        METHODS,
        AttributionSettings,
        attribute_fill_mask,
        attribute_probe,
        check_settings,
    )

    check_attribute_question(probe, target, label, mask)
    _text("text", text, optional=False)
    _text("label", label)
    _text("target", target)
    _flag("auto_steps", auto_steps)
    _flag("faithfulness", faithfulness)
    _choice("method", method, tuple(METHODS))
    _choice("baseline", baseline, tuple(BASELINES))
    mask = _count("mask", mask, 1)
    steps = _count("steps", steps, 1, 10_000)
    max_steps = _count("max_steps", max_steps, 1, 10_000)
    internal_batch_size = _count("internal_batch_size", internal_batch_size, 1)
    random_orders = _count("random_orders", random_orders, 1, 1000)
    seed = _seed(seed)
    probe = _path("probe", probe)
    html = _path("html", html)
    settings = AttributionSettings(
        method=method,
        baseline=baseline,
        steps=DEFAULT_STEPS if steps is None else steps,
        auto_steps=auto_steps,
        max_steps=DEFAULT_MAX_STEPS if max_steps is None else max_steps,
        internal_batch_size=internal_batch_size,
        faithfulness=faithfulness,
        random_orders=DEFAULT_RANDOM_ORDERS if random_orders is None else random_orders,
        seed=seed,
    )
    check_settings(settings)  # before the model loads, as the CLI checks them
    if probe is not None:
        from bertprobe.probe import load_probe

        saved = load_probe(probe)
        model, revision = probe_model(model, revision, saved)
        lm = _model(model, "encoder", revision, device, dtype, offline, seed)
        result = attribute_probe(lm, text, saved, label=label, settings=settings)
    else:
        lm = _model(model, "mlm", revision, device, dtype, offline, seed)
        result = attribute_fill_mask(lm, text, target=target, mask=mask or 1, settings=settings)
    note_special_tokens(result, lm, [text])
    if html is not None:
        from bertprobe.render.attribute import write_html

        write_html(result, html)
    return _done(result, lm, seed)


@_command
def attention(
    text: str,
    *,
    layer: int | None = None,
    head: int | None = None,
    plot: str | Path | None = None,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe attention``: where attention goes, layer by layer."""
    from bertprobe import attention as core

    head = _count("head", head, 1, 10_000)
    seed = _seed(seed)
    layer = _layer("layer", layer)
    _text("text", text, optional=False)
    plot = _path("plot", plot)
    if plot is not None:
        from bertprobe import render

        render.check_plot_path(plot)  # before the model work, not after
    lm = _model(model, "encoder", revision, device, dtype, offline, seed)
    result = core.attention(lm, text, layer=layer, head=head)
    note_special_tokens(result, lm, [text])
    if plot is not None:
        from bertprobe.render.attention import plot as plot_attention

        plot_attention(result, plot)
    return _done(result, lm, seed)


@_command
def nsp(
    first: str | None = None,
    second: str | None = None,
    *,
    pairs: str | Path | None = None,
    shuffle: str | Path | None = None,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe nsp``: the probability BERT's NSP head gives that the second sentence follows the first."""
    from bertprobe import nsp as core

    check_nsp_sources(first, second, pairs, shuffle)
    seed = _seed(seed)
    _text("first", first)
    _text("second", second)
    pair_list, truth, lines, source, mode = nsp_pairs(
        first,
        second,
        _path("pairs", pairs),
        _path("shuffle", shuffle),
        seed,
    )
    lm = _model(model, "nsp", revision, device, dtype, offline, seed)
    result = core.score(lm, pair_list, truth, lines, source=source, mode=mode)
    note_special_tokens(result, lm, pair_list)
    return _done(result, lm, seed)


@_command
def cloze(
    data: str | Path | None = None,
    *,
    cloze_set: str = "builtin",
    top_k: int = 5,
    model: Any = "auto",
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe cloze``: how often the masked LM puts an acceptable word first, or in its top k."""
    from bertprobe import cloze as core

    top_k = _count("top_k", top_k, 1, 100_000, optional=False)
    seed = _seed(seed)
    _text("cloze_set", cloze_set, optional=False)
    items, name = cloze_items(_path("data", data), cloze_set)
    lm = _model(model, "mlm", revision, device, dtype, offline, seed)
    result = core.evaluate(lm, items, top_k=top_k, cloze_set=name)
    note_special_tokens(result, lm, [item["text"] for item in items])
    return _done(result, lm, seed)


@_command
def pretrain(
    corpus: str | Path | Sequence[str | Path],
    *,
    source: str = "tiny-mlm",
    out: str | Path = "runs/pretrain",
    steps: int | None = None,
    minutes: float | None = None,
    batch_size: int = 32,
    lr: float = 1e-4,
    warmup: float = 0.06,
    rate: float = 0.15,
    max_length: int = 128,
    nsp: bool = False,
    nsp_negatives: str = "other-document",
    freeze_layers: int = 0,
    probe: str | Sequence[str] | None = None,
    save_minutes: float = 5.0,
    save_steps: int | None = None,
    save_dtype: str = "float32",
    restart: bool = False,
    device: str = "auto",
    offline: bool = False,
    seed: int = 0,
) -> Any:
    """``bertprobe pretrain``: continue a BERT-family masked LM's pretraining on ``corpus`` (``source`` is ``--from``).

    Give one budget, ``steps`` or ``minutes``. Rerunning with the same arguments resumes from the last
    checkpoint in ``out``. A Ctrl-C finishes the step, saves, and returns the result with ``interrupted``
    set (as the CLI prints it before exiting 130).
    """
    from bertprobe import pretrain as core
    from bertprobe.models.spec import DEVICES

    seed = _seed(seed)
    _choice("device", device, DEVICES)
    for name, flag in (("nsp", nsp), ("restart", restart), ("offline", offline)):
        _flag(name, flag)
    # The CLI's parsers: a str or a bool would be a raw TypeError in the core's checks, or (True) one step.
    steps = _count("steps", steps, 1, MAX_PRETRAIN_STEPS)
    _real("minutes", minutes, 0, MAX_MINUTES, high_included=True)
    batch_size = _count("batch_size", batch_size, 1, 65_536, optional=False)
    _real("lr", lr, 0, 1, optional=False, high_included=True)
    _real("warmup", warmup, 0, 0.9, optional=False, high_included=True, low_included=True)
    _real("rate", rate, 0, 1, optional=False, high_included=True)
    max_length = _count("max_length", max_length, 8, 100_000, optional=False)
    freeze_layers = _count("freeze_layers", freeze_layers, 0, 1000, optional=False)
    _real("save_minutes", save_minutes, 0, MAX_MINUTES, optional=False, high_included=True)
    save_steps = _count("save_steps", save_steps, 1, MAX_PRETRAIN_STEPS)
    if isinstance(corpus, (str, os.PathLike)):
        corpus = [corpus]
    if not isinstance(corpus, Iterable):
        raise InputError(f"corpus={corpus!r} is not a file path", hint="Pass corpus as a path or a list of paths.")
    corpus_files = list(corpus)
    for path in corpus_files:  # checked, but kept as typed (the run's identity on resume)
        _path("corpus", path, optional=False)
    _path("out", out, optional=False)
    source = _spec(source)  # a model folder as a pathlib.Path, as model= takes one
    _text("source", source, optional=False)
    probes = (_listed("probe", probe) if probe is not None else []) or ["The cat sat on the [MASK]."]
    settings = core.PretrainSettings(
        source=source,
        corpus=[str(p) for p in corpus_files],
        out=str(out),
        steps=steps,
        minutes=minutes,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        rate=rate,
        max_length=max_length,
        seed=seed,
        save_minutes=save_minutes,
        save_steps=save_steps,
        save_dtype=save_dtype,
        probes=probes,
        nsp=nsp,
        freeze_layers=freeze_layers,
        nsp_negatives=nsp_negatives,
    )
    try:
        result = core.pretrain(settings, device=device, offline=offline, restart=restart)
    except core.Interrupted as stop:
        result = stop.result
    if result.notices:
        from bertprobe import render

        for notice in result.notices:
            render.notice(notice)
    object.__setattr__(result, "_bertprobe_seed", seed)
    return result
