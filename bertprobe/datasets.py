"""Labelled sentences for probes: a task registry (``sst2``) and the user's own files.

``--task sst2`` looks for GLUE's SST-2 in this order: ``--data-dir`` holding GLUE's
``train.tsv`` / ``dev.tsv``; a copy downloaded earlier into the bertprobe cache; the Hugging
Face hub through the ``datasets`` library (when it is installed); a direct download of GLUE's
SST-2 zip. When none works, one error says how to get the data. ``--data FILE`` reads any
csv / tsv / jsonl file with a text and a label column; every bad row is reported with its line.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe.atomic import atomic_write
from bertprobe.errors import DataError, NetworkError, OfflineError
from bertprobe.featcache import cache_root
from bertprobe.inputs import read_rows

TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "sentiment", "class", "target")
DOWNLOAD_TIMEOUT_S = 10.0


@dataclass
class LabelledData:
    """Texts with their labels (as strings), and where each came from for error messages."""

    texts: list[str]
    labels: list[str]
    origin: list[str]  # "file, line N" per row

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int]) -> LabelledData:
        return LabelledData(
            [self.texts[i] for i in indices], [self.labels[i] for i in indices], [self.origin[i] for i in indices]
        )


@dataclass
class Split:
    """A training and an evaluation set with one shared, ordered list of label names."""

    train: LabelledData
    eval: LabelledData
    label_names: list[str]
    source: str  # for people: where the data came from
    notes: list[str] = field(default_factory=list)

    def counts(self, part: str) -> dict[str, int]:
        counter = Counter(getattr(self, part).labels)
        return {name: counter.get(name, 0) for name in self.label_names}


@dataclass(frozen=True)
class Task:
    """A known labelled task and every place its data can come from."""

    name: str
    description: str
    hub_id: str
    glue_url: str
    glue_folder: str  # the folder GLUE's zip unpacks to
    text_column: str
    label_column: str
    label_names: tuple[str, ...]  # GLUE's integer label i means label_names[i]
    sizes: tuple[int, int]  # (train, validation) rows, to tell a complete copy from a partial one


TASKS = {
    "sst2": Task(
        name="sst2",
        description="GLUE SST-2: binary sentiment of movie-review sentences (Socher et al. 2013)",
        hub_id="stanfordnlp/sst2",
        glue_url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
        glue_folder="SST-2",
        text_column="sentence",
        label_column="label",
        label_names=("negative", "positive"),
        sizes=(67349, 872),
    ),
}


def _how_to_get(task: Task) -> str:
    return (
        f"Download {task.glue_url}, unzip it and pass --data-dir {task.glue_folder}/ (it holds train.tsv and "
        f"dev.tsv); or connect once so it is downloaded to {cache_root() / 'datasets' / task.name}."
    )


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task {name!r}", hint=f"Known tasks: {', '.join(TASKS)}.") from None


def load_task(name: str, data_dir: str | Path | None = None, offline: bool = False) -> Split:
    """The train / validation split of a registered task, from the first source that has it."""
    from bertprobe.models import offline_requested

    task = get_task(name)
    if data_dir is not None:
        return _from_glue_dir(task, Path(data_dir), "--data-dir")
    cached = cache_root() / "datasets" / task.name
    if (cached / "train.tsv").is_file() and (cached / "dev.tsv").is_file():
        _check_cached(task, cached)
        return _from_glue_dir(task, cached, "cache")
    if offline_requested(offline):
        raise OfflineError(
            f"{task.name} is not available offline: no --data-dir was given and there is no copy in {cached}",
            hint=_how_to_get(task),
        )
    reasons = []
    try:
        split = _from_hub(task)
    except _Unavailable as err:
        reasons.append(str(err))
    else:
        if split is not None:
            return split
    try:
        _download_glue(task, cached)
    except _Unavailable as err:
        reasons.append(str(err))
    else:
        return _from_glue_dir(task, cached, task.glue_url)
    raise NetworkError(f"could not get {task.name}: {'; '.join(reasons)}", hint=_how_to_get(task))


class _Unavailable(Exception):
    """One source of a task could not be used; the next one is tried."""


def _from_glue_dir(task: Task, directory: Path, how: str) -> Split:
    if not directory.is_dir():
        raise DataError(f"{directory}: no such directory", hint=_how_to_get(task))
    # Accept the folder GLUE's zip unpacks to as well as its parent.
    if not (directory / "train.tsv").is_file() and (directory / task.glue_folder / "train.tsv").is_file():
        directory = directory / task.glue_folder
    missing = [name for name in ("train.tsv", "dev.tsv") if not (directory / name).is_file()]
    if missing:
        raise DataError(
            f"{directory} holds no {' or '.join(missing)} (GLUE {task.glue_folder} format expected)",
            hint=_how_to_get(task),
        )
    train = _read_glue_file(task, directory / "train.tsv")
    dev = _read_glue_file(task, directory / "dev.tsv")
    notes = []
    if (len(train), len(dev)) != task.sizes:
        notes.append(
            f"{directory} holds {len(train)} / {len(dev)} sentences; the full {task.name} has "
            f"{task.sizes[0]} / {task.sizes[1]}"
        )
    source = f"{task.name} from {directory}" if how != task.glue_url else f"{task.name} downloaded to {directory}"
    return Split(train, dev, list(task.label_names), source, notes)


def _read_glue_file(task: Task, path: Path) -> LabelledData:
    rows = read_rows(path, required=[task.text_column, task.label_column])
    valid = {str(i) for i in range(len(task.label_names))}
    texts, labels, origin = [], [], []
    for row in rows:
        value = row.values[task.label_column]
        if value not in valid:
            raise DataError(
                f"{path}, line {row.line}: label {value!r} is not one of {', '.join(sorted(valid))}",
                hint=f"GLUE {task.glue_folder} files label each sentence 0 ({task.label_names[0]}) or 1 "
                f"({task.label_names[1]}).",
            )
        texts.append(row.values[task.text_column])
        labels.append(task.label_names[int(value)])
        origin.append(f"{path}, line {row.line}")
    return LabelledData(texts, labels, origin)


def _from_hub(task: Task) -> Split | None:
    """Through the ``datasets`` library, when it is installed (``None`` when it is not)."""
    import importlib.util

    if importlib.util.find_spec("datasets") is None:
        return None
    from bertprobe.models.spec import _hub_reachable

    # Unreachable, the library would retry for half a minute before failing: only its own cache is asked.
    unreachable = not _hub_reachable()
    try:
        import datasets

        with _quiet_datasets(datasets), _hub_offline(datasets, unreachable):
            loaded = datasets.load_dataset(task.hub_id)
        parts = []
        for part in ("train", "validation"):
            table = loaded[part]
            texts = [str(t).strip() for t in table[task.text_column]]  # as the GLUE files are read
            values = [int(v) for v in table[task.label_column]]
            # GLUE marks unlabelled rows -1, which would index the last label name: refuse, never guess.
            bad = next((i for i, v in enumerate(values) if not 0 <= v < len(task.label_names)), None)
            if bad is not None:
                raise ValueError(f"{part} row {bad + 1} has label {values[bad]}, not 0 to {len(task.label_names) - 1}")
            labels = [task.label_names[v] for v in values]
            parts.append(LabelledData(texts, labels, [f"{task.hub_id} {part}, row {i + 1}" for i in range(len(texts))]))
    except Exception as err:  # datasets raises many kinds (connection, not found, ...): any means "try the next"
        if unreachable:
            raise _Unavailable(f"the hub is unreachable and `datasets` has no cached copy of {task.hub_id}") from err
        raise _Unavailable(f"the hub dataset {task.hub_id} failed ({type(err).__name__}: {err})") from err
    notes = []
    if (len(parts[0]), len(parts[1])) != task.sizes:  # as for a --data-dir copy: another revision, or a partial one
        notes.append(
            f"the hub's {task.hub_id} holds {len(parts[0])} / {len(parts[1])} sentences; the full {task.name} has "
            f"{task.sizes[0]} / {task.sizes[1]}"
        )
    return Split(parts[0], parts[1], list(task.label_names), f"{task.name} from the hub ({task.hub_id})", notes)


@contextlib.contextmanager
def _quiet_datasets(library: Any) -> Iterator[None]:
    """The terminal belongs to bertprobe: no ``datasets`` download bars, "Generating split" bars, logs or warnings.

    Its own switches where it has them, and whatever still reaches stdout / stderr or ``warnings`` in the
    block is dropped (the error, if any, is reported by the caller in one line).
    """
    utils = getattr(getattr(library, "utils", None), "logging", None)
    for switch in ("set_verbosity_error", "disable_progress_bar", "disable_progress_bars"):
        with contextlib.suppress(Exception):
            getattr(utils, switch)()
    with contextlib.suppress(Exception):
        library.disable_progress_bars()
    with contextlib.suppress(Exception):  # the hub client it downloads with logs its retries on its own logger
        from huggingface_hub.utils import disable_progress_bars
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
        disable_progress_bars()
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _hub_offline(library: Any, offline: bool) -> Iterator[None]:
    """With ``offline``, ``datasets`` and its hub client read only their caches for the block (their switches
    are read from the environment once, at import, so the flags themselves are set, then put back)."""
    if not offline:
        yield
        return
    import huggingface_hub.constants as hub_constants

    places = [(hub_constants, "HF_HUB_OFFLINE"), (getattr(library, "config", None), "HF_HUB_OFFLINE")]
    saved = [(place, name, getattr(place, name)) for place, name in places if hasattr(place, name)]
    for place, name, _ in saved:
        setattr(place, name, True)
    try:
        yield
    finally:
        for place, name, value in saved:
            setattr(place, name, value)


# GLUE's SST-2.zip is 7.4 MB and unpacks to 5 MB of tsv: these caps leave room and refuse a zip bomb.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200  # text compresses ~3-10x; a thousandfold ratio is a bomb


def _download_glue(task: Task, target: Path) -> None:
    """Fetch GLUE's zip with a short timeout and unpack its train / dev files into ``target`` atomically.

    The download and each inflated member are size-capped before and while reading, so a hostile or
    broken archive is refused in memory and never written to disk.
    """
    import urllib.request

    try:
        with urllib.request.urlopen(task.glue_url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_DOWNLOAD_BYTES:
                raise _Unavailable(f"{task.glue_url} is {int(declared):,} bytes, more than GLUE's zip can be")
            payload = response.read(MAX_DOWNLOAD_BYTES + 1)
    except _Unavailable:
        raise
    except Exception as err:  # URLError, timeouts, HTTP errors: all mean this source is out
        raise _Unavailable(f"downloading {task.glue_url} failed ({err})") from err
    if len(payload) > MAX_DOWNLOAD_BYTES:
        raise _Unavailable(f"{task.glue_url} sent more than {MAX_DOWNLOAD_BYTES:,} bytes; refused")
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        members = {Path(info.filename).name: info for info in archive.infolist() if info.filename.endswith(".tsv")}
        contents = {name: _inflate(archive, members[name], task) for name in ("train.tsv", "dev.tsv")}
    except (zipfile.BadZipFile, KeyError, EOFError, zlib.error) as err:
        raise _Unavailable(f"{task.glue_url} is not GLUE's {task.glue_folder} zip ({err})") from err
    # dev.tsv after train.tsv: load_task treats the pair as present only when both exist. The digests last:
    # a copy killed before them is whole (each file is written atomically); its first read records them, as
    # for one cached before the digests were.
    for name in ("train.tsv", "dev.tsv"):
        atomic_write(target / name, contents[name])
    digests = {name: hashlib.sha256(contents[name]).hexdigest() for name in ("train.tsv", "dev.tsv")}
    atomic_write(target / CACHE_DIGESTS, json.dumps(digests, indent=1) + "\n")


CACHE_DIGESTS = "sha256.json"


def _check_cached(task: Task, cached: Path) -> None:
    """Refuse a cached copy whose files are no longer what was downloaded (edited, truncated, damaged)."""
    digests_path = cached / CACHE_DIGESTS
    hint = f"Delete {cached} to download {task.name} again, or pass --data-dir with a copy you trust."
    if not digests_path.is_file():
        # Whole but never hashed (see _download_glue): record it now, or every later change would go unseen.
        try:
            digests = {
                name: hashlib.sha256((cached / name).read_bytes()).hexdigest() for name in ("train.tsv", "dev.tsv")
            }
        except OSError as err:
            raise DataError(f"the cached {task.name} in {cached} cannot be read ({err.strerror})", hint=hint) from None
        with contextlib.suppress(OSError):  # a read-only cache: read it unchecked, as before
            atomic_write(digests_path, json.dumps(digests, indent=1) + "\n")
        return
    try:
        digests = json.loads(digests_path.read_text(encoding="utf-8"))
        changed = [
            name
            for name in ("train.tsv", "dev.tsv")
            if hashlib.sha256((cached / name).read_bytes()).hexdigest() != digests[name]
        ]
    except (ValueError, KeyError, TypeError) as err:
        raise DataError(f"{digests_path} is damaged ({type(err).__name__})", hint=hint) from None
    except OSError as err:
        raise DataError(f"the cached {task.name} in {cached} cannot be read ({err.strerror})", hint=hint) from None
    if changed:
        raise DataError(
            f"the cached {task.name} in {cached} changed since it was downloaded ({' and '.join(changed)} "
            "differ): a probe would be trained or scored on other sentences",
            hint=hint,
        )


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, task: Task) -> bytes:
    """One member's bytes, refusing it when its declared or its actual inflated size is too large."""
    limit = min(MAX_MEMBER_BYTES, max(info.compress_size, 1) * MAX_COMPRESSION_RATIO)
    if info.file_size > limit:
        raise _Unavailable(
            f"{task.glue_url}: {info.filename} would inflate to {info.file_size:,} bytes from "
            f"{info.compress_size:,} (a zip bomb?); refused"
        )
    chunks, total = [], 0
    with archive.open(info) as member:  # the declared size can lie: count what actually comes out
        while chunk := member.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise _Unavailable(f"{task.glue_url}: {info.filename} inflates past {limit:,} bytes; refused")
            chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------
# The user's own files.
# --------------------------------------------------------------------------------------------


def _pick_column(path: Path, given: str | None, candidates: Sequence[str], what: str, option: str) -> str:
    if given:
        return given
    rows = read_rows(path, optional=candidates)
    present = set().union(*(row.values.keys() for row in rows))
    for name in candidates:
        if name in present:
            return name
    try:  # read again with a column that is absent: read_rows' error lists the file's columns
        read_rows(path, required=[candidates[0]])
    except DataError as err:
        raise DataError(
            f"{path}: no {what} column among {', '.join(candidates)}{_columns_of(err.message)}",
            hint=f"Name the {what} column with {option}.",
        ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _columns_of(message: str) -> str:
    found = re.search(r"\(columns: [^)]*\)", message)
    return f" {found.group(0)}" if found else ""


def read_labelled(path: str | Path, text_column: str | None = None, label_column: str | None = None) -> LabelledData:
    """Texts and labels of a csv / tsv / jsonl file (columns guessed when not named)."""
    path = Path(path)
    text_column = _pick_column(path, text_column, TEXT_COLUMNS, "text", "--text-column")
    label_column = _pick_column(path, label_column, LABEL_COLUMNS, "label", "--label-column")
    if text_column == label_column:
        raise DataError(f"{path}: the text and the label column are both {text_column!r}")
    rows = read_rows(
        path, required=[text_column, label_column], rename="name the column to use with --text-column / --label-column"
    )
    return LabelledData(
        [row.values[text_column] for row in rows],
        [row.values[label_column] for row in rows],
        [f"{path}, line {row.line}" for row in rows],
    )


def _label_order(labels: Sequence[str]) -> list[str]:
    """Distinct labels, numerically when they are all integers ("2" before "10"), else alphabetically."""
    distinct = set(labels)
    if all(re.fullmatch(r"-?\d+", label) for label in distinct):
        # ties ("1", "01") by spelling: set order changes with the hash seed, so the class order would change per run
        return sorted(distinct, key=lambda label: (int(label), label))
    return sorted(distinct)


def load_files(
    data: str | Path,
    eval_data: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    test_size: float = 0.2,
    seed: int = 0,
) -> Split:
    """A split from the user's files: ``eval_data`` when given, else a seeded stratified hold-out of ``data``."""
    train = read_labelled(data, text_column, label_column)
    names = _label_order(train.labels)
    notes = _case_clashes(names, str(data))
    if len(names) < 2:
        raise DataError(
            f"{data}: every row has the label {names[0]!r}; a probe needs at least two classes",
            hint="Check --label-column names the label column.",
        )
    if eval_data is not None:
        evaluation = read_labelled(eval_data, text_column, label_column)
        known = set(names)
        for label, origin in zip(evaluation.labels, evaluation.origin, strict=True):
            if label not in known:
                same = [name for name in names if name.casefold() == label.casefold()]
                raise DataError(
                    f"{origin}: label {label!r} never occurs in the training data ({', '.join(names)})"
                    + (f"; labels are case-sensitive and the training data has {same[0]!r}" if same else ""),
                    hint="A probe can only predict labels it was trained on; fix the label or add training rows.",
                )
        notes += _case_clashes(_label_order(evaluation.labels), str(eval_data))
        return Split(train, evaluation, names, f"{data} (train), {eval_data} (eval)", notes)
    train_part, eval_part = stratified_split(train, test_size, seed)
    return Split(
        train_part,
        eval_part,
        names,
        # Not rounded to whole percents: --test-size 0.001 is no "100% train / 0% eval" (the rows are counted below).
        f"{data}, split {100 * (1 - test_size):g}% train / {100 * test_size:g}% eval (stratified, seed {seed})",
        notes,
    )


def _case_clashes(names: Sequence[str], where: str) -> list[str]:
    """A warning for labels that differ only in case, or write one number two ways ("1", "1.0": a JSON file
    whose numbers came from an int and a float column): most often one class spelled two ways."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_spelling(name), []).append(name)
    return [
        f"{where}: the labels {' and '.join(map(repr, group))} "
        f"{'differ only in case' if len({n.casefold() for n in group}) == 1 else 'are one number written two ways'} "
        f"and are treated as {len(group)} different classes"
        for group in groups.values()
        if len(group) > 1
    ]


def _spelling(label: str) -> str:
    """What the spellings of one label share: the number it writes, else its case-folded form."""
    try:
        number = float(label)
    except ValueError:
        return label.casefold()
    return repr(number) if math.isfinite(number) else label.casefold()


def stratified_split(data: LabelledData, test_size: float, seed: int) -> tuple[LabelledData, LabelledData]:
    """A seeded split that keeps each label's share in both parts."""
    if not 0.0 < test_size < 1.0:
        raise DataError(f"--test-size must be between 0 and 1, got {test_size}", hint="e.g. --test-size 0.2")
    counts = Counter(data.labels)
    rare = [label for label, count in counts.items() if count < 2]
    if rare:
        raise DataError(
            f"the label(s) {', '.join(map(repr, sorted(rare)))} occur only once, too few to split off an eval set",
            hint="Add rows for them, or give a separate eval file with --eval-data.",
        )
    n_eval = round(len(data) * test_size)
    if n_eval < len(counts) or len(data) - n_eval < len(counts):
        raise DataError(
            f"{len(data)} rows are too few to split {test_size:.0%} off with every label on both sides",
            hint="Add rows, change --test-size, or give --eval-data.",
        )
    from sklearn.model_selection import train_test_split

    indices = list(range(len(data)))
    train_idx, eval_idx = train_test_split(indices, test_size=n_eval, random_state=seed, stratify=data.labels)
    # Stratifying rounds each label's share: a label of a few rows can land wholly in eval (2 rows, 80% held out),
    # and the probe would never be trained on it.
    trained = Counter(data.labels[i] for i in train_idx)
    lost = sorted(label for label in counts if not trained[label])
    if lost:
        raise DataError(
            f"--test-size {test_size:g} leaves no training row labelled {', '.join(map(repr, lost))} "
            f"({', '.join(f'{counts[label]} row(s) in all' for label in lost)}); the probe could not learn it",
            hint="Lower --test-size, add rows for that label, or give a separate eval file with --eval-data.",
        )
    return data.subset(sorted(train_idx)), data.subset(sorted(eval_idx))


def subsample(data: LabelledData, limit: int, seed: int) -> LabelledData:
    """A seeded stratified sample of ``limit`` rows (all of them when there are fewer)."""
    if limit < 1:
        raise DataError(f"--max-train must be at least 1, got {limit}", hint="e.g. --max-train 2000")
    if limit >= len(data):
        return data
    counts = Counter(data.labels)
    if limit < len(counts):
        raise DataError(
            f"--max-train {limit} is fewer rows than there are labels ({len(counts)})",
            hint=f"Use --max-train {len(counts)} or more, so that every label is trained on.",
        )
    from sklearn.model_selection import train_test_split

    indices = list(range(len(data)))
    if min(counts.values()) < 2 or len(data) - limit < len(counts):
        # sklearn cannot stratify a label with one row, nor leave fewer rows out than there are labels: stratify by
        # hand (a plain random sample could drop a label, and would not be the stratified sample the run announces).
        import random

        rng = random.Random(seed)
        take = _shares_of(counts, limit)
        chosen = []
        for label in sorted(counts):
            chosen += rng.sample([i for i in indices if data.labels[i] == label], take[label])
    else:
        chosen, _ = train_test_split(indices, train_size=limit, random_state=seed, stratify=data.labels)
    return data.subset(sorted(chosen))


def _shares_of(counts: Counter[str], limit: int) -> dict[str, int]:
    """Rows per label for a sample of ``limit``: each label's share rounded by largest remainder, at least one each."""
    total = sum(counts.values())
    quota = {label: limit * count / total for label, count in counts.items()}
    take = {label: min(count, max(1, math.floor(quota[label]))) for label, count in counts.items()}
    # Most short of its share first; ties by label, so the sample does not depend on set order.
    order = sorted(counts, key=lambda label: (take[label] - quota[label], label))
    while sum(take.values()) < limit:
        label = next(label for label in order if take[label] < counts[label])
        take[label] += 1
        order = sorted(counts, key=lambda label: (take[label] - quota[label], label))
    while sum(take.values()) > limit:  # raising a label to one row overshot: take from the most over its share
        label = next(label for label in reversed(order) if take[label] > 1)
        take[label] -= 1
        order = sorted(counts, key=lambda label: (take[label] - quota[label], label))
    return take
