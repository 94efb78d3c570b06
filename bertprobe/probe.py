"""A linear probe on frozen BERT features: train, evaluate, save, load, predict.

The probe is scikit-learn's ``LogisticRegression`` on standardised sentence vectors (the
``[CLS]`` vector by default). It answers "how much of a task can be read off BERT's
``[CLS]`` vector with a linear map?", next to the majority-class baseline and the same probe
on a randomly initialised encoder of the same architecture (how much is BERT's knowledge,
how much is the probe).

A saved probe is two files written as one unit (a new directory swapped in by one rename):
``probe.safetensors`` (float32 ``coef`` [n_out, hidden], ``intercept`` [n_out], ``mean``
[hidden], ``scale`` [hidden]; its metadata repeats the fields of probe.json a prediction
depends on) and ``probe.json`` (format, version, model, revision, fingerprint, layer,
pooling, max_length, labels, train_counts, metrics, packages, and the SHA-256 of the weights file, checked
on load). Never pickle: loading a probe cannot run code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe.atomic import atomic_directory, crash_point, recover_directory
from bertprobe.errors import ArtifactError, DataError, InputError
from bertprobe.layers import resolve_layer
from bertprobe.results import Rendered

PROBE_FORMAT = "bertprobe-probe"
PROBE_VERSION = 2  # 2: probe.json records the weights' SHA-256
WEIGHTS_FILE = "probe.safetensors"
META_FILE = "probe.json"
# The probe.json fields that decide what a prediction is (train_counts: how it is read). They are repeated in
# the weights file's metadata, which weights_sha256 covers, so an edit to any of them in probe.json is seen on load.
READS = ("fingerprint", "layer", "pooling", "max_length", "labels", "train_counts")
# The grid `--C auto` searches with stratified cross-validation on the training set.
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0)
CV_FOLDS = 3
# Iterations for lbfgs: standardised BERT features converge well within this.
MAX_ITER = 2000
# Feature matrices with fewer cells than this train with one BLAS thread (see _blas_threads).
SMALL_PROBLEM = 4_000_000


# --------------------------------------------------------------------------------------------
# Saved probes: the contract the attribute command relies on.
# --------------------------------------------------------------------------------------------


def weights_id(fingerprint: str) -> str:
    """The part of a model fingerprint that names the weights, not the spelling of the path.

    ``name@commit`` (hub) is kept whole; ``name#hash`` (local or bundled) compares by hash, so the
    same checkpoint reached through another path is still the same model.
    """
    return fingerprint.rsplit("#", 1)[1] if "#" in fingerprint else fingerprint


@dataclass
class SavedProbe:
    """A trained probe read back from disk: tensors on the CPU as float32, plus its metadata."""

    coef: Any  # torch.Tensor [n_out, hidden]; 1 row for a binary probe
    intercept: Any  # torch.Tensor [n_out]
    mean: Any  # torch.Tensor [hidden]
    scale: Any  # torch.Tensor [hidden]
    layer: int
    pooling: str
    labels: list[str]
    meta: dict[str, Any]
    directory: Path | None = None

    @property
    def max_length(self) -> int:
        return int(self.meta["max_length"])

    @property
    def model(self) -> str:
        return str(self.meta["model"])

    def default_model_spec(self) -> str:
        """What --model auto means for this probe: its own model (a local one by its absolute path)."""
        return str(self.meta.get("model_path") or self.meta["model"])

    @property
    def revision(self) -> str | None:
        return self.meta.get("revision")

    @property
    def hidden_size(self) -> int:
        return int(self.coef.shape[1])

    def check_model(self, lm: Any) -> None:
        """Refuse a model other than the one the probe was trained on: its features mean something else."""
        saved = str(self.meta.get("fingerprint", ""))
        if weights_id(saved) != weights_id(lm.fingerprint):
            raise ArtifactError(
                f"this probe was trained on {self.model} (weights {saved}), not on {lm.name} ({lm.fingerprint}); "
                "its weights would read meaningless features",
                hint=f"Pass --model {self.default_model_spec()}"
                + (f" --revision {self.revision}" if self.revision else "")
                + ", or train a probe for this model with `bertprobe cls-train`.",
            )
        if lm.hidden_size and lm.hidden_size != self.hidden_size:
            raise ArtifactError(
                f"this probe reads {self.hidden_size}-wide features but {lm.name} makes {lm.hidden_size}-wide ones",
                hint="Use the model the probe was trained on.",
            )
        if not 0 <= self.layer <= lm.num_layers:
            raise ArtifactError(f"this probe reads layer {self.layer}, but {lm.name} has {lm.num_layers} layers")

    def tokenizer_notices(self) -> list[str]:
        """A probe saved under other ``tokenizers`` / ``transformers`` versions: the same model may now split a
        text into other pieces (transformers 5 rebuilds some tokenizers), which the probe was never trained on."""
        saved = self.meta.get("packages")
        if not isinstance(saved, dict):
            return []
        now = package_versions()
        changed = [
            f"{name} {saved[name]} → {now.get(name, 'absent')}"
            for name in TOKENIZER_PACKAGES
            if name in saved and saved[name] != now.get(name)
        ]
        if not changed:
            return []
        return [
            f"this probe was saved under {', '.join(changed)}: if the upgrade splits texts into other word pieces, "
            "its predictions shift (retrain it with `bertprobe cls-train` to be sure)."
        ]

    def check_reading(self, layer: int | None = None, pooling: str | None = None) -> None:
        """Refuse a layer or pooling other than the probe's (``None``: take the probe's own).

        A negative ``layer`` counts from the end of the probe's model (-1 = its last layer)."""
        num_layers = self.meta.get("num_layers")
        if layer is not None and layer < 0 and num_layers is None:
            # Saved before the model's layer count was recorded: -1 cannot be told from the probe's own layer.
            raise InputError(
                f"--layer {layer} counts from the model's last layer, which this probe (saved by an older bertprobe) "
                "does not record",
                hint=f"Leave out --layer: this probe reads layer {self.layer}.",
            )
        if layer is not None and (layer < 0 or (num_layers is not None and layer > num_layers)):
            try:
                layer = resolve_layer(layer, int(num_layers), self.model)
            except InputError as err:  # its hint would name layers to pick; a probe reads only its own
                raise InputError(err.message, hint=f"Leave out --layer: this probe reads layer {self.layer}.") from None
        if layer is not None and layer != self.layer:
            raise ArtifactError(
                f"this probe was trained on layer {self.layer}, not layer {layer}",
                # A probe saved before num_layers was recorded cannot tell whether the model has this layer.
                hint=f"Leave out --layer, or train one for it: bertprobe cls-train --layer {layer} --out DIR."
                if num_layers is not None
                else "Leave out --layer, or train a probe for the layer you want: bertprobe cls-train --layer N.",
            )
        if pooling is not None and pooling != self.pooling:
            raise ArtifactError(
                f"this probe was trained on {self.pooling} pooling, not {pooling}",
                hint=f"Leave out --pool, or train a probe with `bertprobe cls-train --pool {pooling}`.",
            )

    def logits(self, features: Any) -> Any:
        """Class logits [batch, n_classes] for raw pooled features [batch, hidden] (differentiable).

        Features are standardised with the saved scaler first. A binary probe returns ``[0, z]``
        so that ``softmax`` equals scikit-learn's ``predict_proba``.
        """
        import torch

        weight = self.coef.to(device=features.device, dtype=features.dtype)
        bias = self.intercept.to(device=features.device, dtype=features.dtype)
        mean = self.mean.to(device=features.device, dtype=features.dtype)
        scale = self.scale.to(device=features.device, dtype=features.dtype)
        scores = ((features - mean) / scale) @ weight.T + bias
        if weight.shape[0] == 1:
            scores = torch.cat([torch.zeros_like(scores), scores], dim=-1)
        return scores

    def probabilities(self, features: Any) -> Any:
        return self.logits(features).softmax(dim=-1)


# The packages that turn a text into word pieces (transformers 5 rebuilds some tokenizers from class defaults).
TOKENIZER_PACKAGES = ("tokenizers", "transformers")


def package_versions() -> dict[str, str]:
    """The installed versions of the packages a probe's numbers depend on (absent ones left out)."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("bertprobe", "torch", "transformers", "tokenizers", "scikit-learn", "safetensors", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def save_probe(
    directory: str | Path,
    coef: Any,
    intercept: Any,
    mean: Any,
    scale: Any,
    meta: dict[str, Any],
) -> Path:
    """Write ``probe.safetensors`` and ``probe.json`` into ``directory`` (made if missing)."""
    import numpy as np
    from safetensors.numpy import save  # the same file format as safetensors.torch, without importing torch

    directory = Path(directory)
    check_out_directory(directory)
    tensors = {
        "coef": np.ascontiguousarray(np.asarray(coef, dtype=np.float32).reshape(len(coef), -1)),
        "intercept": np.ascontiguousarray(np.asarray(intercept, dtype=np.float32).reshape(-1)),
        "mean": np.ascontiguousarray(np.asarray(mean, dtype=np.float32).reshape(-1)),
        "scale": np.ascontiguousarray(np.asarray(scale, dtype=np.float32).reshape(-1)),
    }
    # One metadata entry: safetensors writes several in no fixed order, and the same probe should be the same bytes.
    record = {"format": PROBE_FORMAT, **{key: meta.get(key) for key in READS}}
    weights = save(tensors, metadata={"probe": json.dumps(record, sort_keys=True, ensure_ascii=False)})
    doc = {
        "format": PROBE_FORMAT,
        "version": PROBE_VERSION,
        **meta,
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    doc.setdefault("packages", package_versions())
    for key in ("model", "revision", "fingerprint", "layer", "pooling", "max_length", "labels", "metrics"):
        if key not in doc:
            raise ValueError(f"probe metadata lacks {key!r}")
    _check_shapes(tensors, doc["labels"], directory)
    try:
        # One unit: both files go into a new directory that replaces the old probe in one rename, so a
        # kill at any moment leaves the old probe or the new one, never one file of each.
        with atomic_directory(directory) as staging:
            (staging / WEIGHTS_FILE).write_bytes(weights)
            crash_point("probe-save:weights-written")
            (staging / META_FILE).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            crash_point("probe-save:meta-written")
    except OSError as err:
        raise ArtifactError(
            f"cannot write the probe to {directory}: {err.strerror}", hint="Pick a writable --out directory."
        ) from err
    return directory


def check_out_directory(directory: Path) -> None:
    """Refuse an --out that a probe save would clobber: a file, or a folder holding anything but a probe."""
    if directory.exists() and not directory.is_dir():
        raise ArtifactError(f"--out {directory} is a file, not a directory", hint="Pick a new directory for --out.")
    if directory.is_dir():
        others = sorted(p.name for p in directory.iterdir() if p.name not in (META_FILE, WEIGHTS_FILE))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise ArtifactError(
                f"--out {directory} holds other files ({shown}); saving a probe replaces the whole directory",
                hint="Pick a new or empty directory, or one that holds only an older probe.",
            )
    parent = directory.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ArtifactError(f"--out {directory}: {parent} is a file", hint="Pick a directory path for --out.")


def _check_shapes(tensors: dict[str, Any], labels: Sequence[str], directory: Path) -> None:
    coef = tensors["coef"]
    n_out = 1 if len(labels) == 2 else len(labels)
    problems = []
    if coef.ndim != 2 or coef.shape[0] != n_out:
        problems.append(f"coef is {list(coef.shape)}, expected [{n_out}, hidden] for {len(labels)} labels")
    else:
        hidden = coef.shape[1]
        for name, size in (("intercept", n_out), ("mean", hidden), ("scale", hidden)):
            if list(tensors[name].shape) != [size]:
                problems.append(f"{name} is {list(tensors[name].shape)}, expected [{size}]")
    if problems:
        raise ArtifactError(
            f"{directory}: the probe's tensors do not fit together ({'; '.join(problems)})",
            hint="The files are damaged or come from different probes; train it again: bertprobe cls-train --out DIR.",
        )


# probe.json's fields: (type(s), required). bool is refused where a number is meant.
_META_TYPES: dict[str, tuple[tuple[type, ...], bool]] = {
    "model": ((str,), True),
    "fingerprint": ((str,), True),
    "layer": ((int,), True),
    "pooling": ((str,), True),
    "max_length": ((int,), True),
    "labels": ((list,), True),
    "weights_sha256": ((str,), True),
    "revision": ((str, type(None)), False),
    "model_path": ((str, type(None)), False),
    "num_layers": ((int,), False),
    "metrics": ((dict,), False),
    "train_counts": ((dict,), False),
    "dtype": ((str,), False),
}


def _check_meta(meta: dict[str, Any], meta_path: Path, retrain: str) -> list[str]:
    """Refuse probe.json fields that are missing or of the wrong type, and duplicate labels; return the labels."""
    from bertprobe.features import POOLINGS

    missing = [k for k, (_, required) in _META_TYPES.items() if required and k not in meta]
    if missing:
        raise ArtifactError(f"{meta_path} lacks {', '.join(missing)}", hint=retrain)
    for key, (types, _) in _META_TYPES.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ArtifactError(
                f"{meta_path}: {key!r} should be {wanted}, not {type(meta[key]).__name__} {meta[key]!r:.60}",
                hint=retrain,
            )
    labels = meta["labels"]
    bad = [label for label in labels if not isinstance(label, str) or not label]
    if bad:
        raise ArtifactError(f"{meta_path}: every label should be a non-empty string, not {bad[0]!r:.60}", hint=retrain)
    if len(labels) < 2:
        raise ArtifactError(f"{meta_path} has fewer than two labels", hint=retrain)
    seen: set[str] = set()
    duplicates = [label for label in labels if label in seen or seen.add(label)]
    if duplicates:
        raise ArtifactError(f"{meta_path} lists the label {duplicates[0]!r} twice", hint=retrain)
    if meta["pooling"] not in POOLINGS:
        raise ArtifactError(f"{meta_path}: unknown pooling {meta['pooling']!r}", hint=retrain)
    if meta["layer"] < 0 or meta["max_length"] < 3 or meta.get("num_layers", meta["layer"]) < meta["layer"]:
        raise ArtifactError(
            f"{meta_path}: layer {meta['layer']}, max_length {meta['max_length']} do not make sense", hint=retrain
        )
    return list(labels)


def _check_reads(weights: bytes, meta: dict[str, Any], meta_path: Path, retrain: str) -> None:
    """Refuse a probe.json whose model, layer, pooling, max_length or labels are not what the weights were saved with.

    Probes saved before the weights recorded them carry no record, and are read as before.
    """
    header = json.loads(weights[8 : 8 + int.from_bytes(weights[:8], "little")])  # parsed already by safetensors
    recorded = (header.get("__metadata__") or {}).get("probe")
    if recorded is None:
        return
    try:
        saved = json.loads(recorded)
    except ValueError:
        saved = None
    changed = [key for key in READS if not isinstance(saved, dict) or saved.get(key) != meta.get(key)]
    if changed:
        raise ArtifactError(
            f"{meta_path} was changed after the probe was saved ({', '.join(changed)}); "
            "it would read or name its features wrongly",
            hint=retrain,
        )


def load_probe(directory: str | Path) -> SavedProbe:
    """Read a probe saved by ``cls-train --out``; any missing, corrupt or mismatched file is an ArtifactError."""
    import torch

    directory = Path(directory)
    retrain = "Train it again with `bertprobe cls-train ... --out DIR`."
    with contextlib.suppress(OSError):
        recover_directory(directory)  # a save killed between its two renames: finish it (or undo it)
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such probe directory", hint="Pass the --out directory of cls-train.")
    meta_path, weights_path = directory / META_FILE, directory / WEIGHTS_FILE
    for path in (meta_path, weights_path):
        if not path.is_file():
            raise ArtifactError(f"{directory} holds no {path.name}: it is not a saved probe", hint=retrain)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{meta_path} is not readable JSON ({err})", hint=retrain) from None
    if not isinstance(meta, dict) or meta.get("format") != PROBE_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ArtifactError(f"{meta_path} is not a bertprobe probe (format {found!r})", hint=retrain)
    if meta.get("version") != PROBE_VERSION:
        raise ArtifactError(
            f"{meta_path} is probe format version {meta.get('version')!r}; this bertprobe reads version "
            f"{PROBE_VERSION}",
            hint="Use the bertprobe version that wrote it, or train the probe again.",
        )
    labels = _check_meta(meta, meta_path, retrain)
    try:
        weights = weights_path.read_bytes()
    except OSError as err:
        raise ArtifactError(f"{weights_path} is not readable ({err.strerror})", hint=retrain) from None
    if hashlib.sha256(weights).hexdigest() != meta["weights_sha256"]:
        raise ArtifactError(
            f"{weights_path} is not the file {META_FILE} was saved with (its SHA-256 differs): "
            "the weights were edited, or the two files come from different probes",
            hint=retrain,
        )
    try:
        from safetensors.torch import load

        tensors = load(weights)
    except Exception as err:  # safetensors raises its own error types for truncated or garbled files
        raise ArtifactError(f"{weights_path} is corrupt ({err})", hint=retrain) from None
    absent = [k for k in ("coef", "intercept", "mean", "scale") if k not in tensors]
    if absent:
        raise ArtifactError(f"{weights_path} lacks the tensor(s) {', '.join(absent)}", hint=retrain)
    _check_reads(weights, meta, meta_path, retrain)
    counts = meta.get("train_counts")  # after _check_reads: an edit is named as one, not as a malformed count
    if counts is not None and (
        set(counts) != set(labels)
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values())
        or not sum(counts.values())
    ):
        raise ArtifactError(f"{meta_path}: train_counts should count each label's training rows", hint=retrain)
    tensors = {k: tensors[k].to(torch.float32) for k in ("coef", "intercept", "mean", "scale")}
    _check_shapes(tensors, labels, directory)
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()) or bool((tensors["scale"] <= 0).any()):
        raise ArtifactError(f"{weights_path} holds non-finite weights or a non-positive scale", hint=retrain)
    return SavedProbe(
        coef=tensors["coef"],
        intercept=tensors["intercept"],
        mean=tensors["mean"],
        scale=tensors["scale"],
        layer=int(meta["layer"]),
        pooling=str(meta["pooling"]),
        labels=labels,
        meta=meta,
        directory=directory,
    )


# --------------------------------------------------------------------------------------------
# Training and evaluation.
# --------------------------------------------------------------------------------------------


@dataclass
class ClassMetrics:
    """One label's scores; None where undefined (never predicted: no precision; no eval text: no recall)."""

    label: str
    precision: float | None
    recall: float | None
    f1: float | None
    support: int


@dataclass
class Metrics:
    accuracy: float
    macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]  # rows: true label, columns: predicted label, both in ``labels`` order
    # Each eval label's recall, averaged: a constant answer gets at most 1 / labels however uneven the mix.
    balanced_accuracy: float | None = None


@dataclass
class Baseline:
    """Always answer one label: the training set's most common (``baseline``) or the eval set's (``eval_majority``)."""

    label: str
    accuracy: float
    macro_f1: float


@dataclass
class CSearch:
    """``--C auto``: mean cross-validated accuracy on the training set for each C tried."""

    grid: list[float]
    cv_accuracy: list[float]
    folds: int
    chosen: float


@dataclass
class SweepCell:
    layer: int
    pooling: str
    accuracy: float
    macro_f1: float
    control_accuracy: float | None = None
    control_macro_f1: float | None = None


@dataclass
class DataSummary:
    source: str
    train_size: int
    eval_size: int
    train_counts: dict[str, int]
    eval_counts: dict[str, int]


@dataclass
class ProbeResult(Rendered):
    """A [CLS] (or other pooled) linear probe: how well it does, next to its alternatives."""

    model: str
    revision: str | None
    source: str
    fingerprint: str
    task: str | None
    data: DataSummary
    labels: list[str]
    layer: int
    num_layers: int
    pooling: str
    max_length: int
    truncated: int
    C: float
    c_search: CSearch | None
    metrics: Metrics
    baseline: Baseline
    control: Metrics | None
    sweep: list[SweepCell]
    cache_hits: int
    cache_misses: int
    cache_rebuilt: list[str]
    seconds: dict[str, float]
    saved_to: str | None = None
    notices: list[str] = field(default_factory=list)
    cls_origin: Any = None  # a cls_origin.ClsOrigin: what this model's [CLS] was trained for
    # Always answering the eval set's most common label (ties: the training majority): with another mix than the
    # training set's it beats ``baseline``, and a lead over ``baseline`` alone would overstate the probe.
    eval_majority: Baseline | None = None


@dataclass
class FittedProbe:
    """A standardiser and a logistic regression fitted together (kept in memory; saved as tensors)."""

    scaler: Any
    classifier: Any
    C: float
    converged: bool = True

    def predict(self, features: Any) -> Any:
        return self.classifier.predict(self.scaler.transform(features))

    def predict_proba(self, features: Any) -> Any:
        return self.classifier.predict_proba(self.scaler.transform(features))


def _as_numpy(features: Any) -> Any:
    import numpy as np

    return features.numpy() if hasattr(features, "numpy") else np.asarray(features, dtype=np.float32)


def _blas_threads(features: Any) -> Any:
    """One BLAS thread for small problems: OpenBLAS's thread hand-offs cost more than they save there.

    Measured on a busy 2-core machine: a 22-cell sweep on 248 x 384 features trained in 11.7 s with
    two OpenBLAS threads and in 0.6 s with one. Large problems keep every thread.
    """
    import contextlib

    rows, columns = features.shape
    if rows * columns >= SMALL_PROBLEM:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits  # a dependency of scikit-learn
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fit_probe(features: Any, targets: Sequence[int], C: float, seed: int) -> FittedProbe:
    """StandardScaler then LogisticRegression (lbfgs, seeded) on [n, hidden] features and class indices."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if not C > 0 or not math.isfinite(C):
        raise InputError(f"--C must be a positive number, got {C}", hint="e.g. --C 1.0, or --C auto to search.")
    features = _as_numpy(features)
    scaler = StandardScaler().fit(features)
    with warnings.catch_warnings(record=True) as caught, _blas_threads(features):
        warnings.simplefilter("always", ConvergenceWarning)
        classifier = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)
        classifier.fit(scaler.transform(features), list(targets))
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return FittedProbe(scaler, classifier, C, converged)


def search_C(features: Any, targets: Sequence[int], seed: int, grid: Sequence[float] = C_GRID) -> CSearch:
    """Pick C by stratified k-fold cross-validation on the training set (scaler fitted inside each fold)."""
    import warnings
    from collections import Counter

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = min(Counter(targets).values())
    folds = min(CV_FOLDS, smallest)
    if folds < 2:
        raise InputError(
            "--C auto needs at least two training examples of every label for cross-validation",
            hint="Give a fixed --C, or more training data.",
        )
    features = _as_numpy(features)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = []
    with warnings.catch_warnings(), _blas_threads(features):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for C in grid:
            pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed))
            scores.append(float(cross_val_score(pipeline, features, list(targets), cv=splitter).mean()))
    best = max(range(len(grid)), key=lambda i: (round(scores[i], 12), -grid[i]))  # ties: the stronger penalty
    return CSearch(list(grid), scores, folds, float(grid[best]))


def evaluate(truth: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> Metrics:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=classes, zero_division=0)
    # A class with no eval text that is never predicted has no F1 (an --eval-data file may lack a label): averaged
    # in as 0 it would pull a perfect probe below 100%. Averaged over the classes scikit-learn's default takes.
    present = sorted(set(truth) | set(predicted))
    confusion = confusion_matrix(truth, predicted, labels=classes).tolist()
    answered = [sum(row[i] for row in confusion) for i in classes]
    # zero_division=0 fills undefined scores with 0, which reads as "got every one wrong": say undefined instead.
    # F1 (2 TP / (2 TP + FP + FN)) is defined whenever the class was predicted or has eval texts.
    per_class = [
        ClassMetrics(
            labels[i],
            float(precision[i]) if answered[i] else None,
            float(recall[i]) if support[i] else None,
            float(f1[i]) if answered[i] or support[i] else None,
            int(support[i]),
        )
        for i in classes
    ]
    recalls = [row.recall for row in per_class if row.recall is not None]
    return Metrics(
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        per_class=per_class,
        confusion=confusion,
        balanced_accuracy=sum(recalls) / len(recalls) if recalls else None,
    )


@dataclass
class Repeats:
    """Eval texts that repeat a training text: character for character, or once normalised as the model would."""

    repeated: int  # eval texts that repeat a training text, exactly or loosely
    loosely: int  # of those, the ones that are not the same characters (other case or spacing, say)
    lowercases: bool  # the model's tokenizer lowercases, so case is one of the things it does not tell apart


def eval_repeats(lm: Any, train_texts: Sequence[str], eval_texts: Sequence[str]) -> Repeats:
    """Count eval texts that repeat a training text, character for character or once normalised as the model would.

    Normalised: by the model's own tokenizer normaliser (an uncased one lowercases, BERT's may strip accents and
    drops control characters), then with runs of whitespace made one space and the ends trimmed (BERT's tokenizer
    splits on whitespace, so they are the same word pieces; a byte-level one keeps spaces, but the vector hardly moves).
    """
    normaliser = lm.tokenizer.backend.normalizer

    def normalised(text: str) -> str:
        return " ".join((normaliser.normalize_str(text) if normaliser is not None else text).split())

    exact = set(train_texts)
    loose = {normalised(text) for text in train_texts}
    repeated = loosely = 0
    for text in eval_texts:
        if text in exact:
            repeated += 1
        elif normalised(text) in loose:
            repeated += 1
            loosely += 1
    lowercases = normaliser is not None and normaliser.normalize_str("A") == "a"
    return Repeats(repeated, loosely, lowercases)


def majority_baseline(train_targets: Sequence[int], eval_targets: Sequence[int], labels: Sequence[str]) -> Baseline:
    from collections import Counter

    counts = Counter(train_targets)
    majority = max(range(len(labels)), key=lambda i: (counts.get(i, 0), -i))
    metrics = evaluate(eval_targets, [majority] * len(eval_targets), labels)
    return Baseline(labels[majority], metrics.accuracy, metrics.macro_f1)


def eval_majority_baseline(eval_targets: Sequence[int], labels: Sequence[str], training: Baseline) -> Baseline:
    """Always answer the eval set's most common label (the training majority when it ties for most common)."""
    from collections import Counter

    counts = Counter(eval_targets)
    top = max(counts.values(), default=0)
    if counts.get(labels.index(training.label), 0) == top:
        return training
    majority = min(i for i, count in counts.items() if count == top)
    metrics = evaluate(eval_targets, [majority] * len(eval_targets), labels)
    return Baseline(labels[majority], metrics.accuracy, metrics.macro_f1)


def sweep_specs(lm: Any) -> list[tuple[int, str]]:
    """Every layer (0 = embeddings) with cls / mean / max, plus BERT's pooler on the last layer when present."""
    specs = [(layer, pooling) for layer in range(lm.num_layers + 1) for pooling in ("cls", "mean", "max")]
    if "pooler" in lm.heads:
        specs.append((lm.num_layers, "pooler"))
    return specs


def _no_progress(_: str) -> Any:
    import contextlib

    return contextlib.nullcontext(None)


def cls_train(
    lm: Any,
    split: Any,
    layer: int | None = None,
    pooling: str = "cls",
    C: float | None = 1.0,
    max_length: int | None = None,
    batch_size: int = 32,
    sweep: bool = False,
    control: bool = False,
    seed: int = 0,
    use_cache: bool = True,
    out: str | Path | None = None,
    task: str | None = None,
    progress: Callable[[str], Any] = _no_progress,
) -> ProbeResult:
    """Train a logistic-regression probe on frozen features of ``split.train`` and score it on ``split.eval``.

    ``C=None`` searches C by cross-validation. ``sweep`` also scores every layer x pooling from
    the same extraction; ``control`` adds the same probe on a randomly initialised encoder.
    ``progress(description)`` returns a context manager yielding a ``(done, total)`` callback.
    """
    from bertprobe import featcache

    layer = featcache.resolve_layer(lm, layer)
    if out is not None:
        check_out_directory(Path(out))  # before the work, not after it
    featcache.check_spec(lm, layer, pooling)
    labels = list(split.label_names)
    index = {label: i for i, label in enumerate(labels)}
    absent = [label for label in labels if label not in set(split.train.labels)]
    if absent or len(labels) < 2:
        raise DataError(
            f"the training set has no rows labelled {', '.join(map(repr, absent))}"
            if absent
            else "a probe needs at least two labels",
            # Not "a larger --max-train": its sample keeps every label, so a label is missing from the data itself.
            hint=f"Add training rows labelled {absent[0]!r}: a probe can only predict labels it was trained on."
            if absent
            else "Give training data with two or more labels.",
        )
    unnamed = sorted({label for label in split.train.labels + split.eval.labels if label not in index})
    if unnamed:
        # A Split built by hand: a row whose label the label list lacks has no class index to score against.
        raise DataError(
            f"rows are labelled {', '.join(map(repr, unnamed))}, which the split's labels "
            f"({', '.join(map(repr, labels))}) do not name",
            hint="A probe can only predict labels it was trained on; fix the labels or add the label to the list.",
        )
    train_y = [index[label] for label in split.train.labels]
    eval_y = [index[label] for label in split.eval.labels]
    texts = split.train.texts + split.eval.texts
    n_train = len(split.train)
    main = (layer, pooling)
    specs = [*sweep_specs(lm), main] if sweep else [main]
    specs = list(dict.fromkeys([main, *specs]))
    notices = list(getattr(split, "notes", []))
    overlap = eval_repeats(lm, split.train.texts, split.eval.texts)
    if overlap.repeated:
        # Repeated rows split to both sides, or overlapping files: the probe is scored on vectors it was trained on.
        loose = (
            f" ({overlap.loosely} of them differ from a training text only in spacing or in what {lm.name}'s "
            f"tokenizer normalises away{', such as case' if overlap.lowercases else ''})"
            if overlap.loosely
            else ""
        )
        notices.append(
            f"{overlap.repeated} of the {len(split.eval)} eval texts also occur in the training data{loose}: the "
            f"probe was trained on {'the same or almost the same' if overlap.loosely else 'their'} vectors, so its "
            "eval scores are optimistic (remove the repeated rows)"
        )

    with progress(f"features of {len(texts)} texts ({lm.name})") as update:
        found = featcache.pooled_features(lm, texts, specs, max_length, batch_size, update, use_cache)
    if found.truncated:
        notices.append(f"{found.truncated} text(s) longer than {found.max_length} word pieces were truncated")
    notices.extend(f"feature cache entry rebuilt: {why}" for why in found.cache.rebuilt)
    control_found = None
    if control:
        random_lm = featcache.random_encoder(lm, seed)
        with progress(f"features of {len(texts)} texts (randomly initialised {lm.name})") as update:
            control_found = featcache.pooled_features(
                random_lm, texts, specs, max_length, batch_size, update, use_cache
            )
        notices.extend(
            f"feature cache entry rebuilt (random-init control): {why}" for why in control_found.cache.rebuilt
        )

    def fit_and_score(matrix: Any, C: float) -> tuple[FittedProbe, Metrics]:
        """The one fit/evaluate step every probe here runs: train rows first, then the eval rows."""
        array = _as_numpy(matrix)
        fitted = fit_probe(array[:n_train], train_y, C, seed)
        return fitted, evaluate(eval_y, fitted.predict(array[n_train:]).tolist(), labels)

    started = time.perf_counter()
    c_search = None
    if C is None:
        c_search = search_C(_as_numpy(found.features[main])[:n_train], train_y, seed)
        C = c_search.chosen
    fitted, metrics = fit_and_score(found.features[main], C)
    if not fitted.converged:
        notices.append(f"the probe did not converge in {MAX_ITER} iterations; a smaller --C usually helps")
    baseline = majority_baseline(train_y, eval_y, labels)
    eval_majority = eval_majority_baseline(eval_y, labels, baseline)
    control_metrics = fit_and_score(control_found.features[main], C)[1] if control_found is not None else None

    cells = []
    for spec in specs if sweep else []:
        scored = metrics if spec == main else fit_and_score(found.features[spec], C)[1]
        cell = SweepCell(spec[0], spec[1], scored.accuracy, scored.macro_f1)
        if control_found is not None:
            against = control_metrics if spec == main else fit_and_score(control_found.features[spec], C)[1]
            cell.control_accuracy, cell.control_macro_f1 = against.accuracy, against.macro_f1
        cells.append(cell)
    cells.sort(key=lambda c: (c.layer, features_order(c.pooling)))
    train_seconds = time.perf_counter() - started

    seconds = {"extract": round(found.extract_seconds, 3), "train": round(train_seconds, 3)}
    if control_found is not None:
        seconds["extract_control"] = round(control_found.extract_seconds, 3)
    result = ProbeResult(
        model=lm.name,
        revision=lm.revision,
        source=lm.source,
        fingerprint=lm.fingerprint,
        task=task,
        data=DataSummary(
            source=split.source,
            train_size=n_train,
            eval_size=len(split.eval),
            train_counts=split.counts("train"),
            eval_counts=split.counts("eval"),
        ),
        labels=labels,
        layer=layer,
        num_layers=lm.num_layers,
        pooling=pooling,
        max_length=found.max_length,
        truncated=found.truncated,
        C=float(C),
        c_search=c_search,
        metrics=metrics,
        baseline=baseline,
        control=control_metrics,
        sweep=cells,
        cache_hits=found.cache.hits + (control_found.cache.hits if control_found else 0),
        cache_misses=found.cache.misses + (control_found.cache.misses if control_found else 0),
        cache_rebuilt=found.cache.rebuilt + (control_found.cache.rebuilt if control_found else []),
        seconds=seconds,
        notices=notices,
        eval_majority=eval_majority,
    )
    if out is not None:
        result.saved_to = str(save_trained(out, fitted, lm, result, seed))
    return result


def features_order(pooling: str) -> int:
    from bertprobe.features import POOLINGS

    return POOLINGS.index(pooling) if pooling in POOLINGS else len(POOLINGS)


def _dtype_name(lm: Any) -> str:
    return str(getattr(lm, "dtype", "float32")).removeprefix("torch.")


def save_trained(directory: str | Path, fitted: FittedProbe, lm: Any, result: ProbeResult, seed: int) -> Path:
    """Save a fitted probe with everything needed to use it again and to know what it is."""
    import datetime

    meta = {
        "model": lm.name,
        "revision": lm.revision,
        "fingerprint": lm.fingerprint,
        "source": lm.source,
        # A local checkpoint's absolute path, so cls-predict finds it from any working directory.
        "model_path": str(lm.path) if lm.source == "local" else None,
        "layer": result.layer,
        "num_layers": result.num_layers,
        "pooling": result.pooling,
        "max_length": result.max_length,
        # The features' precision: cls-predict at another dtype reads slightly other vectors (it says so).
        "dtype": _dtype_name(lm),
        "labels": result.labels,
        # The training mix is what the probe answers when it reads nothing: cls-predict's "cannot tell".
        "train_counts": result.data.train_counts,
        "C": result.C,
        "seed": seed,
        "task": result.task,
        "data": {
            "source": result.data.source,
            "train_size": result.data.train_size,
            "eval_size": result.data.eval_size,
        },
        "metrics": {
            "accuracy": result.metrics.accuracy,
            "macro_f1": result.metrics.macro_f1,
            "baseline_accuracy": result.baseline.accuracy,
            "control_accuracy": result.control.accuracy if result.control else None,
        },
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "packages": package_versions(),
    }
    classifier, scaler = fitted.classifier, fitted.scaler
    return save_probe(directory, classifier.coef_, classifier.intercept_, scaler.mean_, scaler.scale_, meta)


# --------------------------------------------------------------------------------------------
# Prediction with a saved probe.
# --------------------------------------------------------------------------------------------


@dataclass
class TextPrediction:
    text: str
    label: str
    probability: float
    probabilities: dict[str, float]
    truncated: bool = False  # longer than the probe's max_length: only its first pieces were read


@dataclass
class PredictResult(Rendered):
    """Labels and class probabilities a saved probe gives each text."""

    model: str
    revision: str | None
    probe: str
    layer: int
    pooling: str
    labels: list[str]
    predictions: list[TextPrediction]
    max_length: int = 0  # word pieces read per text (the probe's own)
    notices: list[str] = field(default_factory=list)
    # Each label's share of the probe's training rows (None: a probe saved before they were recorded).
    train_shares: dict[str, float] | None = None


def predict(lm: Any, probe: SavedProbe, texts: Sequence[str], batch_size: int = 32) -> PredictResult:
    """Run the probe's model, layer and pooling on ``texts``; the model must be the one it was trained on."""
    from bertprobe import featcache

    probe.check_model(lm)
    if not texts:
        raise InputError("no texts to classify", hint='e.g. bertprobe cls-predict runs/sst2 "a gripping film"')
    # An empty text is the bare [CLS] [SEP]: the probe never saw one, and its label for it would mean nothing.
    empty = next((number for number, text in enumerate(texts, start=1) if not text.strip()), None)
    if empty is not None:
        raise InputError(f"text {empty} is empty", hint="Give every text some words to classify.")
    spec = (probe.layer, probe.pooling)
    found = featcache.pooled_features(lm, texts, [spec], probe.max_length, batch_size, use_cache=False)
    probabilities = probe.probabilities(found.features[spec]).tolist()
    predictions = []
    for text, row in zip(texts, probabilities, strict=True):
        best = max(range(len(row)), key=row.__getitem__)
        cut = bool(found.truncated) and len(lm.tokenizer.encode(text)) > found.max_length
        predictions.append(
            TextPrediction(text, probe.labels[best], row[best], dict(zip(probe.labels, row, strict=True)), cut)
        )
    counts = probe.meta.get("train_counts")
    shares = {label: counts[label] / sum(counts.values()) for label in probe.labels} if counts else None
    notices = probe.tokenizer_notices()
    if found.truncated:
        notices.append(f"{found.truncated} text(s) longer than {found.max_length} word pieces were truncated")
    trained_at, now = probe.meta.get("dtype"), _dtype_name(lm)
    if trained_at and trained_at != now:
        # float16 features moved a float32 probe's probabilities by up to 0.04 on minilm: small, but not its numbers.
        notices.append(
            f"this probe was trained on {trained_at} features and reads {now} ones here: its probabilities can "
            f"differ by a few hundredths from the {trained_at} run (--dtype {trained_at} gives those)"
        )
    return PredictResult(
        model=lm.name,
        revision=lm.revision,
        probe=str(probe.directory) if probe.directory else "",
        layer=probe.layer,
        pooling=probe.pooling,
        labels=probe.labels,
        predictions=predictions,
        max_length=found.max_length,
        notices=notices,
        train_shares=shares,
    )
