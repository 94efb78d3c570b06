"""sense: the word's vectors and every cosine equal a plain transformers computation; errors are one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bertprobe import sense

RIVER = [
    "Otters slid down the bank into the cold river.",
    "We fished from the bank of the canal all afternoon.",
    "Reeds grew thickly along the bank of the lake.",
]
MONEY = [
    "The bank charged me a fee for the transfer.",
    "She opened a savings account at the bank downtown.",
    "The bank refused to lend the company more money.",
]


# ---------------------------------------------------------------------------- an independent reference


@pytest.fixture(scope="module")
def reference(minilm_path):
    """Plain transformers: AutoTokenizer offsets, AutoModel hidden states, the word's pieces by regex."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path))
    model = AutoModel.from_pretrained(str(minilm_path)).eval()

    def run(word: str, texts: list[str], pool: str = "mean", occurrence: int = 1):
        """[sentences, layers + 2, hidden] word vectors (static first), and each sentence's other tokens."""
        vectors, others, tokens = [], [], []
        for text in texts:
            match = list(re.finditer(rf"\b{re.escape(word)}\b", text, re.IGNORECASE))[occurrence - 1]
            enc = tokenizer(text, return_offsets_mapping=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping")[0].tolist()
            with torch.no_grad():
                out = model(**enc, output_hidden_states=True)
            static = model.embeddings.word_embeddings.weight.detach()[enc["input_ids"][0]]
            layers = torch.stack([static, *[h[0] for h in out.hidden_states]]).double()  # [L + 2, T, H]
            pieces = [i for i, (s, e) in enumerate(offsets) if e > s and s < match.end() and e > match.start()]
            chosen = layers[:, pieces]
            pooled = {"mean": chosen.mean(1), "first": chosen[:, 0], "last": chosen[:, -1]}[pool]
            real = [i for i, (s, e) in enumerate(offsets) if e > s]  # [CLS] and [SEP] span (0, 0)
            vectors.append(pooled)
            tokens.append(layers[:, real])
            others.append(layers[:, [i for i in real if i not in pieces]])
        return torch.stack(vectors).numpy(), others, tokens

    return run


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _pairs(n):
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


@pytest.fixture(scope="module")
def bank_json(minilm_path):
    from typer.testing import CliRunner

    from bertprobe.cli import app

    result = CliRunner().invoke(app, ["sense", "bank", "--model", "minilm", "--json", "--layer", "3"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_builtin_bank_vectors_and_cosines_equal_transformers(bank_json, reference):
    doc = bank_json
    texts = [s["text"] for s in doc["sentences"]]
    senses = [s["sense"] for s in doc["sentences"]]
    assert doc["model"] == "minilm" and "revision" in doc and doc["seed"] == 0
    vectors, others, tokens = reference("bank", texts)
    n, depth = vectors.shape[:2]
    assert depth == 6 + 2 and len(doc["layers"]) == depth
    for index, row in enumerate(doc["layers"]):
        assert row["layer"] == (None if index == 0 else index - 1)
        v = vectors[:, index]
        cos = np.array([[_cos(v[i], v[j]) for j in range(n)] for i in range(n)])
        same = [(i, j) for i, j in _pairs(n) if senses[i] == senses[j]]
        diff = [(i, j) for i, j in _pairs(n) if senses[i] != senses[j]]
        assert row["within"] == pytest.approx(np.mean([cos[p] for p in same]), abs=1e-4)
        assert row["across"] == pytest.approx(np.mean([cos[p] for p in diff]), abs=1e-4)
        assert row["separation"] == pytest.approx(row["within"] - row["across"], abs=1e-9)
        # Anisotropy: the word against every other real token of the other sentences, brute force.
        per_sentence = []
        for i in range(n):
            sims = [_cos(v[i], t) for j in range(n) if j != i for t in others[j][index].numpy()]
            per_sentence.append(np.mean(sims))
        assert row["anisotropy"] == pytest.approx(np.mean(per_sentence), abs=1e-4)
        # Mean-centred: subtract the mean of every real token at this layer (the word's pieces included).
        mean = torch.cat([t[index] for t in tokens]).mean(0).numpy()
        centred = np.array([[_cos(v[i] - mean, v[j] - mean) for j in range(n)] for i in range(n)])
        assert row["within_centred"] == pytest.approx(np.mean([centred[p] for p in same]), abs=1e-4)
        assert row["across_centred"] == pytest.approx(np.mean([centred[p] for p in diff]), abs=1e-4)
        # Leave-one-out 1-NN on the centred cosine (the static row is one big tie: credit is shared).
        hits = []
        for i in range(n):
            best = max(centred[i, j] for j in range(n) if j != i)
            tied = [j for j in range(n) if j != i and centred[i, j] >= best - 1e-6]
            hits.append(np.mean([senses[j] == senses[i] for j in tied]))
        if index == 0:  # identical static vectors: a nearest neighbour would only measure the tie-break
            assert row["knn_accuracy"] is None and row["knn_by_sense"] is None
        else:
            assert row["knn_accuracy"] == pytest.approx(np.mean(hits), abs=1e-6)
            assert list(row["knn_by_sense"]) == doc["senses"]
            for label, figure in row["knn_by_sense"].items():
                own = [hit for hit, other in zip(hits, senses, strict=True) if other == label]
                assert figure == pytest.approx(np.mean(own), abs=1e-6)
        if index > 0:
            from sklearn.metrics import silhouette_score

            distance = np.clip(1 - centred, 0, None)
            np.fill_diagonal(distance, 0)
            assert row["silhouette"] == pytest.approx(
                silhouette_score(distance, senses, metric="precomputed"), abs=1e-4
            )
        if index == 4:  # --layer 3: the matrix shown
            np.testing.assert_allclose(doc["matrix"], cos, atol=1e-4)
            np.testing.assert_allclose(doc["matrix_centred"], centred, atol=1e-4)
    assert doc["shown_layer"] == 3


def test_bank_senses_separate_at_the_best_layer_unlike_the_static_embedding(bank_json):
    layers = {row["layer"]: row for row in bank_json["layers"]}
    best = layers[bank_json["best_layer"]]
    assert bank_json["best_layer"] in range(1, 7)
    assert best["within"] > best["across"]
    assert best["within_centred"] > best["across_centred"]
    assert best["knn_accuracy"] > 0.9
    # The static vector is the same in every sentence: no separation, and no nearest neighbour to speak of.
    static = layers[None]
    assert static["within"] == pytest.approx(1.0) and static["across"] == pytest.approx(1.0)
    assert static["knn_accuracy"] is None
    assert best["silhouette"] == max(r["silhouette"] for r in bank_json["layers"][1:])


def test_word_vectors_api_matches_transformers_for_first_and_last_pieces(minilm_path, reference):
    from bertprobe import models

    lm = models.load("minilm", device="cpu")
    texts = ["My echolocation app failed.", "Bats use echolocation at night, as do whales."]
    for pool in ("first", "last", "mean"):
        found, notices = sense.word_vectors(lm, "echolocation", [sense.SenseSentence(t) for t in texts], pool=pool)
        expected, _, _ = reference("echolocation", texts, pool=pool)
        np.testing.assert_allclose(found.vectors, expected, atol=1e-4)
        assert found.sentences[0].wordpieces == ["echo", "##lo", "##cation"]
        assert any("splits into several word pieces" in n for n in notices)


def test_occurrence_picks_the_later_word(cli, minilm_path, reference):
    texts = ["The bank by the bank of the river.", "I walked from one bank to the other bank."]
    code, stdout, stderr = cli("sense", "bank", "-s", texts[0], "-s", texts[1], "-m", "minilm", "--json")
    assert code == 0 and "more than once" in stderr
    first = json.loads(stdout)
    code, stdout, _ = cli("sense", "bank", "-s", texts[0], "-s", texts[1], "-m", "minilm", "--occurrence", 2, "--json")
    second = json.loads(stdout)
    assert [s["start"] for s in first["sentences"]] == [t.find("bank") for t in texts]
    assert [s["start"] for s in second["sentences"]] == [t.rfind("bank") for t in texts]
    vectors, _, _ = reference("bank", texts, occurrence=2)
    for row in second["layers"]:
        index = 0 if row["layer"] is None else row["layer"] + 1
        assert row["mean_cosine"] == pytest.approx(_cos(vectors[0, index], vectors[1, index]), abs=1e-4)


def test_unlabelled_sentences_cluster_by_sense(cli, minilm_path):
    args = [a for text in RIVER + MONEY for a in ("-s", text)]
    code, stdout, _ = cli("sense", "bank", *args, "-m", "minilm", "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["labelled"] is False and doc["clusters"] == 2
    clusters = [s["cluster"] for s in doc["sentences"]]
    assert clusters == [1, 1, 1, 2, 2, 2]
    assert all(r["within"] is None for r in doc["layers"])  # no senses: no within / across
    code, table, _ = cli("sense", "bank", *args, "-m", "minilm")
    assert "k-means clusters (k = 2)" in table and "c2" in table


# ---------------------------------------------------------------------------- input files


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_files_with_word_and_sense_columns(cli, minilm_path, tmp_path, suffix):
    rows = [("bank", "river", t) for t in RIVER] + [("bank", "money", t) for t in MONEY]
    rows.append(("spring", "season", "Spring came early."))
    path = tmp_path / f"senses{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"word": w, "sense": s, "sentence": t}) + "\n" for w, s, t in rows))
    else:
        sep = "\t" if suffix == ".tsv" else ","
        path.write_text(f"word{sep}sense{sep}sentence\n" + "".join(f"{w}{sep}{s}{sep}{t}\n" for w, s, t in rows))
    code, stdout, _ = cli("sense", "BANK", "--sentences", path, "-m", "minilm", "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["senses"] == ["river", "money"] and len(doc["sentences"]) == 6
    assert [s["line"] for s in doc["sentences"]] == ([1, 2, 3, 4, 5, 6] if suffix == ".jsonl" else [2, 3, 4, 5, 6, 7])
    code, _, stderr = cli("sense", "--sentences", path, "-m", "minilm")
    assert code == 1 and "several words (bank, spring)" in stderr


def test_example_file_runs(cli, minilm_path):
    example = Path(__file__).resolve().parents[1] / "examples" / "senses_custom.csv"
    code, stdout, _ = cli("sense", "light", "--sentences", example, "-m", "minilm", "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["senses"] == ["brightness", "weight"]
    assert all(s["text"][s["start"] : s["end"]].lower() == "light" for s in doc["sentences"])


# ---------------------------------------------------------------------------- errors: one line, exit 1


def _one_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error:") and "Traceback" not in stderr
    return lines[0]


def test_word_missing_names_the_sentence_and_line(cli, tiny_encoder_path, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("sentence,sense\nThe bank was closed.,money\nThe banks were muddy.,river\n")
    code, stdout, stderr = cli("sense", "bank", "--sentences", path, "-m", tiny_encoder_path)
    assert code == 1 and stdout == ""
    line = _one_error(stderr)
    assert "sentence 2" in line and "line 3" in line and "The banks were muddy." in line
    assert "inside 'banks'" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "one bank only"], "only 1 sentence"),
        (["--clusters", 5, "-s", "a bank", "-s", "the bank"], "--clusters 5 needs more than 5 sentences"),
        (["--layer", 3, "-s", "a bank", "-s", "the bank"], "--layer 3 does not exist"),
        (["--occurrence", 2, "-s", "a bank", "-s", "the bank"], "occurs 1 time(s) in sentence 1"),
        (["--plot", "out.gif", "-s", "a bank", "-s", "the bank"], "unknown image type '.gif'"),
    ],
)
def test_user_errors_are_one_line(cli, tiny_encoder_path, args, message):
    code, stdout, stderr = cli("sense", "bank", *args, "-m", tiny_encoder_path)
    assert code == 1 and stdout == ""
    assert message in _one_error(stderr)


def test_file_without_sentence_column(cli, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("text,sense\nThe bank was closed.,money\n")
    code, _, stderr = cli("sense", "bank", "--sentences", path, "-m", "minilm")
    assert code == 1
    assert "no 'sentence' column" in _one_error(stderr) and "hint:" in stderr


def test_mixed_labels_and_unknown_builtin_word(cli, tmp_path, tiny_encoder_path):
    path = tmp_path / "s.jsonl"
    path.write_text('{"sentence": "a bank", "sense": "money"}\n{"sentence": "the bank"}\n')
    code, _, stderr = cli("sense", "bank", "--sentences", path, "-m", tiny_encoder_path)
    assert code == 1 and "line 2" in _one_error(stderr) and "has none" in stderr
    code, _, stderr = cli("sense", "kettle")
    assert code == 1 and "no built-in sentence set for 'kettle'" in _one_error(stderr)


# ---------------------------------------------------------------------------- output


def test_table_escapes_user_text_and_plot_is_written(cli, tiny_encoder_path, tmp_path):
    plot = tmp_path / "bank.png"
    texts = ["The [bold]bank[/bold] [unused0] closed.", "A bank of the river.", "My bank lends money."]
    args = [a for t in texts for a in ("-s", t)]
    code, stdout, stderr = cli("sense", "bank", *args, "-m", tiny_encoder_path, "--plot", plot, "--centred")
    assert code == 0
    assert "[bold]" in stdout and "[unused0]" in stdout
    assert "mean-centred cosine between" in stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    assert "wrote" in stderr


def test_list_shows_every_builtin_set(cli):
    code, stdout, _ = cli("sense", "--list", "--json")
    assert code == 0
    sets = json.loads(stdout)["sets"]
    assert len(sets) >= 10
    for entry in sets:
        assert len(entry["senses"]) >= 2 and min(entry["senses"].values()) >= 5
    code, table, _ = cli("sense", "--list")
    assert all(entry["word"] in table for entry in sets)


def test_builtin_sentences_hold_their_word_once_and_are_distinct():
    rows = [json.loads(line) for line in sense.DATA_FILE.read_text().splitlines() if line.strip()]
    assert len({r["sentence"] for r in rows}) == len(rows)
    for row in rows:
        assert len(re.findall(rf"\b{row['word']}\b", row["sentence"], re.IGNORECASE)) == 1, row


# ---------------------------------------------------------------------------- the position confound


def _layout(minilm_path):
    """Per built-in word and sense: (word-piece index of the word, sentence length) from the plain tokenizer."""
    from collections import defaultdict

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm_path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    layout: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
    for line in sense.DATA_FILE.read_text().splitlines():
        row = json.loads(line)
        encoding = tokenizer.encode(row["sentence"])
        match = re.search(rf"\b{row['word']}\b", row["sentence"], re.IGNORECASE)
        first = next(i for i, (s, e) in enumerate(encoding.offsets) if e > s and s < match.end() and e > match.start())
        layout[row["word"]][row["sense"]].append((first, len(encoding.ids)))
    return layout


def test_builtin_sets_are_balanced_so_position_cannot_give_the_sense_away(minilm_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneOut, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    layout = _layout(minilm_path)
    assert len(layout) >= 10
    for word, senses in layout.items():
        means = {s: np.mean(rows, axis=0) for s, rows in senses.items()}
        (pos_a, len_a), (pos_b, len_b) = means.values()
        assert abs(pos_a - pos_b) <= 1.0, (word, means)
        assert abs(len_a - len_b) <= 1.5, (word, means)
        features = np.array([row for rows in senses.values() for row in rows], dtype=float)
        labels = [s for s, rows in senses.items() for _ in rows]
        for classifier in (LogisticRegression(), KNeighborsClassifier(n_neighbors=1)):
            accuracy = cross_val_score(classifier, features, labels, cv=LeaveOneOut()).mean()
            assert accuracy <= 0.7, (word, type(classifier).__name__, accuracy)


def test_position_control_row_is_the_position_embedding_and_separates_nothing(bank_json, minilm_path):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path))
    table = AutoModel.from_pretrained(str(minilm_path)).embeddings.position_embeddings.weight.detach().double()
    sentences = bank_json["sentences"]
    vectors = table[[s["pieces"][0] for s in sentences]].numpy()  # 'bank' is one word piece
    assert all(len(s["pieces"]) == 1 for s in sentences)
    senses = [s["sense"] for s in sentences]
    pairs = _pairs(len(sentences))
    control = bank_json["position_control"]
    same = [_cos(vectors[i], vectors[j]) for i, j in pairs if senses[i] == senses[j]]
    diff = [_cos(vectors[i], vectors[j]) for i, j in pairs if senses[i] != senses[j]]
    assert control["within"] == pytest.approx(np.mean(same), abs=1e-6)
    assert control["across"] == pytest.approx(np.mean(diff), abs=1e-6)
    # Balanced sets: position alone is no better than chance, the contextual layers are far better.
    assert control["knn_accuracy"] <= 0.5 and bank_json["position_length_knn"] <= 0.6
    best = next(r for r in bank_json["layers"] if r["layer"] == bank_json["best_layer"])
    assert best["knn_accuracy"] >= 0.9
    lengths = [len(tokenizer(s["text"])["input_ids"]) for s in sentences]
    for entry in bank_json["balance"]:
        chosen = [i for i, s in enumerate(senses) if s == entry["sense"]]
        assert entry["mean_length"] == pytest.approx(np.mean([lengths[i] for i in chosen]))
        assert entry["mean_position"] == pytest.approx(np.mean([sentences[i]["pieces"][0] for i in chosen]))


def test_table_reads_out_the_result_for_a_learner(cli, minilm_path):
    code, table, _ = cli("sense", "bank", "-m", "minilm")
    assert code == 0
    squashed = " ".join(table.split())
    # Layer 1's pooled 1-NN is 0.75, but river sentences alone reach 0.67: the reading may not claim river.
    assert "From layer 1 on, the nearest neighbour of 'bank' mostly has the same sense" in squashed
    assert "river sentences have a river nearest neighbour only 0.67 of the time (layer 1)" in squashed
    assert "'bank' in river sentences is closer" not in squashed
    assert "position alone scores 1-NN" in squashed and "does not give the sense away" in squashed
    static = next(line for line in table.splitlines() if line.strip().startswith("static"))
    assert "–" in static  # no nearest neighbour among identical vectors
    assert "adjusted Rand" not in table and "aniso." not in table  # expert columns wait for --details
    code, detailed, _ = cli("sense", "bank", "-m", "minilm", "--details", "--explain")
    assert code == 0
    assert "adjusted Rand 1.00" in detailed and "aniso." in detailed and "gap°" in detailed
    assert "'bank' at word piece (mean): river 8.8, money 8.8" in " ".join(detailed.split())
    assert "take each sentence, find the one whose vector is most similar" in " ".join(detailed.split())


def test_unlabelled_sentences_have_no_best_layer(cli, minilm_path):
    args = [a for text in RIVER + MONEY for a in ("-s", text)]
    code, stdout, _ = cli("sense", "bank", *args, "-m", "minilm", "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["best_layer"] is None and doc["shown_layer"] == 6 and doc["position_control"]["within"] is None
    _, table, _ = cli("sense", "bank", *args, "-m", "minilm")
    assert "★" not in table and "Without sense labels" in table


def test_position_control_counts_roberta_positions_from_its_padding_offset(cli, tiny_roberta_path):
    from transformers import AutoModel, AutoTokenizer

    texts = ["a river bank is muddy", "a money bank is busy", "the bank sat on the mat"]
    args = [a for text in texts for a in ("-s", text)]
    code, stdout, stderr = cli("sense", "bank", *args, "-m", tiny_roberta_path, "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_roberta_path))
    model = AutoModel.from_pretrained(str(tiny_roberta_path))
    table = model.embeddings.position_embeddings.weight.detach().double().numpy()
    offset = model.config.pad_token_id + 1  # RoBERTa numbers positions from padding_idx + 1
    vectors = []
    for sentence in doc["sentences"]:
        ids = tokenizer(sentence["text"])["input_ids"]
        assert len(ids) > max(sentence["pieces"])
        vectors.append(table[[p + offset for p in sentence["pieces"]]].mean(axis=0))
    expected = np.mean([_cos(vectors[i], vectors[j]) for i, j in _pairs(len(vectors))])
    assert doc["position_control"]["mean_cosine"] == pytest.approx(expected, abs=1e-6)


def test_reading_warns_when_position_gives_the_sense_away(cli, minilm_path, tmp_path):
    path = tmp_path / "skewed.csv"
    river = ["Bank of the river was muddy.", "Bank of the stream was steep.", "Bank of the lake was green."]
    money = [
        "I paid the cheque in at the bank.",
        "She borrowed the money from the bank.",
        "We opened a savings account at the bank.",
    ]
    path.write_text(
        "sentence,sense\n" + "".join(f"{t},river\n" for t in river) + "".join(f"{t},money\n" for t in money)
    )
    code, stdout, _ = cli("sense", "bank", "--sentences", path, "-m", "minilm", "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert doc["position_length_knn"] == 1.0 and doc["position_control"]["knn_accuracy"] == 1.0
    _, table, _ = cli("sense", "bank", "--sentences", path, "-m", "minilm")
    squashed = " ".join(table.split())
    assert "POSITION ALONE already predicts the sense" in squashed and "Careful:" in squashed


def test_reading_does_not_call_the_static_row_one_vector_when_the_word_pieces_differ(cli, tiny_roberta_path, tmp_path):
    # Byte-level BPE writes "bank" at the start of a text as other pieces than " bank" after a space.
    path = tmp_path / "spelled.csv"
    rows = ["bank is muddy,river", "a river bank is muddy,river", "bank is busy,money", "a money bank is busy,money"]
    path.write_text("sentence,sense\n" + "".join(f"{row}\n" for row in rows))
    code, stdout, _ = cli("sense", "bank", "--sentences", path, "-m", tiny_roberta_path, "--json")
    assert code == 0
    doc = json.loads(stdout)
    assert len({" ".join(s["wordpieces"]) for s in doc["sentences"]}) == 2
    assert doc["static_identical"] is False and doc["layers"][0]["within"] < 0.999
    _, table, _ = cli("sense", "bank", "--sentences", path, "-m", tiny_roberta_path)
    squashed = " ".join(table.split())
    assert "is the same vector in every sentence" not in squashed and "differs only by its position" not in squashed
    assert "'bank' is not the same input in every sentence" in squashed
    assert json.loads(cli("sense", "bank", "-m", "minilm", "--json")[1])["static_identical"] is True


def test_reading_gives_no_verdict_when_a_sense_has_one_sentence(cli, minilm_path, tmp_path):
    # The one money sentence can never have a money neighbour: 1-NN tops out at 2/3, below any bar.
    path = tmp_path / "three.csv"
    path.write_text(f"sentence,sense\n{RIVER[0]},river\n{RIVER[1]},river\n{MONEY[0]},money\n")
    code, table, _ = cli("sense", "bank", "--sentences", path, "-m", "minilm")
    assert code == 0
    squashed = " ".join(table.split())
    assert "do not separate them" not in squashed and "does not give the sense away" not in squashed
    assert "'money' have one sentence only" in squashed


@pytest.fixture(scope="module")
def bank_result(minilm_path):
    from bertprobe import models

    lm = models.load("minilm", device="cpu")
    return sense.probe(lm, "bank", sense.builtin("bank"))


def _with_knn(result, knn, senses=None):
    """``result`` with every contextual layer's 1-NN replaced (and the sentences' senses, if given)."""
    import dataclasses

    layers = [
        dataclasses.replace(s, knn_accuracy=knn[s.layer - 1]) if s.layer is not None and s.layer >= 1 else s
        for s in result.layers
    ]
    sentences = result.sentences
    if senses is not None:
        sentences = [dataclasses.replace(s, sense=label) for s, label in zip(sentences, senses, strict=True)]
    return dataclasses.replace(result, layers=layers, sentences=sentences)


def test_reading_names_the_layers_that_separate_even_when_the_last_does_not(bank_result):
    from bertprobe.render.sense import readings

    assert all(s.separation_centred > 0 for s in bank_result.layers if s.layer is not None and s.layer >= 1)
    dipped = _with_knn(bank_result, [0.5, 1.0, 1.0, 1.0, 1.0, 0.5])
    text = " ".join(readings(dipped))
    assert "No layer keeps the senses" not in text
    assert "At layer(s) 2, 3, 4, 5, 'bank' in river sentences is closer" in text


def test_reading_bar_rises_with_chance_for_uneven_senses(bank_result):
    from bertprobe.render.sense import _chance, readings

    # 10 river and 2 money sentences: picking a neighbour at random finds the same sense 70% of the time.
    uneven = _with_knn(bank_result, [0.8] * 6, senses=["river"] * 10 + ["money"] * 2)
    assert _chance(uneven) == pytest.approx(92 / 132)
    text = " ".join(readings(uneven))
    assert "From layer" not in text and "No layer keeps the senses of 'bank' clearly apart" in text
    even = _with_knn(bank_result, [0.8] * 6)
    assert "From layer 1 on" in " ".join(readings(even))


def _with_sense_knn(result, by_layer):
    """``result`` with each contextual layer's per-sense 1-NN set from ``by_layer`` (a list, layer 1 first),
    and its pooled 1-NN the mean of them (the senses are 6 + 6)."""
    import dataclasses

    layers = [
        dataclasses.replace(s, knn_by_sense=by_layer[s.layer - 1], knn_accuracy=sum(by_layer[s.layer - 1].values()) / 2)
        if s.layer is not None and s.layer >= 1
        else s
        for s in result.layers
    ]
    return dataclasses.replace(result, layers=layers)


def test_knn_by_sense_splits_a_pooled_score_that_hides_a_weak_sense():
    # Money sentences all find a money neighbour; half the river sentences find a money one.
    labels = ["money"] * 6 + ["river"] * 6
    similarity = np.zeros((12, 12))
    similarity[:6, :6] = 0.9  # money among money
    similarity[6:9, 6:9] = 0.9  # three river sentences among themselves
    for river in range(9, 12):  # the other three: nearer a money sentence than to anything else
        similarity[river, river - 9] = similarity[river - 9, river] = 0.8
    np.fill_diagonal(similarity, 1.0)
    assert sense.knn_accuracy(similarity, labels) == pytest.approx(0.75)
    assert sense.knn_by_sense(similarity, labels) == {"money": 1.0, "river": 0.5}
    vectors = np.random.default_rng(0).normal(size=(12, 8))
    row, _, _ = sense._row_stats(1, "1", vectors, vectors, None, labels)
    assert set(row.knn_by_sense) == {"money", "river"}
    same, _, _ = sense._row_stats(None, "static", np.ones((12, 8)), np.ones((12, 8)), None, labels)
    assert same.knn_accuracy is None and same.knn_by_sense is None  # identical vectors: no neighbour


def test_reading_names_the_sense_that_falls_short_instead_of_claiming_it(bank_result):
    from bertprobe.render.sense import readings

    # Pooled 0.75 at every layer (the bar), but river reaches only 0.50 at layer 2.
    weak = [{"river": 0.75, "money": 0.75}, {"river": 0.5, "money": 1.0}] + [{"river": 0.67, "money": 0.83}] * 4
    text = " ".join(readings(_with_sense_knn(bank_result, weak)))
    assert "river sentences is closer" not in text
    assert "From layer 1 on, the nearest neighbour of 'bank' mostly has the same sense (1-NN at least 0.75" in text
    assert "river sentences have a river nearest neighbour only 0.50 of the time (layer 2)" in text
    assert "money sentences have" not in text  # money clears the bar everywhere


def test_reading_for_separating_layers_names_the_short_sense_where_it_is_lowest(bank_result):
    from bertprobe.render.sense import readings

    strong = {"river": 1.0, "money": 1.0}
    low = {"river": 0.5, "money": 0.5}
    # Layers 2 and 3 separate (pooled 0.75 and 1.00), the last does not; money lags at layer 2.
    dipped = [low, {"river": 1.0, "money": 0.5}, strong, low, low, low]
    text = " ".join(readings(_with_sense_knn(bank_result, dipped)))
    assert "At layer(s) 2, 3, the nearest neighbour of 'bank' mostly has the same sense" in text
    assert "money sentences have a money nearest neighbour only 0.50 of the time (layer 2)" in text
    assert "river sentences have" not in text


def test_reading_keeps_its_wording_when_every_sense_clears_the_bar(bank_result):
    from bertprobe.render.sense import readings

    lines = readings(_with_sense_knn(bank_result, [{"river": 0.75, "money": 1.0}] * 6))
    assert lines[0] == (
        "From layer 1 on, 'bank' in river sentences is closer to other river sentences than to money ones "
        "(1-NN at least 0.75, chance 0.45); clearest at layer 5: the vector now carries the sense, taken from context."
    )
    dipped = [{"river": 0.5, "money": 0.5}] + [{"river": 1.0, "money": 1.0}] * 4 + [{"river": 0.5, "money": 0.5}]
    assert "At layer(s) 2, 3, 4, 5, 'bank' in river sentences is closer" in " ".join(
        readings(_with_sense_knn(bank_result, dipped))
    )


def test_cluster_count_says_what_chance_alone_would_give(bank_result):
    import dataclasses

    from rich.console import Console

    from bertprobe.render.sense import sense_view

    # 6 + 6 senses dealt at random into two clusters of 6: 3372 / 462 sentences sit with their sense.
    senses = ["river"] * 6 + ["money"] * 6
    assert sense.purity_by_chance(senses, [1] * 6 + [2] * 6) == pytest.approx(3372 / 462, abs=0.1)
    # Clusters that cut across the senses: 6 of 12 is the floor any split reaches, not a finding.
    mixed = [dataclasses.replace(s, cluster=1 + n % 2) for n, s in enumerate(bank_result.sentences)]
    console = Console(record=True, width=200)
    sense_view(dataclasses.replace(bank_result, sentences=mixed), console)
    text = " ".join(console.export_text().split())
    assert "6 of 12 sentences sit with their own sense, against about 7 by chance" in text


def test_unlabelled_reading_counts_the_groups_k_means_really_made(cli, minilm_path):
    texts = ["the bank."] * 4 + ["a river bank."]
    args = [a for text in texts for a in ("-s", text)]
    code, stdout, _ = cli("sense", "bank", *args, "-m", "minilm", "--clusters", 3, "--json")
    assert code == 0
    groups = len({s["cluster"] for s in json.loads(stdout)["sentences"]})
    assert groups == 2  # four identical sentences are one point
    _, table, _ = cli("sense", "bank", *args, "-m", "minilm", "--clusters", 3)
    squashed = " ".join(table.split())
    assert "into 2 groups (of k = 3 asked for)" in squashed and "into 3 groups" not in squashed


def test_reading_does_not_clear_position_that_scores_above_chance(bank_result):
    import dataclasses

    from bertprobe.render.sense import _bar, _chance, readings

    # Position alone at 0.70 when chance is 0.45: below the bar a layer needs, but far from "gives nothing away".
    control = dataclasses.replace(bank_result.position_control, knn_accuracy=0.70)
    partial = dataclasses.replace(bank_result, position_control=control)
    assert _chance(partial) < 0.70 < _bar(partial)
    text = " ".join(readings(partial))
    assert "does not give the sense away" not in text and "POSITION ALONE" not in text
    assert "position alone scores 1-NN 0.70 (chance 0.45), above chance" in text
    assert "does not give the sense away" in " ".join(readings(bank_result))  # 0.22: at or below chance


def test_word_glued_to_other_characters_is_not_said_to_be_inside_itself(cli, tiny_encoder_path):
    # "love🙂bank" is one word to BERT's pre-tokenizer, read as [UNK]: "bank" is there but never read alone.
    code, stdout, stderr = cli(
        "sense", "bank", "-s", "I love🙂bank today.", "-s", "The bank is open.", "-m", tiny_encoder_path
    )
    assert code == 1 and stdout == ""
    assert "sentence 1" in _one_error(stderr)
    assert "only inside 'bank'" not in stderr
    assert "[UNK]" in stderr and "space" in stderr


def test_occurrence_below_one_is_refused_not_counted_from_the_end(tiny_encoder_path):
    from bertprobe import models
    from bertprobe.errors import InputError

    lm = models.load(str(tiny_encoder_path), device="cpu")
    texts = [sense.SenseSentence("The bank by the bank."), sense.SenseSentence("A bank and a bank.")]
    for occurrence in (0, -1):
        with pytest.raises(InputError, match=f"occurrence {occurrence} does not exist"):
            sense.locate(lm, "bank", texts, occurrence)


def test_no_best_layer_means_no_best_by(tiny_encoder_path):
    from bertprobe import models

    # Every sentence its own sense: no silhouette, no same-sense pair, so no layer can be best.
    lm = models.load(str(tiny_encoder_path), device="cpu")
    texts = [sense.SenseSentence(t, s) for t, s in [("a bank", "x"), ("the bank", "y"), ("my bank", "z")]]
    result = sense.probe(lm, "bank", texts)
    assert result.best_layer is None and result.best_by == ""


def test_explain_gives_this_runs_chance_for_three_senses(cli, tiny_encoder_path, tmp_path):
    # Three senses of two sentences: a random neighbour shares the sense 1 time in 5, not "about 0.5".
    path = tmp_path / "three.csv"
    rows = [("a", "the bank one"), ("a", "a bank two"), ("b", "my bank three"), ("b", "our bank four")]
    rows += [("c", "his bank five"), ("c", "her bank six")]
    path.write_text("sentence,sense\n" + "".join(f"{t},{s}\n" for s, t in rows))
    code, table, _ = cli("sense", "bank", "--sentences", path, "-m", tiny_encoder_path, "--explain")
    assert code == 0
    squashed = " ".join(table.split())
    assert "about 0.5" not in squashed and "Chance is 0.20 here" in squashed and "chance 0.20" in squashed


def test_no_separating_layer_with_a_passing_1nn_says_why_instead_of_denying_the_neighbours(bank_result):
    # 1-NN 0.92 at a layer whose centred gap is not positive: "best 1-NN 0.92 …: these sentences do not separate
    # them" read as a contradiction; the reading now says the neighbours agree while the groups overlap.
    import dataclasses

    from bertprobe.render.sense import readings

    layers = [
        dataclasses.replace(s, knn_accuracy=0.92, knn_by_sense={"river": 0.92, "money": 0.92}, separation_centred=-0.01)
        if s.layer is not None and s.layer >= 1
        else s
        for s in bank_result.layers
    ]
    text = " ".join(readings(dataclasses.replace(bank_result, layers=layers)))
    assert "No layer keeps the senses of 'bank' clearly apart: at layer" in text
    assert "nearest neighbour shares their sense (1-NN 0.92" in text and "overlap as groups" in text
    assert "do not separate them" not in text


def test_a_space_only_piece_that_opens_the_word_is_not_pooled_as_the_word(cli, tiny_roberta_path):
    # Byte-level BPE can write " BANK" as "Ġ" + "B A N K": --pool first took the space piece's vector for the word.
    args = ["-s", "the BANK is muddy", "-s", "a BANK is busy", "-s", "our BANK sat"]
    code, stdout, stderr = cli("sense", "BANK", *args, "--pool", "first", "-m", tiny_roberta_path, "--json")
    assert code == 0, stderr
    for sentence in json.loads(stdout)["sentences"]:
        assert sentence["wordpieces"][0].strip("Ġ▁ ") != "", sentence["wordpieces"]


# ---------------------------------------------------------------------------- one figure for the table and the reading


def _view(result, **view) -> str:
    from rich.console import Console

    from bertprobe.render.sense import sense_view

    console = Console(record=True, width=200)
    sense_view(result, console, **view)
    return console.export_text()


def _row(text: str, name: str) -> list[str]:
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [name])


def test_table_gap_is_the_mean_centred_figure_the_reading_judges(bank_result):
    # Raw within - across is +0.05 while the mean-centred gap is -0.01: the reading says "at or below 0";
    # the table showed +0.050 under "gap", a figure the sentence under it contradicted.
    import dataclasses

    raw = {"within": 0.93, "across": 0.88, "separation": 0.05}
    centred = {"within_centred": 0.30, "across_centred": 0.31, "separation_centred": -0.01}
    knn = {"knn_accuracy": 0.92, "knn_by_sense": {"river": 0.92, "money": 0.92}}
    layers = [
        dataclasses.replace(s, **raw, **centred, **knn) if s.layer is not None and s.layer >= 1 else s
        for s in bank_result.layers
    ]
    overlapping = dataclasses.replace(bank_result, layers=layers)
    text = _view(overlapping)
    assert "gap° at or below 0" in " ".join(text.split())
    header = next(line for line in text.splitlines() if line.split()[:1] == ["layer"])
    assert header.split()[1:4] == ["within°", "across°", "gap°"]
    assert _row(text, "1")[1:5] == ["0.300", "0.310", "-0.010", "0.92"]
    # --details adds the raw figures, labelled raw, and says what --json calls each.
    detailed = _view(overlapping, details=True)
    assert _row(detailed, "1")[6:9] == ["0.050", "0.930", "0.880"]
    squashed = " ".join(detailed.split())
    assert "raw gap" in squashed and "separation_centred" in squashed and "raw: plain cosine" in squashed


def test_similarity_matrix_header_says_which_cosine_it_shows(bank_result):
    import dataclasses

    raw = " ".join(_view(bank_result).split())
    assert "raw cosine between the sentences' 'bank' vectors" in raw
    assert "1-NN, silh. and the clusters use the mean-centred cosine (--centred)" in raw
    centred = " ".join(_view(dataclasses.replace(bank_result, centred=True)).split())
    assert "mean-centred cosine between the sentences' 'bank' vectors" in centred and "raw cosine" not in centred


def test_unlabelled_table_shows_the_mean_centred_cosine_the_clusters_use(cli, tiny_encoder_path):
    args = ["-s", "a bank", "-s", "the bank", "-s", "my bank", "-s", "our bank"]
    code, stdout, _ = cli("sense", "bank", *args, "-m", tiny_encoder_path, "--json")
    assert code == 0
    doc = json.loads(stdout)
    _, table, _ = cli("sense", "bank", *args, "-m", tiny_encoder_path, "--details")
    header = next(line for line in table.splitlines() if line.split()[:1] == ["layer"])
    assert header.split()[1:2] == ["mean"] and "cos°" in header and "raw mean cos" in header
    last = doc["layers"][-1]
    assert _row(table, str(last["layer"]))[1] == f"{last['mean_cosine_centred']:.3f}"


# ---------------------------------------------------------------------------- --explain describes this run


def test_explain_position_row_describes_the_sentences_actually_checked(cli, tiny_encoder_path, tmp_path, bank_result):
    import dataclasses

    path = tmp_path / "mine.csv"
    rows = [("river", "the bank is muddy"), ("river", "a bank of reeds")]
    rows += [("money", "bank fees"), ("money", "bank loans")]
    path.write_text("sentence,sense\n" + "".join(f"{t},{s}\n" for s, t in rows))
    code, table, _ = cli("sense", "bank", "--sentences", path, "-m", tiny_encoder_path, "--explain")
    assert code == 0
    squashed = " ".join(table.split())
    assert "built-in" not in squashed.split("senses:")[1]  # the title names the origin; nothing else may
    assert "these sentences are not balanced by bertprobe" in squashed
    assert "'bank' sits at word piece river 2.0, money 1.0 on average" in squashed
    builtin = " ".join(_view(dataclasses.replace(bank_result, origin="built-in"), explain=True).split())
    assert "the built-in sets are balanced" in builtin and "river 8.8, money 8.8" in builtin
    # A model without absolute position embeddings has no position row: --explain must not describe one.
    without = " ".join(_view(dataclasses.replace(bank_result, position_control=None), explain=True).split())
    assert "position embedding alone" not in without


# ---------------------------------------------------------------------------- --occurrence counts what is written


def test_occurrence_counts_every_written_occurrence_and_refuses_a_glued_one(tiny_encoder_path):
    from bertprobe import models
    from bertprobe.errors import InputError

    lm = models.load(str(tiny_encoder_path), device="cpu")
    # The first "bank" is glued to 🙂 (read as one [UNK]): the model never reads it alone.
    text = "I love🙂bank, the bank and a bank."
    texts = [sense.SenseSentence(text), sense.SenseSentence("The bank by a bank and the bank.")]
    located, _ = sense.locate(lm, "bank", texts, 2)
    assert located[0].start == text.index("the bank") + 4  # the second written, not the third
    with pytest.raises(
        InputError, match=r"occurrence 1 of 'bank' in sentence 1 \('I love.*'\) is read together"
    ) as refused:
        sense.locate(lm, "bank", texts, 1)
    assert "[UNK]" in refused.value.message and "--occurrence" in refused.value.hint
    with pytest.raises(InputError, match="occurs 3 time"):
        sense.locate(lm, "bank", texts, 4)
    # Without --occurrence the first one read alone is used, and a notice says it is not the first written.
    located, notices = sense.locate(lm, "bank", texts)
    assert located[0].start == text.index("the bank") + 4
    assert any("occurrence 2 in sentence 1" in notice for notice in notices)
    assert not any("sentence(s) 1," in notice or "sentence(s) 1;" in notice for notice in notices)


def test_reading_does_not_call_a_layer_before_the_onset_clearest(bank_result):
    import dataclasses

    from bertprobe.render.sense import readings

    # The silhouette peaks at layer 5 (the best layer), but layer 5's 1-NN is at chance: only layer 6 separates.
    assert bank_result.best_layer == 5
    text = " ".join(readings(_with_knn(bank_result, [1.0, 1.0, 1.0, 1.0, 0.5, 1.0])))
    assert "From layer 6 on" in text
    assert "clearest at layer 5" not in text
    assert "the silhouette of the senses peaks earlier, at layer 5, where the 1-NN falls short" in text
    # A best layer at the embeddings (layer 0) is named too, not silently dropped.
    at_emb = dataclasses.replace(bank_result, best_layer=0)
    assert "peaks earlier, at the embeddings" in " ".join(readings(at_emb))
    assert "clearest at layer 5" in " ".join(readings(bank_result))


def test_the_static_row_has_no_silhouette_where_every_vector_is_the_same():
    # All distances 0: scikit-learn's silhouette of 0 would read as "the senses overlap", a finding; it is undefined.
    from bertprobe.api import sense as run_sense

    result = run_sense("bank", model="minilm")
    static = result.layers[0]
    assert static.layer is None and static.knn_accuracy is None and static.silhouette is None


def test_word_vectors_do_not_depend_on_the_batch_size():
    # Sentences are padded together in batches of --batch-size: a vector may move in its last float32 digits only.
    from bertprobe import models

    lm = models.load("minilm", device="cpu")
    sentences = [
        *sense.builtin("bank"),
        sense.SenseSentence(" ".join(["The river rose over the old stone walls again."] * 12) + " The bank flooded."),
        sense.SenseSentence("A bank."),
    ]
    one, _ = sense.word_vectors(lm, "bank", sentences, batch_size=1)
    for batch_size in (2, 7, 64):
        other, _ = sense.word_vectors(lm, "bank", sentences, batch_size=batch_size)
        scale = np.abs(one.vectors).max(axis=-1, keepdims=True)
        assert (np.abs(other.vectors - one.vectors) / scale).max() < 1e-5, batch_size
