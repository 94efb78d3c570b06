"""The word-sense probe: how one word's contextual vectors group by sense, layer by layer.

For every sentence the word's word pieces are found through offset mappings and their
hidden states pooled into one vector per layer (all layers come from one batched forward
pass). Two baselines sit beside the layers: the *static* vector, the raw input word-piece
embedding row (what a Word2Vec-like model gives: the same vector in every context), and the
*anisotropy* of the layer, the mean cosine between the word's vectors and other tokens'
vectors (Ethayarajh, 2019): BERT's vectors share a common direction, so a raw cosine of 0.6
can mean "unrelated". Mean-centred cosines subtract each layer's mean token vector first,
which removes that direction and makes numbers comparable across layers.

Sense statistics (1-nearest-neighbour accuracy, silhouette, k-means clusters) use the
mean-centred cosine; within / across / separation are given both raw and centred.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertprobe.errors import DataError, InputError
from bertprobe.layers import resolve_layer
from bertprobe.models import LoadedModel
from bertprobe.results import Rendered

POOLINGS = ("mean", "first", "last")
DATA_FILE = Path(__file__).parent / "data" / "senses.jsonl"
# Cosines closer than this count as a tie for the nearest neighbour (static vectors are all equal).
TIE = 1e-6
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SenseSentence:
    """One input sentence, its sense label if known, and where it came from."""

    text: str
    sense: str | None = None
    line: int | None = None
    source: str | None = None  # a file path; None for --sentence


@dataclass
class SenseSet:
    word: str
    senses: dict[str, int]  # sense -> number of sentences
    examples: dict[str, str]  # sense -> its first sentence


@dataclass
class SenseCatalog(Rendered):
    """The built-in sense-labelled sentence sets."""

    model: str | None
    revision: str | None
    path: str
    sets: list[SenseSet]


@dataclass
class SentenceVector:
    """Where the word was found in one sentence."""

    number: int  # 1-based, as shown
    text: str
    sense: str | None
    line: int | None
    start: int  # character span of the word in the text
    end: int
    pieces: list[int]  # word-piece positions ([CLS] is 0)
    wordpieces: list[str]
    cluster: int | None = None  # 1-based k-means cluster at the shown layer


@dataclass
class LayerStats:
    """Every number of one row of the per-layer table."""

    layer: int | None  # None: the static input embedding; 0: the embeddings layer output
    name: str
    mean_cosine: float  # over all sentence pairs
    mean_cosine_centred: float
    anisotropy: float | None  # mean cosine between the word's vectors and other tokens' vectors
    within: float | None = None  # mean cosine over same-sense pairs
    across: float | None = None  # mean cosine over different-sense pairs
    separation: float | None = None  # within - across
    within_centred: float | None = None
    across_centred: float | None = None
    separation_centred: float | None = None
    knn_accuracy: float | None = None  # leave-one-out 1-NN sense accuracy (centred cosine; ties share credit)
    # The same 1-NN over each sense's own sentences: a pooled 0.75 can be one sense at 1.00 and the other at 0.50.
    knn_by_sense: dict[str, float] | None = None
    silhouette: float | None = None  # of the sense labels, centred cosine distance
    cluster_silhouette: float | None = None  # of the k-means clusters at this layer (unlabelled sets)


@dataclass
class SenseBalance:
    """Where the word sits in one sense's sentences: the position confound, measured."""

    sense: str
    sentences: int
    mean_position: float  # word-piece index of the word's first piece ([CLS] is 0)
    mean_length: float  # word pieces in the sentence, [CLS] and [SEP] included
    positions: list[int]


@dataclass
class SenseResult(Rendered):
    model: str
    revision: str | None
    source: str
    word: str
    origin: str  # "built-in", a file path, or "--sentence"
    pool: str
    occurrence: int | None
    labelled: bool
    senses: list[str]
    num_layers: int
    hidden_size: int
    sentences: list[SentenceVector]
    layers: list[LayerStats]
    best_layer: int | None
    best_by: str
    shown_layer: int
    centred: bool  # whether the renderer shows the centred matrix
    matrix: list[list[float]]  # cosine between sentences at shown_layer
    matrix_centred: list[list[float]]
    clusters: int | None  # k of k-means, None when the sentences are too few to cluster
    cluster_agreement: float | None  # adjusted Rand index of clusters against senses
    split_word: bool  # whether the word splits into several word pieces anywhere
    # Whether the static row is one vector in every sentence; not when the word is written as other
    # word pieces somewhere (a cased model's "Bank" / "bank", byte-level BPE's "bank" / "Ġbank").
    static_identical: bool = True
    notices: list[str] = field(default_factory=list)
    # The same statistics computed from the word's position embedding alone (no word, no context):
    # what the embeddings layer knows besides the word itself. None where the model has no
    # absolute position embeddings.
    position_control: LayerStats | None = None
    balance: list[SenseBalance] = field(default_factory=list)  # per sense, when labelled
    # Leave-one-out 1-NN sense accuracy from (position, sentence length) alone; chance is about 0.5.
    position_length_knn: float | None = None


@dataclass
class WordVectors:
    """The word's pooled vectors and what the baselines need, for every layer.

    Row order of the layer axis: static input embedding, embeddings layer, layer 1 .. L.
    """

    sentences: list[SentenceVector]
    vectors: Any  # float64 [sentences, layers + 2, hidden]
    other_unit_sums: Any  # sum of unit-length other-token vectors per sentence [sentences, layers + 2, hidden]
    other_counts: Any  # number of those tokens per sentence [sentences]
    token_means: Any  # mean of every real token's vector per layer [layers + 2, hidden]
    positions: Any = None  # the word's pooled position embedding per sentence [sentences, hidden], or None
    position_mean: Any = None  # mean position embedding over every real token [hidden]
    lengths: list[int] = field(default_factory=list)  # word pieces per sentence, specials included


# ---------------------------------------------------------------------------- sentence sets


def _read_builtin() -> list[tuple[str, SenseSentence]]:
    from bertprobe.inputs import read_rows

    rows = read_rows(DATA_FILE, required=("word", "sense", "sentence"))
    return [
        (row.values["word"].lower(), SenseSentence(row.values["sentence"], row.values["sense"], row.line, None))
        for row in rows
    ]


def builtin_words() -> list[str]:
    return sorted({word for word, _ in _read_builtin()})


def catalog(model: str | None = None, revision: str | None = None) -> SenseCatalog:
    """The built-in sets: each word, its senses and how many sentences each has."""
    sets: dict[str, SenseSet] = {}
    for word, sentence in _read_builtin():
        entry = sets.setdefault(word, SenseSet(word, {}, {}))
        sense = sentence.sense or ""
        entry.senses[sense] = entry.senses.get(sense, 0) + 1
        entry.examples.setdefault(sense, sentence.text)
    return SenseCatalog(model, revision, str(DATA_FILE), [sets[w] for w in sorted(sets)])


def builtin(word: str) -> list[SenseSentence]:
    """The built-in sentences for ``word``; an unknown word is a user error that lists the known ones."""
    found = [s for w, s in _read_builtin() if w == word.strip().lower()]
    if not found:
        raise InputError(
            f"there is no built-in sentence set for {word!r}",
            hint=f"Built-in words: {', '.join(builtin_words())}. Give your own with -s/--sentence or --sentences FILE.",
        )
    return found


def read_sentences(path: str | Path, word: str | None) -> tuple[str, list[SenseSentence]]:
    """Sentences of a csv / tsv / jsonl file (``sentence``, optional ``sense`` and ``word`` columns).

    A file with a ``word`` column may hold several words: ``word`` picks its rows. Returns the
    word (taken from the file when it holds only one) and the sentences.
    """
    from bertprobe.inputs import read_rows

    try:
        rows = read_rows(path, required=("sentence",), optional=("sense", "word"))
    except DataError as err:
        if "no 'sentence' column" in err.message:
            raise DataError(
                err.message,
                hint="Name the column of sentences 'sentence'; an optional 'sense' column labels them "
                "and a 'word' column says which word each row is about.",
            ) from None
        raise
    source = str(path)
    file_words = {row.values["word"].lower() for row in rows if row.values.get("word")}
    if file_words:
        missing_word = [row for row in rows if not row.values.get("word")]
        if missing_word:
            raise DataError(
                f"{source}, line {missing_word[0].line}: empty 'word' (other rows of the file name theirs)",
                hint="Fill in the word, or delete the 'word' column if the file is about one word.",
            )
        if word is None:
            if len(file_words) > 1:
                raise InputError(
                    f"{source} holds sentences for several words ({', '.join(sorted(file_words))})",
                    hint="Name the one to probe: bertprobe sense WORD --sentences FILE.",
                )
            word = next(iter(file_words))
        rows = [row for row in rows if row.values["word"].lower() == word.strip().lower()]
        if not rows:
            raise InputError(
                f"{source} has no rows whose 'word' is {word!r} (it has {', '.join(sorted(file_words))})",
                hint="Pick one of the file's words, or fix the 'word' column.",
            )
    if word is None:
        raise InputError(
            "no word to probe: give WORD, or a 'word' column in the file",
            hint="bertprobe sense WORD --sentences FILE",
        )
    sentences = [
        SenseSentence(row.values["sentence"], row.values.get("sense") or None, row.line, source) for row in rows
    ]
    return word, sentences


def collect(
    word: str | None, sentences: Sequence[str] = (), path: str | Path | None = None
) -> tuple[str, list[SenseSentence], str]:
    """The word, its sentences and where they come from: --sentence texts, a file, or the built-in set."""
    gathered: list[SenseSentence] = []
    origins: list[str] = []
    if path is not None:
        word, from_file = read_sentences(path, word)
        gathered.extend(from_file)
        origins.append(str(path))
    if sentences:
        gathered.extend(SenseSentence(text) for text in sentences)
        origins.append("--sentence")
    if word is None or not word.strip():
        raise InputError(
            "no word to probe", hint="bertprobe sense WORD (see the built-in words with bertprobe sense --list)"
        )
    if not gathered:
        return word, builtin(word), "built-in"
    _require_two(gathered)
    return word, gathered, " + ".join(origins)


def _require_two(sentences: Sequence[SenseSentence]) -> None:
    if len(sentences) < 2:
        raise InputError(
            f"the sense probe compares sentences, but only {len(sentences)} sentence was given",
            hint="Give at least two: repeat -s/--sentence, or pass --sentences FILE.",
        )


# ---------------------------------------------------------------------------- locating the word


def _where(sentence: SenseSentence, number: int) -> str:
    if sentence.source is not None and sentence.line is not None:
        return f"sentence {number} ({sentence.source}, line {sentence.line})"
    if sentence.line is not None:
        return f"sentence {number} (line {sentence.line} of the built-in set)"
    return f"sentence {number}"


def _quote(text: str, width: int = 70) -> str:
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def locate(
    lm: LoadedModel, word: str, sentences: Sequence[SenseSentence], occurrence: int | None = None
) -> tuple[list[SentenceVector], list[str]]:
    """Find ``word`` (whole word, any case) in every sentence: its character span and word pieces.

    Raises an InputError naming the sentence (and its line) where the word is missing or too rare.
    """
    from bertprobe.errors import TextTooLongError
    from bertprobe.tokens import find_word, occurrences

    located: list[SentenceVector] = []
    repeated: list[int] = []
    shifted: list[str] = []
    limit = lm.tokenizer.model_max_length
    for number, sentence in enumerate(sentences, start=1):
        encoding = lm.tokenizer.encode(sentence.text)
        if len(encoding) > limit:
            raise TextTooLongError(
                f"{_where(sentence, number)} is {len(encoding)} word pieces long; {lm.name} reads at most {limit}",
                hint="Shorten the sentence: the probe only needs the word's context.",
            )
        matches = find_word(encoding, word)
        if not matches:
            inside = re.search(r"\w*" + re.escape(word.strip()) + r"\w*", sentence.text, re.IGNORECASE)
            # The word may stand alone in the text yet be read with its neighbours ("🙂bank" is one [UNK]).
            glued = [
                encoding.tokens[i]
                for i, (start, end) in enumerate(encoding.offsets)
                if inside and not encoding.special[i] and start < inside.end() and end > inside.start()
            ]
            if inside and glued and inside.group(0).lower() == word.strip().lower():
                hint = (
                    f"{lm.name} reads it together with the characters next to it (as {' '.join(glued)}), never "
                    "alone; put a space on each side of it, or remove the sentence."
                )
            elif inside:
                hint = (
                    f"Matching is whole-word and case-insensitive; it occurs only inside {inside.group(0)!r}. "
                    "Fix or remove the sentence."
                )
            else:
                hint = "Fix or remove the sentence, or check the spelling of the word."
            raise InputError(f"{word!r} does not occur in {_where(sentence, number)}: {_quote(sentence.text)}", hint)
        # --occurrence counts the word as written: find_word leaves out an occurrence the model never reads
        # alone, and counting only the others would make "occurrence 2" silently the third one written.
        if occurrence is not None:
            where = f"{_where(sentence, number)} ({_quote(sentence.text)})"
            match = find_word(encoding, word, occurrence, where=where)[0]
        else:
            match = matches[0]
            written = occurrences(encoding, word)
            if written[0].span is None:
                first = next(n for n, o in enumerate(written, start=1) if o.span is not None)
                shifted.append(f"occurrence {first} in sentence {number}")
            elif len(written) > 1:
                repeated.append(number)
        # A space-only piece that opens the word (byte-level BPE's "Ġ", SentencePiece's "▁" written alone) holds
        # none of its letters: --pool first would take it for the word, and mean would average it in.
        pieces = [
            i for i in match.pieces if encoding.text[encoding.offsets[i][0] : encoding.offsets[i][1]].strip()
        ] or list(match.pieces)
        located.append(
            SentenceVector(
                number=number,
                text=sentence.text,
                sense=sentence.sense,
                line=sentence.line,
                start=match.start,
                end=match.end,
                pieces=pieces,
                wordpieces=[encoding.tokens[i] for i in pieces],
            )
        )
    notices = []
    if shifted:
        listed = ", ".join(shifted[:8]) + (" ..." if len(shifted) > 8 else "")
        notices.append(
            f"the first {word!r} written is read together with the characters next to it, never alone; using the "
            f"first one read alone instead ({listed}; choose another with --occurrence N)"
        )
    if repeated:
        listed = ", ".join(str(n) for n in repeated[:8]) + (" ..." if len(repeated) > 8 else "")
        notices.append(
            f"{word!r} occurs more than once in sentence(s) {listed}; using the first occurrence "
            "(choose another with --occurrence N)"
        )
    return located, notices


def _pool(rows: Any, how: str) -> Any:
    if how == "mean":
        return rows.mean(axis=-2)
    if how == "first":
        return rows[..., 0, :]
    if how == "last":
        return rows[..., -1, :]
    raise InputError(f"unknown pooling {how!r}", hint=f"Choose one of {', '.join(POOLINGS)}.")


def word_vectors(
    lm: LoadedModel,
    word: str,
    sentences: Sequence[SenseSentence],
    pool: str = "mean",
    occurrence: int | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> tuple[WordVectors, list[str]]:
    """The word's vector in every sentence at every layer, plus the static input-embedding baseline."""
    import numpy as np
    import torch

    from bertprobe import features

    if pool not in POOLINGS:
        raise InputError(f"unknown pooling {pool!r}", hint=f"Choose one of {', '.join(POOLINGS)}.")
    located, notices = locate(lm, word, sentences, occurrence)
    extracted = features.extract(lm, [s.text for s in sentences], batch_size=batch_size, progress=progress)
    embedding = lm.input_embeddings().weight
    position_table = _position_table(lm)
    count = len(sentences)
    depth = lm.num_layers + 2
    vectors = np.zeros((count, depth, lm.hidden_size))
    unit_sums = np.zeros((count, depth, lm.hidden_size))
    other_counts = np.zeros(count)
    token_sums = np.zeros((depth, lm.hidden_size))
    token_count = 0
    # ALBERT and ELECTRA keep position embeddings narrower than the hidden size: _position_table has zero-padded
    # them to it, which leaves every cosine between positions as it was.
    width = position_table[0].shape[1] if position_table is not None else 0
    positions = np.zeros((count, width)) if position_table is not None else None
    position_sum = np.zeros(width)
    lengths: list[int] = []
    for item, where in zip(extracted, located, strict=True):
        encoding = item.encoding
        with torch.no_grad():
            static = embedding[torch.tensor(encoding.ids, device=embedding.device)].float().cpu()
        # ALBERT and ELECTRA embed words in fewer dimensions than their hidden states: zero-padding the
        # static vectors keeps every dot product, norm and distance, so the static row is unchanged.
        static = torch.nn.functional.pad(static, (0, lm.hidden_size - static.shape[-1]))
        # [layers + 2, tokens, hidden]: the static rows stacked in front of the contextual layers.
        states = torch.cat([static.unsqueeze(0), item.hidden_states], dim=0).double().numpy()
        vectors[where.number - 1] = _pool(states[:, where.pieces, :], pool)
        real = [i for i in range(len(encoding)) if not encoding.special[i]]
        others = [i for i in real if i not in where.pieces]
        lengths.append(len(encoding))
        if position_table is not None:
            table, offset = position_table
            rows = table[[i + offset for i in range(len(encoding))]]
            positions[where.number - 1] = _pool(rows[where.pieces], pool)
            position_sum += rows[real].sum(axis=0)
        token_sums += states[:, real, :].sum(axis=1)
        token_count += len(real)
        if others:
            rows = states[:, others, :]
            unit_sums[where.number - 1] = (rows / _norms(rows)).sum(axis=1)
            other_counts[where.number - 1] = len(others)
    split = sorted({" ".join(s.wordpieces) for s in located if len(s.wordpieces) > 1})
    if split:
        notices.append(
            f"{word!r} splits into several word pieces ({'; '.join(split[:3])}); "
            f"its vector is the {pool} of them (--pool mean|first|last)"
        )
    return (
        WordVectors(
            located,
            vectors,
            unit_sums,
            other_counts,
            token_sums / max(token_count, 1),
            positions,
            position_sum / max(token_count, 1) if positions is not None else None,
            lengths,
        ),
        notices,
    )


def _position_table(lm: LoadedModel) -> tuple[Any, int] | None:
    """The absolute position-embedding matrix (float64 numpy) and the row of position 0, or None."""
    import torch

    found = lm.backend.position_embeddings()
    if found is None:
        return None
    layer, offset = found
    with torch.no_grad():
        table = layer.weight.detach().double().cpu()
    # ALBERT / ELECTRA: positions embedded narrower than the hidden states; zero-padding keeps cosines.
    return torch.nn.functional.pad(table, (0, lm.hidden_size - table.shape[-1])).numpy(), offset


# ---------------------------------------------------------------------------- statistics


def _norms(rows: Any) -> Any:
    import numpy as np

    return np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


def cosine_matrix(vectors: Any) -> Any:
    """Pairwise cosine similarity of the rows of ``vectors`` [n, hidden]."""
    unit = vectors / _norms(vectors)
    return unit @ unit.T


def _pair_mean(matrix: Any, mask: Any) -> float | None:
    import numpy as np

    upper = np.triu(np.ones_like(mask, dtype=bool), k=1) & mask
    return float(matrix[upper].mean()) if upper.any() else None


def _knn_hits(similarity: Any, labels: Sequence[str]) -> list[float]:
    """Per sentence, the share of its nearest neighbours (leave-one-out; ties within TIE) with its label."""
    import numpy as np

    labels_arr = np.asarray(labels)
    scores = []
    for i in range(len(labels_arr)):
        others = np.arange(len(labels_arr)) != i
        sims = similarity[i][others]
        nearest = sims >= sims.max() - TIE
        scores.append(float((labels_arr[others][nearest] == labels_arr[i]).mean()))
    return scores


def knn_accuracy(similarity: Any, labels: Sequence[str]) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy; a tie for nearest shares its credit equally."""
    import numpy as np

    return float(np.mean(_knn_hits(similarity, labels)))


def knn_by_sense(similarity: Any, labels: Sequence[str]) -> dict[str, float]:
    """``knn_accuracy`` over each label's own sentences, labels in order of first appearance."""
    import numpy as np

    hits = _knn_hits(similarity, labels)
    return {
        label: float(np.mean([hit for hit, own in zip(hits, labels, strict=True) if own == label]))
        for label in dict.fromkeys(labels)
    }


def purity_by_chance(senses: Sequence[str], clusters: Sequence[int], draws: int = 2000) -> float:
    """Expected count of sentences in their cluster's majority sense if the senses were dealt at random.

    Cluster purity has a floor (any split leaves at least the largest sense's count "with its own
    sense"): this is the level a count must beat to mean anything. The cluster sizes are kept; the
    estimate is seeded, so the same run prints the same figure.
    """
    import numpy as np

    codes = np.unique(np.asarray(senses), return_inverse=True)[1]
    groups = np.unique(np.asarray(clusters), return_inverse=True)[1]
    rng = np.random.default_rng(0)
    total = 0
    for _ in range(draws):
        counts = np.zeros((groups.max() + 1, codes.max() + 1), dtype=int)
        np.add.at(counts, (groups, rng.permutation(codes)), 1)
        total += int(counts.max(axis=1).sum())
    return total / draws


def _distances(similarity: Any) -> Any:
    import numpy as np

    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    # Float noise between identical vectors must not pass for structure.
    distance[distance < TIE] = 0.0
    return distance


def silhouette(similarity: Any, labels: Sequence[Any]) -> float | None:
    """Mean silhouette with cosine distance; None where it is undefined (one label, or one per sentence)."""
    from sklearn.metrics import silhouette_score

    distinct = len(set(labels))
    if distinct < 2 or distinct > len(labels) - 1:
        return None
    return float(silhouette_score(_distances(similarity), list(labels), metric="precomputed"))


def _anisotropy(vectors: Any, unit_sums: Any, counts: Any) -> float | None:
    """Mean cosine between each sentence's word vector and the other tokens of the *other* sentences."""
    import numpy as np

    total_sum = unit_sums.sum(axis=0)
    total = counts.sum()
    values = []
    for i in range(len(vectors)):
        n_other = total - counts[i]
        if n_other <= 0:
            continue
        unit = vectors[i] / max(np.linalg.norm(vectors[i]), 1e-12)
        values.append(float(unit @ (total_sum - unit_sums[i]) / n_other))
    return float(np.mean(values)) if values else None


def _cluster(similarity_vectors: Any, k: int, seed: int, notices: list[str] | None = None) -> list[int]:
    """k-means on unit-length (centred) vectors; clusters numbered in order of first appearance.

    Fewer distinct vectors than ``k`` (repeated sentences) make scikit-learn warn; that becomes one
    bertprobe notice instead of a library warning on the terminal.
    """
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    unit = similarity_vectors / _norms(similarity_vectors)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        raw = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(unit)
    if notices is not None and any(issubclass(w.category, ConvergenceWarning) for w in caught):
        message = (
            f"the word's vectors take fewer than {k} distinct values at some layers (repeated sentences?): "
            f"k-means found fewer than {k} clusters there"
        )
        if message not in notices:
            notices.append(message)
    numbering: dict[int, int] = {}
    for label in raw:
        numbering.setdefault(int(label), len(numbering) + 1)
    return [numbering[int(label)] for label in raw]


def _layer_name(index: int) -> str:
    return "static" if index == 0 else "embeddings" if index == 1 else str(index - 1)


def probe(
    lm: LoadedModel,
    word: str,
    sentences: Sequence[SenseSentence],
    pool: str = "mean",
    occurrence: int | None = None,
    layer: int | None = None,
    clusters: int | None = None,
    seed: int = 0,
    origin: str = "--sentence",
    centred: bool = False,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> SenseResult:
    """Compare ``word``'s vectors across ``sentences`` at every layer, against the static and anisotropy baselines."""

    word = word.strip()
    if not word:
        raise InputError("the word to probe is empty", hint="bertprobe sense WORD")
    _require_two(sentences)
    if layer is not None:
        layer = resolve_layer(layer, lm.num_layers, lm.name)
    notices: list[str] = []
    labels = [s.sense for s in sentences]
    labelled_count = sum(label is not None for label in labels)
    if 0 < labelled_count < len(labels):
        blank = next(n for n, s in enumerate(sentences, start=1) if s.sense is None)
        raise InputError(
            f"{labelled_count} of {len(labels)} sentences have a sense label, "
            f"but {_where(sentences[blank - 1], blank)} has none",
            hint="Label every sentence (a 'sense' column) or none of them.",
        )
    senses = list(dict.fromkeys(label for label in labels if label is not None))  # in order of appearance
    labelled = len(senses) >= 2
    if labelled_count and not labelled:
        notices.append(f"every sentence has the same sense ({senses[0]!r}); treating them as unlabelled")
    k = clusters if clusters is not None else (len(senses) if labelled else 2)
    if clusters is not None and clusters >= len(sentences):
        raise InputError(
            f"--clusters {clusters} needs more than {clusters} sentences; {len(sentences)} were given",
            hint=f"Use --clusters between 2 and {len(sentences) - 1}, or give more sentences.",
        )
    can_cluster = k < len(sentences)
    if not can_cluster:
        notices.append(f"{len(sentences)} sentences are too few to cluster into {k} groups; no clusters shown")

    found, located_notices = word_vectors(lm, word, sentences, pool, occurrence, batch_size, progress)
    notices = located_notices + notices
    label_list = [label or "" for label in labels]

    stats: list[LayerStats] = []
    cluster_by_layer: dict[int, list[int]] = {}
    matrices: dict[int, tuple[Any, Any]] = {}
    for index in range(lm.num_layers + 2):
        vectors = found.vectors[:, index]
        centred_vectors = vectors - found.token_means[index]
        row, raw, centred_sim = _row_stats(
            None if index == 0 else index - 1,
            _layer_name(index),
            vectors,
            centred_vectors,
            _anisotropy(vectors, found.other_unit_sums[:, index], found.other_counts),
            label_list if labelled else None,
        )
        matrices[index] = (raw, centred_sim)
        if not labelled and can_cluster and index > 0:
            cluster_by_layer[index] = _cluster(centred_vectors, k, seed, notices)
            row.cluster_silhouette = silhouette(centred_sim, cluster_by_layer[index])
        stats.append(row)

    position_control = None
    if found.positions is not None:
        position_control, _, _ = _row_stats(
            None,
            "position",
            found.positions,
            found.positions - found.position_mean,
            None,
            label_list if labelled else None,
        )
    best_index, best_by = _best(stats, labelled)
    shown = layer + 1 if layer is not None else (best_index if best_index is not None else lm.num_layers + 1)
    assignment: list[int] | None = None
    agreement = None
    if can_cluster:
        assignment = cluster_by_layer.get(shown) or _cluster(
            found.vectors[:, shown] - found.token_means[shown], k, seed, notices
        )
        for sentence, cluster in zip(found.sentences, assignment, strict=True):
            sentence.cluster = cluster
        if labelled:
            from sklearn.metrics import adjusted_rand_score

            agreement = float(adjusted_rand_score(label_list, assignment))
    raw, centred_sim = matrices[shown]
    return SenseResult(
        **lm.describe(),
        word=word,
        origin=origin,
        pool=pool,
        occurrence=occurrence,
        labelled=labelled,
        senses=senses if labelled else [],
        num_layers=lm.num_layers,
        hidden_size=lm.hidden_size,
        sentences=found.sentences,
        layers=stats,
        best_layer=None if best_index is None else best_index - 1,
        best_by=best_by,
        shown_layer=shown - 1,
        centred=centred,
        matrix=raw.tolist(),
        matrix_centred=centred_sim.tolist(),
        clusters=k if can_cluster else None,
        cluster_agreement=agreement,
        split_word=any(len(s.wordpieces) > 1 for s in found.sentences),
        static_identical=_all_identical(found.vectors[:, 0]),
        notices=notices,
        position_control=position_control,
        balance=_balance(found, senses) if labelled else [],
        position_length_knn=_position_length_knn(found, label_list) if labelled else None,
    )


def _row_stats(
    layer: int | None,
    name: str,
    vectors: Any,
    centred_vectors: Any,
    anisotropy: float | None,
    labels: list[str] | None,
) -> tuple[LayerStats, Any, Any]:
    """One table row from the word's vectors in every sentence; also the raw and centred cosine matrices."""
    import numpy as np

    raw = cosine_matrix(vectors)
    centred_sim = cosine_matrix(centred_vectors)
    everything = np.ones(raw.shape, dtype=bool)
    row = LayerStats(
        layer=layer,
        name=name,
        mean_cosine=_pair_mean(raw, everything),
        mean_cosine_centred=_pair_mean(centred_sim, everything),
        anisotropy=anisotropy,
    )
    if labels is not None:
        same = np.equal.outer(np.asarray(labels), np.asarray(labels))
        row.within = _pair_mean(raw, same)
        row.across = _pair_mean(raw, ~same)
        row.within_centred = _pair_mean(centred_sim, same)
        row.across_centred = _pair_mean(centred_sim, ~same)
        if row.within is not None and row.across is not None:
            row.separation = row.within - row.across
            row.separation_centred = row.within_centred - row.across_centred
        # Identical vectors everywhere (the static row of a word spelled alike): every neighbour ties,
        # so a nearest-neighbour "accuracy" would only measure the tie-break. Leave it undefined.
        # The silhouette too: with every distance 0, scikit-learn's 0 would read as "the senses overlap".
        if not _all_identical(vectors):
            row.knn_accuracy = knn_accuracy(centred_sim, labels)
            row.knn_by_sense = knn_by_sense(centred_sim, labels)
            row.silhouette = silhouette(centred_sim, labels)
    return row, raw, centred_sim


def _all_identical(vectors: Any) -> bool:
    import numpy as np

    return bool(np.abs(vectors - vectors[:1]).max() <= TIE * max(float(np.abs(vectors).max()), 1.0))


def _balance(found: WordVectors, senses: list[str]) -> list[SenseBalance]:
    out = []
    for sense in senses:
        chosen = [(s.pieces[0], n) for s, n in zip(found.sentences, found.lengths, strict=True) if s.sense == sense]
        out.append(
            SenseBalance(
                sense=sense,
                sentences=len(chosen),
                mean_position=sum(p for p, _ in chosen) / len(chosen),
                mean_length=sum(n for _, n in chosen) / len(chosen),
                positions=[p for p, _ in chosen],
            )
        )
    return out


def _position_length_knn(found: WordVectors, labels: list[str]) -> float:
    """Leave-one-out 1-NN sense accuracy on (word position, sentence length): can the layout alone tell?"""
    import numpy as np

    features = np.array([[s.pieces[0], n] for s, n in zip(found.sentences, found.lengths, strict=True)], float)
    distance = np.abs(features[:, None, :] - features[None, :, :]).sum(axis=-1)
    return knn_accuracy(-distance, labels)


def _best(stats: list[LayerStats], labelled: bool) -> tuple[int | None, str]:
    """Index (into ``stats``) of the contextual layer where the senses (or clusters) stand most apart."""
    candidates = list(range(1, len(stats)))  # the static baseline never wins

    def pick(key: Callable[[LayerStats], float | None]) -> int | None:
        scored = [(key(stats[i]), i) for i in candidates if key(stats[i]) is not None]
        if not scored:
            return None
        top = max(score for score, _ in scored)
        return min(i for score, i in scored if score >= top - 1e-12)  # the earliest layer among equals

    if not labelled:
        # Without sense labels there is nothing to be "best" at: the clusters could be any split.
        return None, ""
    index = pick(lambda s: s.silhouette)
    if index is not None:
        return index, "silhouette of the senses (mean-centred cosine)"
    index = pick(lambda s: s.separation_centred)
    return index, "separation of the senses (mean-centred cosine)" if index is not None else ""
