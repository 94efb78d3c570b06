"""cls-train / cls-predict: the probe is plain scikit-learn on the right features, saved safely, reused safely."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bertprobe import featcache, models, probe
from bertprobe.errors import ArtifactError

EXAMPLES = Path(__file__).parent.parent / "examples" / "sentiment.csv"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))


def _rows() -> list[tuple[str, str]]:
    with EXAMPLES.open(newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def sentiment_files(tmp_path_factory):
    """The shipped sample cut in two fixed files, so the split does not depend on the code under test."""
    root = tmp_path_factory.mktemp("sentiment")
    rows = _rows()
    for name, part in (("train.csv", rows[:220]), ("eval.csv", rows[220:])):
        with (root / name).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(part)
    return root / "train.csv", root / "eval.csv", rows[:220], rows[220:]


@pytest.fixture(scope="module")
def reference_bert(minilm_path):
    """all-MiniLM-L6-v2 through plain transformers, independent of bertprobe's native BERT and tokenizer."""
    from transformers import AutoTokenizer, BertModel

    return AutoTokenizer.from_pretrained(str(minilm_path)), BertModel.from_pretrained(str(minilm_path)).eval()


def _reference_states(tokenizer, model, texts, max_length=None):
    """All hidden states [layers + 1, batch, tokens, hidden] and the attention mask, padded in one batch."""
    batch = tokenizer(
        texts, padding=True, truncation=max_length is not None, max_length=max_length, return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
    return torch.stack(out.hidden_states), batch["attention_mask"], out


def _sklearn_probe(train_x, train_y, eval_x, C=1.0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=C, max_iter=2000, random_state=0).fit(scaler.transform(train_x), train_y)
    return clf.predict(scaler.transform(eval_x)), clf.predict_proba(scaler.transform(eval_x))


def test_probe_accuracy_equals_plain_sklearn_on_the_same_features(cli, sentiment_files, reference_bert, tmp_path):
    train_csv, eval_csv, train_rows, eval_rows = sentiment_files
    code, out, err = cli(
        "cls-train", "--data", train_csv, "--eval-data", eval_csv, "--model", "minilm", "--json",
        "--out", tmp_path / "probe", "--control",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert (result["model"], result["revision"], result["seed"]) == ("minilm", None, 0)
    assert result["labels"] == ["negative", "positive"]
    assert (result["layer"], result["pooling"]) == (6, "cls")

    # The features bertprobe extracted equal [CLS] of the last layer computed by plain transformers.
    lm = models.load("minilm", device="cpu")
    texts = [t for t, _ in train_rows + eval_rows]
    ours = featcache.pooled_features(lm, texts, [(6, "cls")]).features[(6, "cls")]
    assert featcache.FeatureCache().root.is_dir()
    tokenizer, model = reference_bert
    some = list(range(0, len(texts), 5))  # a sample keeps the reference forward pass short
    states, _, _ = _reference_states(tokenizer, model, [texts[i] for i in some])
    torch.testing.assert_close(ours[some], states[6][:, 0], atol=1e-4, rtol=1e-4)

    # On those same features, a plain scikit-learn run gets exactly the accuracy and confusion matrix reported.
    labels = ["negative", "positive"]
    train_y = [labels.index(y) for _, y in train_rows]
    eval_y = np.array([labels.index(y) for _, y in eval_rows])
    predicted, probabilities = _sklearn_probe(ours[:220].numpy(), train_y, ours[220:].numpy())
    assert result["metrics"]["accuracy"] == pytest.approx(float((predicted == eval_y).mean()), abs=1e-12)
    from sklearn.metrics import confusion_matrix, f1_score

    assert result["metrics"]["confusion"] == confusion_matrix(eval_y, predicted).tolist()
    assert result["metrics"]["macro_f1"] == pytest.approx(f1_score(eval_y, predicted, average="macro"))
    majority = max(set(train_y), key=train_y.count)
    assert result["baseline"]["accuracy"] == pytest.approx(float((eval_y == majority).mean()))

    # Real weights: the [CLS] probe reads sentiment well, far above chance and above a random encoder.
    assert result["metrics"]["accuracy"] >= 0.75
    assert result["metrics"]["accuracy"] >= result["control"]["accuracy"] + 0.1

    # The saved probe's differentiable logits give scikit-learn's predict_proba.
    saved = probe.load_probe(tmp_path / "probe")
    assert saved.coef.dtype == torch.float32 and tuple(saved.coef.shape) == (1, lm.hidden_size)
    assert tuple(saved.intercept.shape) == (1,) and tuple(saved.mean.shape) == tuple(saved.scale.shape) == (384,)
    features = ours[220:].clone().requires_grad_(True)
    logits = saved.logits(features)
    assert logits.shape == (len(eval_rows), 2)
    torch.testing.assert_close(logits.softmax(-1), torch.tensor(probabilities, dtype=torch.float32), atol=1e-5, rtol=0)
    logits[:, 1].sum().backward()
    assert features.grad is not None and features.grad.abs().sum() > 0
    saved.check_model(lm)  # the same model is accepted

    # cls-predict on the saved probe finds the model itself and agrees with the probabilities above.
    code, out, err = cli("cls-predict", tmp_path / "probe", eval_rows[0][0], eval_rows[1][0], "--json")
    assert code == 0, err
    predictions = json.loads(out)["predictions"]
    for row, item in zip(probabilities[:2], predictions, strict=True):
        assert item["probabilities"]["positive"] == pytest.approx(row[1], abs=1e-5)
        assert item["label"] == labels[int(row.argmax())]


def test_sweep_scores_every_layer_and_pooling_from_one_extraction(cli, tiny_pretraining_path, tmp_path):
    rows = _rows()[:60]
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    code, out, err = cli(
        "cls-train", "--data", path, "--model", tiny_pretraining_path, "--sweep", "--json", "--test-size", "0.3"
    )
    assert code == 0, err
    result = json.loads(out)
    cells = {(c["layer"], c["pooling"]): c for c in result["sweep"]}
    expected = {(layer, pooling) for layer in range(3) for pooling in ("cls", "mean", "max")} | {(2, "pooler")}
    assert set(cells) == expected
    assert all(c["control_accuracy"] is not None for c in cells.values())  # --sweep brings the control
    main = cells[(2, "cls")]
    assert main["accuracy"] == result["metrics"]["accuracy"]
    assert result["control"]["accuracy"] == main["control_accuracy"]
    # 10 grid cells for the model and 10 for the random encoder, all extracted once and cached.
    assert (result["cache_misses"], result["cache_hits"]) == (20, 0)

    # One cell checked independently: mean pooling of layer 1 through transformers, then plain sklearn.
    from transformers import AutoTokenizer, BertModel

    from bertprobe import datasets

    split = datasets.load_files(path, test_size=0.3, seed=0)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_pretraining_path))
    model = BertModel.from_pretrained(str(tiny_pretraining_path)).eval()

    def mean_layer1(texts):
        states, mask, _ = _reference_states(tokenizer, model, texts)
        weights = mask.unsqueeze(-1).float()
        return ((states[1] * weights).sum(1) / weights.sum(1)).numpy()

    labels = result["labels"]
    predicted, _ = _sklearn_probe(
        mean_layer1(split.train.texts), [labels.index(y) for y in split.train.labels], mean_layer1(split.eval.texts)
    )
    truth = np.array([labels.index(y) for y in split.eval.labels])
    assert cells[(1, "mean")]["accuracy"] == pytest.approx(float((predicted == truth).mean()))


def test_pooled_features_match_transformers_for_every_pooling(tiny_pretraining_path):
    from transformers import AutoTokenizer, BertModel

    lm = models.load(str(tiny_pretraining_path), device="cpu")
    texts = ["a short one", "a somewhat longer sentence about a film with many words in it", "ok"]
    specs = [(0, "max"), (1, "mean"), (2, "cls"), (2, "pooler")]
    found = featcache.pooled_features(lm, texts, specs, batch_size=2, use_cache=False).features
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_pretraining_path))
    model = BertModel.from_pretrained(str(tiny_pretraining_path)).eval()
    states, mask, out = _reference_states(tokenizer, model, texts)
    weights = mask.unsqueeze(-1).float()
    reference = {
        (0, "max"): states[0].masked_fill(weights == 0, -1e9).amax(1),
        (1, "mean"): (states[1] * weights).sum(1) / weights.sum(1),
        (2, "cls"): states[2][:, 0],
        (2, "pooler"): out.pooler_output,
    }
    for spec in specs:
        torch.testing.assert_close(found[spec], reference[spec], atol=1e-5, rtol=1e-4)


def test_a_cached_rerun_reports_the_same_truncation(minilm_path, tmp_path):
    lm = models.load("minilm", device="cpu")
    texts = ["one two three four five six seven eight nine ten eleven twelve", "short"]
    cache = featcache.FeatureCache(tmp_path / "cache")
    first = featcache.pooled_features(lm, texts, [(6, "mean")], max_length=8, cache=cache)
    again = featcache.pooled_features(lm, texts, [(6, "mean")], max_length=8, cache=cache)
    assert again.cache.hits == 1 and again.truncated == first.truncated == 1


def _varied_texts(count: int = 12) -> list[str]:
    """Sample sentences of many lengths, so that a batch of them is padded."""
    texts = [text for text, _ in _rows()]
    return sorted(texts, key=len)[:: max(1, len(texts) // count)][:count]


def test_half_precision_features_cached_at_another_batch_size_are_not_served(minilm_path, tmp_path):
    # In bfloat16 a batch's padding moves a text's vector by its rounding (up to ~1e-2 here), enough to change a
    # probe's eval metrics: served the features of another --batch-size, a cached rerun would not give the numbers
    # a fresh run at this one gives.
    lm = models.load("minilm", device="cpu", dtype="bfloat16")
    texts = _varied_texts()
    spec = (6, "mean")
    one = featcache.pooled_features(lm, texts, [spec], batch_size=1, use_cache=False).features[spec]
    together = featcache.pooled_features(lm, texts, [spec], batch_size=len(texts), use_cache=False).features[spec]
    assert not torch.equal(one, together)  # what makes the batch size matter at all
    cache = featcache.FeatureCache(tmp_path / "cache")
    featcache.pooled_features(lm, texts, [spec], batch_size=len(texts), cache=cache)
    again = featcache.pooled_features(lm, texts, [spec], batch_size=1, cache=cache)
    assert torch.equal(again.features[spec], one)
    third = featcache.pooled_features(lm, texts, [spec], batch_size=1, cache=cache)
    assert third.cache.hits == 1 and torch.equal(third.features[spec], one)


def test_float32_features_are_served_across_batch_sizes(minilm_path, tmp_path):
    # In float32 padding moves a vector only in its last digits, so the cache is shared by every --batch-size.
    lm = models.load("minilm", device="cpu")
    texts = _varied_texts()
    specs = [(layer, pooling) for layer in (0, 3, 6) for pooling in ("cls", "mean", "max")]
    cache = featcache.FeatureCache(tmp_path / "cache")
    featcache.pooled_features(lm, texts, specs, batch_size=len(texts), cache=cache)
    for batch_size in (1, 2, 7, 64):
        again = featcache.pooled_features(lm, texts, specs, batch_size=batch_size, cache=cache)
        fresh = featcache.pooled_features(lm, texts, specs, batch_size=batch_size, use_cache=False)
        assert again.cache.hits == len(specs)
        for spec in specs:
            scale = fresh.features[spec].abs().amax(dim=1, keepdim=True)
            assert ((again.features[spec] - fresh.features[spec]).abs() / scale).max() < 1e-5, (batch_size, spec)


def test_features_from_another_device_backend_or_tokenizer_version_are_not_served(minilm_path, tmp_path, monkeypatch):
    import dataclasses

    lm = models.load("minilm", device="cpu")
    key = featcache.FeatureCache.key(lm, (6, "mean"), 8, "digest", 2)
    on_gpu = featcache.FeatureCache.key(
        dataclasses.replace(lm, device=torch.device("cuda")), (6, "mean"), 8, "digest", 2
    )
    other_backend = featcache.FeatureCache.key(
        dataclasses.replace(lm, native=not lm.native), (6, "mean"), 8, "digest", 2
    )
    monkeypatch.setattr(probe, "package_versions", lambda: {"tokenizers": "9.9", "transformers": "9.9"})
    upgraded = featcache.FeatureCache.key(lm, (6, "mean"), 8, "digest", 2)
    cache = featcache.FeatureCache(tmp_path / "cache")
    assert len({cache.path(key), cache.path(on_gpu), cache.path(other_backend), cache.path(upgraded)}) == 4


def test_truncation_to_max_length_matches_the_tokenizer(minilm_path, reference_bert):
    lm = models.load("minilm", device="cpu")
    texts = ["one two three four five six seven eight nine ten eleven twelve", "short"]
    found = featcache.pooled_features(lm, texts, [(6, "mean")], max_length=8, use_cache=False)
    assert found.truncated == 1 and found.max_length == 8
    tokenizer, model = reference_bert
    states, mask, _ = _reference_states(tokenizer, model, texts, max_length=8)
    weights = mask.unsqueeze(-1).float()
    torch.testing.assert_close(
        found.features[(6, "mean")], (states[6] * weights).sum(1) / weights.sum(1), atol=1e-4, rtol=1e-4
    )


def _train_tiny(cli, tiny_encoder_path, tmp_path, *extra):
    rows = _rows()[:40]
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    code, out, err = cli("cls-train", "--data", path, "--model", tiny_encoder_path, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_second_run_reads_the_cache_and_a_corrupt_entry_is_rebuilt(cli, tiny_encoder_path, tmp_path):
    first = _train_tiny(cli, tiny_encoder_path, tmp_path)
    assert (first["cache_misses"], first["cache_hits"]) == (1, 0)
    second = _train_tiny(cli, tiny_encoder_path, tmp_path)
    assert (second["cache_misses"], second["cache_hits"]) == (1 - 1, 1)
    assert second["metrics"] == first["metrics"]

    entries = list((tmp_path / "cache" / "features").iterdir())
    assert len(entries) == 1 and entries[0].suffix == ".safetensors"  # no temp files left behind
    entry = entries[0]
    good = entry.read_bytes()

    entry.write_bytes(good[: len(good) // 2])  # a write cut short
    third = _train_tiny(cli, tiny_encoder_path, tmp_path)
    assert (third["cache_misses"], third["cache_hits"]) == (1, 0)
    assert "unreadable" in third["cache_rebuilt"][0]
    assert third["metrics"] == first["metrics"]
    assert entry.read_bytes() == good  # rebuilt in place

    # An entry whose content was made for other texts is not trusted either.
    from safetensors.torch import load_file, save_file

    tensor = load_file(str(entry))["features"]
    save_file({"features": tensor * 0 + 1}, str(entry), metadata={"key": "{}"})
    fourth = _train_tiny(cli, tiny_encoder_path, tmp_path)
    assert fourth["cache_hits"] == 0 and "other inputs" in fourth["cache_rebuilt"][0]
    assert fourth["metrics"] == first["metrics"]

    # Another max length is another entry, and --no-cache neither reads nor writes.
    assert _train_tiny(cli, tiny_encoder_path, tmp_path, "--max-length", "16")["cache_hits"] == 0
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 2
    assert _train_tiny(cli, tiny_encoder_path, tmp_path, "--no-cache")["cache_hits"] == 0


def test_cls_predict_marks_each_text_it_read_only_in_part(cli, tiny_encoder_path, tmp_path):
    # The probe was trained on the first 8 pieces of each text; predicting reads the same 8 and says which rows.
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--max-length", "8", "--out", tmp_path / "p")
    short, long = "a fine film", "a fine film with a long plot that goes on and on and on"
    code, out, err = cli("cls-predict", tmp_path / "p", short, long, "--json")
    assert code == 0, err
    assert [p["truncated"] for p in json.loads(out)["predictions"]] == [False, True]
    assert "1 text(s) longer than 8 word pieces were truncated" in err
    code, table, _ = cli("cls-predict", tmp_path / "p", short, long)
    assert code == 0 and table.count("[cut]") == 2  # the row, and the line that says what it means
    assert "first 8 word pieces only" in " ".join(table.split())


def test_a_probe_saved_under_another_tokenizer_version_says_so(cli, tiny_encoder_path, tmp_path, monkeypatch):
    from bertprobe import probe as probe_module

    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p")
    code, _, err = cli("cls-predict", tmp_path / "p", "a fine film")
    assert code == 0 and "saved under" not in err
    now = probe_module.package_versions()
    monkeypatch.setattr(probe_module, "package_versions", lambda: {**now, "tokenizers": "99.0"})
    code, _, err = cli("cls-predict", tmp_path / "p", "a fine film")
    assert code == 0 and f"saved under tokenizers {now['tokenizers']} → 99.0" in " ".join(err.split())
    code, _, err = cli("attribute", "a fine film", "--probe", tmp_path / "p", "--steps", 4, "--no-faithfulness")
    assert code == 0 and "saved under tokenizers" in " ".join(err.split())


def test_multiclass_probe_logits_equal_sklearn(tiny_encoder_path, tmp_path):
    from bertprobe import datasets

    texts = [f"review number {i} says {word}" for i, word in enumerate(["good", "bad", "fine"] * 12)]
    labels = ["pos", "neg", "mid"] * 12
    data = datasets.LabelledData(texts, labels, [""] * len(texts))
    train, held = datasets.stratified_split(data, 0.25, seed=0)
    split = datasets.Split(train, held, ["mid", "neg", "pos"], "test")
    lm = models.load(str(tiny_encoder_path), device="cpu")
    result = probe.cls_train(lm, split, pooling="mean", C=0.5, out=tmp_path / "p3")
    saved = probe.load_probe(tmp_path / "p3")
    assert tuple(saved.coef.shape) == (3, 32) and saved.labels == ["mid", "neg", "pos"]
    assert (saved.layer, saved.pooling, saved.max_length) == (2, "mean", 64)
    found = featcache.pooled_features(lm, train.texts + held.texts, [(2, "mean")]).features[(2, "mean")]
    predicted, probabilities = _sklearn_probe(
        found[: len(train)].numpy(),
        [split.label_names.index(y) for y in train.labels],
        found[len(train) :].numpy(),
        C=0.5,
    )
    torch.testing.assert_close(
        saved.logits(found[len(train) :]).softmax(-1),
        torch.tensor(probabilities, dtype=torch.float32),
        atol=1e-5,
        rtol=0,
    )
    truth = np.array([split.label_names.index(y) for y in held.labels])
    assert result.metrics.accuracy == pytest.approx(float((predicted == truth).mean()))
    meta = json.loads((tmp_path / "p3" / "probe.json").read_text())
    assert meta["format"] == "bertprobe-probe" and meta["version"] == 2
    assert {"model", "revision", "fingerprint", "layer", "pooling", "max_length", "labels", "metrics"} <= set(meta)
    assert "scikit-learn" in meta["packages"] and "torch" in meta["packages"]


def test_a_probe_for_another_model_layer_or_pooling_is_refused(cli, tiny_encoder_path, tmp_path):
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p")
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--model", "minilm")
    assert code == 1 and out == ""
    assert "this probe was trained on" in err and "not on minilm" in err and "hint:" in err
    code, _, err = cli("cls-predict", tmp_path / "p", "a fine film", "--pool", "mean")
    assert code == 1 and "trained on cls pooling, not mean" in err
    code, _, err = cli("cls-predict", tmp_path / "p", "a fine film", "--layer", "1")
    assert code == 1 and "trained on layer 2, not layer 1" in err
    # The same layer spelled -1, and no --model: the probe's own (local) model is loaded.
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--layer", "-1", "--json")
    assert code == 0, err
    prediction = json.loads(out)["predictions"][0]
    assert sum(prediction["probabilities"].values()) == pytest.approx(1.0)


def _corrupt(directory: Path, how: str) -> None:
    meta_path, weights_path = directory / "probe.json", directory / "probe.safetensors"
    if how == "missing weights":
        weights_path.unlink()
    elif how == "truncated weights":
        weights_path.write_bytes(weights_path.read_bytes()[:100])
        _rehash(directory)
    elif how == "not json":
        meta_path.write_text("{not json")
    elif how == "wrong format":
        meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "format": "something-else"}))
    elif how == "shape mismatch":
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(weights_path))
        tensors["mean"] = tensors["mean"][:-1].contiguous()
        save_file(tensors, str(weights_path))
        _rehash(directory)


def _rehash(directory: Path) -> None:
    """Record the edited weights' hash, so that the checks behind the hash check are reached."""
    import hashlib

    meta = json.loads((directory / "probe.json").read_text())
    meta["weights_sha256"] = hashlib.sha256((directory / "probe.safetensors").read_bytes()).hexdigest()
    (directory / "probe.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("missing weights", "holds no probe.safetensors"),
        ("truncated weights", "is corrupt"),
        ("not json", "is not readable JSON"),
        ("wrong format", "is not a bertprobe probe"),
        ("shape mismatch", "do not fit together"),
    ],
)
def test_damaged_probe_files_are_refused_with_a_hint(cli, tiny_encoder_path, tmp_path, how, message):
    probe_dir = tmp_path / "p"
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", probe_dir)
    _corrupt(probe_dir, how)
    with pytest.raises(ArtifactError, match=message) as info:
        probe.load_probe(probe_dir)
    assert info.value.hint
    code, out, err = cli("cls-predict", probe_dir, "text")
    assert code == 1 and out == "" and message in err.replace("\n", " ") and "Traceback" not in err


def test_probe_files_are_written_atomically(cli, tiny_encoder_path, tmp_path):
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["probe.json", "probe.safetensors"]
    meta = json.loads((tmp_path / "p" / "probe.json").read_text())
    assert meta["model_path"] == str(Path(tiny_encoder_path).resolve())


def test_c_auto_picks_what_sklearn_grid_search_picks(tiny_encoder_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    features = rng.normal(size=(90, 12)).astype(np.float32)
    targets = (features[:, 0] + 0.8 * rng.normal(size=90) > 0).astype(int).tolist()
    search = probe.search_C(features, targets, seed=0)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=0)),
        {"logisticregression__C": list(probe.C_GRID)},
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(features, targets)
    assert search.chosen == grid.best_params_["logisticregression__C"]
    np.testing.assert_allclose(search.cv_accuracy, grid.cv_results_["mean_test_score"])


def test_max_train_samples_a_stratified_subset(cli, tiny_encoder_path, tmp_path):
    result = _train_tiny(cli, tiny_encoder_path, tmp_path, "--max-train", "10", "--C", "auto")
    assert result["data"]["train_size"] == 10
    assert result["data"]["train_counts"] == {"negative": 5, "positive": 5}
    assert result["c_search"]["chosen"] in probe.C_GRID


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give either --task or --data"),
        (("--layer", "9"), "--layer 9 does not exist"),
        (("--layer", "1", "--pool", "pooler"), "--pool pooler reads the last layer"),
        (("--pool", "pooler"), "has no pooler weights"),
    ],
)
def test_user_errors_are_one_line_with_a_hint(cli, tiny_encoder_path, mlm_path, tmp_path, args, message):
    data = () if not args else ("--data", str(EXAMPLES))
    model = mlm_path if message == "has no pooler weights" else tiny_encoder_path  # BERT-tiny MLM: no pooler
    code, out, err = cli("cls-train", *data, "--model", model, *args)
    assert code == 1 and out == ""
    assert message in err and "hint:" in err and "Traceback" not in err


def test_table_view_escapes_labels_and_shows_the_alternatives(cli, tiny_encoder_path, tmp_path):
    path = tmp_path / "d.csv"
    rows = [(text, "[bold]yes" if label == "positive" else "[unused0]") for text, label in _rows()[:40]]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    code, out, err = cli("cls-train", "--data", path, "--model", tiny_encoder_path, "--control")
    assert code == 0, err
    assert "[bold]yes" in out and "[unused0]" in out  # model-free user strings printed as written
    assert "majority class" in out and "random-init encoder" in out and "confusion matrix" in out


def test_a_max_length_that_leaves_no_word_is_refused_from_python_too():
    import bertprobe
    from bertprobe import featcache
    from bertprobe.errors import InputError

    with pytest.raises(InputError, match="leaves no word piece") as refused:
        featcache.effective_max_length(None, 2)  # the core's one bound: refused before the model is looked at
    assert "3 or more" in refused.value.hint
    with pytest.raises(InputError, match="max_length=2 is not a whole number at least 3"):
        bertprobe.cls_train(data="x.csv", max_length=2)  # the API's own check, before the data or a model


def test_macro_f1_averages_only_classes_the_eval_set_has_or_the_probe_predicts():
    # An --eval-data file without a training label: a class with no eval text and no prediction has no F1, and
    # counting it as 0 made a perfect probe score a 67% macro-F1. Classes are counted as scikit-learn does.
    from sklearn.metrics import f1_score

    labels = ["a", "b", "c"]
    truth = [0, 0, 1, 1]
    for predicted in ([0, 0, 1, 1], [0, 2, 1, 0]):
        metrics = probe.evaluate(truth, predicted, labels)
        assert metrics.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
        assert [row.label for row in metrics.per_class] == labels  # every class still has its row
    assert probe.evaluate(truth, truth, labels).macro_f1 == 1.0
    baseline = probe.majority_baseline([0, 0, 0, 1, 2], [0, 1, 1], labels)
    assert baseline.macro_f1 == pytest.approx(f1_score([0, 1, 1], [0, 0, 0], average="macro"))


def test_cls_predict_refuses_an_empty_text(cli, tiny_encoder_path, tmp_path):
    # An empty text reaches the probe as the bare [CLS] [SEP]: it was never trained on one, and a confident label
    # for nothing would be a number without meaning.
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p")
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "  ")
    assert code == 1 and out == ""
    assert "text 2 is empty" in err and "hint:" in err and "Traceback" not in err


def test_eval_texts_that_also_occur_in_training_are_announced(cli, tiny_encoder_path, tmp_path):
    # Repeated rows split to both sides: the probe is scored on vectors it was trained on, and its eval
    # accuracy overstates what it learnt.
    rows = _rows()[:20] * 2
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    code, out, err = cli("cls-train", "--data", path, "--model", tiny_encoder_path, "--json")
    assert code == 0, err
    assert json.loads(out)["data"]["eval_size"] == 8
    assert "of the 8 eval texts also occur in the training data" in " ".join(err.split())
    # The same file given as the eval set: every eval text was trained on.
    code, _, err = cli("cls-train", "--data", path, "--eval-data", path, "--model", tiny_encoder_path, "--json")
    assert code == 0 and "40 of the 40 eval texts also occur in the training data" in " ".join(err.split())
    code, _, err = cli("cls-train", "--data", EXAMPLES, "--model", tiny_encoder_path, "--json")
    assert code == 0 and "also occur in the training data" not in err


def test_eval_texts_that_repeat_training_texts_up_to_case_or_spacing_are_announced(cli, tiny_encoder_path, tmp_path):
    # An uncased model reads "A GRIPPING FILM" and "a gripping  film" as the same word pieces as "a gripping film":
    # the probe is scored on vectors it was trained on, as with exact repeats, which alone were announced before.
    rows = _rows()
    train, fresh = rows[:40], rows[40:60]
    loose = [
        (train[0][0].upper(), train[0][1]),
        (train[1][0].replace(" ", "   "), train[1][1]),
        ("  " + train[2][0].lower() + "\t", train[2][1]),
    ]
    for name, part in (("train.csv", train), ("eval.csv", [*fresh, *loose, train[3]])):
        with (tmp_path / name).open("w", newline="") as handle:
            csv.writer(handle).writerows([("text", "label"), *part])
    code, out, err = cli(
        "cls-train", "--data", tmp_path / "train.csv", "--eval-data", tmp_path / "eval.csv",
        "--model", tiny_encoder_path, "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["data"]["eval_size"] == 24
    said = " ".join(err.split())
    assert "4 of the 24 eval texts also occur in the training data (3 of them differ from a training text only" in said
    assert "such as case" in said and "eval scores are optimistic" in said


def test_repeats_are_what_the_model_reads_as_the_same_input(tiny_encoder_path, tiny_roberta_path):
    uncased = models.load(str(tiny_encoder_path), device="cpu")
    # Its normaliser lowercases and strips accents, and its pre-tokenizer splits on any run of whitespace.
    texts = ["A FINE   film.", "a fine fílm.\n", "A fine film!", "A fine film."]
    found = probe.eval_repeats(uncased, ["A fine film."], texts)
    assert (found.repeated, found.loosely, found.lowercases) == (3, 2, True)
    # A cased byte-level tokenizer tells "Hello" from "hello"; runs of spaces still count as a repeat.
    cased = models.load(str(tiny_roberta_path), device="cpu")
    found = probe.eval_repeats(cased, ["Hello world"], ["hello world", "Hello   world", "Hello world"])
    assert (found.repeated, found.loosely, found.lowercases) == (2, 1, False)


def test_a_label_the_split_does_not_name_is_refused_not_a_key_error(tiny_encoder_path):
    # A Split built by hand (the Python API) whose eval set has a label its label list lacks: a traceback before,
    # now one DataError that names the label.
    from bertprobe import datasets
    from bertprobe.errors import DataError

    texts = [f"review number {i} says {word}" for i, word in enumerate(["good", "bad"] * 6)]
    train = datasets.LabelledData(texts, ["pos", "neg"] * 6, [""] * 12)
    held = datasets.LabelledData(["so so", "fine"], ["mid", "pos"], ["", ""])
    lm = models.load(str(tiny_encoder_path), device="cpu")
    with pytest.raises(DataError, match="'mid'") as refused:
        probe.cls_train(lm, datasets.Split(train, held, ["neg", "pos"], "test"), use_cache=False)
    assert refused.value.hint


def test_a_rebuilt_control_cache_entry_is_announced_too(cli, tiny_encoder_path, tmp_path):
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--control")
    for entry in (tmp_path / "cache" / "features").iterdir():  # the model's entry and the random encoder's
        entry.write_bytes(entry.read_bytes()[:100])
    code, out, err = cli("cls-train", "--data", tmp_path / "d.csv", "--model", tiny_encoder_path, "--json", "--control")
    assert code == 0, err
    assert len(json.loads(out)["cache_rebuilt"]) == 2
    assert " ".join(err.split()).count("feature cache entry rebuilt") == 2


def test_cannot_tell_means_near_the_training_mix_for_an_imbalanced_probe(tiny_encoder_path, tmp_path):
    # Trained on 9 negatives to 1 positive, a probe that reads nothing answers about 0.9 negative: that is "cannot
    # tell", not a confident pick. Before, the view measured every answer against 0.5 and called 0.9 sure.
    import io
    from types import SimpleNamespace as Namespace

    from bertprobe import datasets
    from bertprobe.render import SafeConsole
    from bertprobe.render.probe import predict_view

    texts = [f"review number {i} says {'good' if i % 10 == 0 else 'bad'}" for i in range(40)]
    labels = ["positive" if i % 10 == 0 else "negative" for i in range(40)]
    train, held = datasets.stratified_split(datasets.LabelledData(texts, labels, [""] * 40), 0.25, seed=0)
    split = datasets.Split(train, held, ["negative", "positive"], "test")
    lm = models.load(str(tiny_encoder_path), device="cpu")
    probe.cls_train(lm, split, out=tmp_path / "p", use_cache=False)
    saved = probe.load_probe(tmp_path / "p")
    assert saved.meta["train_counts"] == {"negative": 27, "positive": 3}
    result = probe.predict(lm, saved, ["a fine film"])
    assert result.train_shares == {"negative": 0.9, "positive": 0.1}

    items = [  # 0.92 is the mix, read back; 0.999 is a clear move from it
        Namespace(text=t, truncated=False, label="negative", probability=p) for t, p in (("x", 0.92), ("y", 0.999))
    ]
    for item in items:
        item.probabilities = {"negative": item.probability, "positive": 1 - item.probability}
    view = Namespace(
        model="m", revision=None, probe="p", layer=1, pooling="cls", labels=["negative", "positive"],
        predictions=items, max_length=8, train_shares={"negative": 0.9, "positive": 0.1},
    )  # fmt: skip
    buffer = io.StringIO()
    predict_view(view, SafeConsole(file=buffer, width=300))
    shown = " ".join(buffer.getvalue().split())
    assert "p near the training mix (negative 0.90, positive 0.10) means it cannot tell (1 of 2 here)" in shown

    # An edited mix is refused like any other field the probe's readings depend on.
    meta = json.loads((tmp_path / "p" / "probe.json").read_text())
    meta["train_counts"] = {"negative": 15, "positive": 15}
    (tmp_path / "p" / "probe.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="train_counts"):
        probe.load_probe(tmp_path / "p")


def _read_back(truth, predicted, train_counts, labels=("negative", "positive")):
    """A probe result built from eval labels and the probe's answers, as cls_train builds it."""
    labels = list(labels)
    eval_counts = {label: truth.count(i) for i, label in enumerate(labels)}
    train_y = [i for i, label in enumerate(labels) for _ in range(train_counts[label])]
    baseline = probe.majority_baseline(train_y, truth, labels)
    return probe.ProbeResult(
        model="m", revision=None, source="local", fingerprint="f", task=None,
        data=probe.DataSummary("d.csv", len(train_y), len(truth), train_counts, eval_counts),
        labels=labels, layer=6, num_layers=6, pooling="cls", max_length=128, truncated=0, C=1.0, c_search=None,
        metrics=probe.evaluate(truth, predicted, labels), baseline=baseline, control=None, sweep=[], cache_hits=0,
        cache_misses=0, cache_rebuilt=[], seconds={},
        eval_majority=probe.eval_majority_baseline(truth, labels, baseline),  # as cls_train sets it
    )  # fmt: skip


def test_reading_does_not_deny_a_label_that_accuracy_hides_behind_a_common_one():
    # 910 negative and 90 positive eval texts: 92% right against 91% for always 'negative', yet 23 of the 90
    # positives found with 13 false alarms (macro-F1 66% against 48%). "Finds no sign of the label" was false.
    from bertprobe.render.probe import readings

    truth = [0] * 910 + [1] * 90
    found = [0] * 897 + [1] * 13 + [1] * 23 + [0] * 67
    result = _read_back(truth, found, {"negative": 910, "positive": 90})
    assert (round(result.metrics.accuracy, 2), round(result.baseline.accuracy, 2)) == (0.92, 0.91)
    said = " ".join(readings(result))
    assert "finds no sign of the label" not in said
    assert "balanced accuracy (each label's recall, averaged)" in said and "is 62%" in said
    assert "at most 50% for any constant answer" in said and "the vector carries" in said
    # Blind answers that say 'positive' as often: macro-F1 above the constant's, but no sign of the label.
    blind = [1 if i % 11 == 0 else 0 for i in range(1000)]
    said = " ".join(readings(_read_back(truth, blind, {"negative": 910, "positive": 90})))
    assert "finds no sign of the label" in said and "the vector carries" not in said
    # 1 of 4 positives among 40 texts: balanced accuracy 61%, but luck gives that often.
    small = [0] * 35 + [1] + [1] + [0] * 3
    said = " ".join(readings(_read_back([0] * 36 + [1] * 4, small, {"negative": 36, "positive": 4})))
    assert "the vector carries" not in said
    # Balanced data reads as before.
    even = _read_back(
        [0] * 200 + [1] * 200, [0] * 150 + [1] * 50 + [1] * 150 + [0] * 50, {"negative": 200, "positive": 200}
    )
    said = " ".join(readings(even))
    assert said.startswith(
        "A straight line through the frozen [CLS] vector gets 75% of the eval texts right, against 50% for always "
        "answering 'negative': the vector carries enough of the label for a linear probe to read it off."
    )
    assert "balanced accuracy" not in said


def test_reading_takes_its_words_from_the_figure_its_verdict_rests_on():
    # 900 negative, 100 positive: 60 positives found with 25 false alarms is 93.5% against 90% (3.5 points, beyond
    # luck), but a balanced accuracy of 79% against 50%. It read "a little above the baseline; the vector carries only
    # some of the label", words chosen from the small accuracy lead with the large balanced one left unsaid.
    from bertprobe.render.probe import readings

    truth = [0] * 900 + [1] * 100
    answers = [0] * 875 + [1] * 25 + [1] * 60 + [0] * 40
    result = _read_back(truth, answers, {"negative": 900, "positive": 100})
    assert (result.metrics.accuracy, result.baseline.accuracy) == (0.935, 0.9)
    said = " ".join(readings(result))
    assert "a little above" not in said and "only some of the label" not in said
    assert "balanced accuracy (each label's recall, averaged) does not, and the probe's is 79%" in said
    assert "By balanced accuracy, the vector carries enough of the label for a linear probe to read it off." in said
    # Where balanced accuracy says no more than accuracy, accuracy's words stand: 600 / 400, 60 positives found
    # with no false alarm is 66% against 60%, and a balanced accuracy of 57.5% (7.5 points).
    truth = [0] * 600 + [1] * 400
    answers = [0] * 600 + [1] * 60 + [0] * 340
    said = " ".join(readings(_read_back(truth, answers, {"negative": 600, "positive": 400})))
    assert "a little above the baseline; the vector carries only some of the label." in said
    assert "balanced accuracy" not in said


def test_the_untrained_encoder_on_the_balanced_path_gets_the_same_luck_test():
    # The probe's balanced accuracy (62%) is tested against blind answers; the untrained encoder's was only
    # reported, so 58% could read as an untrained encoder beating chance, and 51% as one that might.
    import dataclasses

    from bertprobe.render.probe import readings

    truth = [0] * 910 + [1] * 90
    answers = [0] * 897 + [1] * 13 + [1] * 23 + [0] * 67
    result = _read_back(truth, answers, {"negative": 910, "positive": 90})
    labels = result.labels

    def with_control(control_answers):
        control = probe.evaluate(truth, control_answers, labels)
        return " ".join(readings(dataclasses.replace(result, control=control))), control

    # 15 of 90 positives with 5 false alarms: 58%, beyond luck itself, 4 points below the probe.
    said, control = with_control([0] * 905 + [1] * 5 + [1] * 15 + [0] * 75)
    assert round(control.balanced_accuracy, 2) == 0.58
    assert "balanced accuracy of 58%, 4 points less, yet itself beyond what blind answers get by luck" in said
    assert "an untrained encoder already reads some of the label" in said
    # Answers that ignore the text: about 50%, no sign of the label.
    said, _ = with_control([1 if i % 11 == 0 else 0 for i in range(1000)])
    assert "no sign of the label beyond luck" in said and "already reads some" not in said
    # 33 of 90 positives with 267 false alarms: 54%, above 50%, but blind answers do that well 9% of the time.
    said, control = with_control([0] * 643 + [1] * 267 + [1] * 33 + [0] * 57)
    assert round(control.balanced_accuracy, 2) == 0.54
    assert "54%, 8 points less, and blind answers do that well 9% of the time" in said
    assert "no sign of the label beyond luck" in said
    assert "does not test how much of that gap luck explains" not in said


def test_reading_measures_the_lead_against_the_better_constant_answer():
    # Trained mostly on 'negative', evaluated on 58 'positive' of 100: the probe's 66% is 24 points above always
    # 'negative' (42%) but only 8 above always 'positive' (58%), which the reading must not hide.
    import io

    from bertprobe.render import SafeConsole, to_document
    from bertprobe.render.probe import probe_view, readings

    truth = [0] * 42 + [1] * 58
    answers = [0] * 8 + [1] * 34 + [1] * 58
    result = _read_back(truth, answers, {"negative": 60, "positive": 40})
    assert (result.metrics.accuracy, result.baseline.label, result.baseline.accuracy) == (0.66, "negative", 0.42)
    said = " ".join(readings(result))
    assert "against 58% for always answering 'positive', the eval set's most common label" in said
    assert "always answering 'negative', the training set's, gets 42%" in said
    assert "carries enough of the label" not in said
    # The table shows that constant answer too, and JSON adds it beside the unchanged training-majority baseline.
    buffer = io.StringIO()
    probe_view(result, SafeConsole(file=buffer, width=200))
    shown = " ".join(buffer.getvalue().replace("│", " ").split())
    assert "majority class (always negative) 42.0%" in shown and "eval majority (always positive) 58.0%" in shown
    doc = to_document(result)
    assert doc["baseline"]["label"] == "negative" and doc["baseline"]["accuracy"] == 0.42
    assert doc["eval_majority"]["label"] == "positive" and doc["eval_majority"]["accuracy"] == 0.58
    # When the training majority is also the eval set's, no second row.
    even = _read_back([0] * 60 + [1] * 40, [0] * 60 + [1] * 40, {"negative": 60, "positive": 40})
    buffer = io.StringIO()
    probe_view(even, SafeConsole(file=buffer, width=200))
    assert "eval majority" not in buffer.getvalue()


def test_per_class_scores_that_do_not_exist_read_as_a_dash_not_zero():
    # 'c' has no eval text and is never predicted: its precision, recall and F1 are undefined, not 0.000.
    # 'b' is never predicted: no precision, but its recall (0 of 2) and F1 are real zeros.
    import io

    from bertprobe.render import SafeConsole, to_document
    from bertprobe.render.probe import _per_class_table

    metrics = probe.evaluate([0, 0, 1, 1], [0, 0, 0, 0], ["a", "b", "c"])
    rows = {row.label: row for row in metrics.per_class}
    assert (rows["b"].precision, rows["b"].recall, rows["b"].f1) == (None, 0.0, 0.0)
    assert (rows["c"].precision, rows["c"].recall, rows["c"].f1, rows["c"].support) == (None, None, None, 0)
    buffer = io.StringIO()
    SafeConsole(file=buffer, width=120).print(_per_class_table(metrics))
    shown = {
        cells[0]: cells[1:] for cells in (line.replace("│", " ").split() for line in buffer.getvalue().splitlines())
    }
    assert shown["b"] == ["–", "0.000", "0.000", "2"] and shown["c"] == ["–", "–", "–", "0"]
    doc = to_document(metrics)
    assert doc["per_class"][2] == {"label": "c", "precision": None, "recall": None, "f1": None, "support": 0}


def test_feature_cache_entries_from_another_bertprobe_or_torch_are_simply_missing(minilm_path, tmp_path, monkeypatch):
    # A fix to pooling or model code ships as a new bertprobe; a new torch may compute other floats: neither may be
    # served features cached by the old one. Old entries are a plain miss, not a "rebuilt" warning or a crash.
    import bertprobe

    lm = models.load("minilm", device="cpu")
    cache = featcache.FeatureCache(tmp_path / "cache")
    texts = ["a fine film", "a dull one"]
    assert featcache.pooled_features(lm, texts, [(6, "cls")], cache=cache).cache.misses == 1
    assert featcache.pooled_features(lm, texts, [(6, "cls")], cache=cache).cache.hits == 1
    for module, version in ((bertprobe, "99.0.0"), (torch, "99.0")):
        with monkeypatch.context() as patched:
            patched.setattr(module, "__version__", version)
            again = featcache.pooled_features(lm, texts, [(6, "cls")], cache=cache).cache
            assert (again.hits, again.misses, again.rebuilt) == (0, 1, [])
    key = featcache.FeatureCache.key(lm, (6, "cls"), 8, "digest", 2)
    assert key["packages"]["bertprobe"] == bertprobe.__version__ and key["packages"]["torch"] == torch.__version__


def test_cls_predict_with_a_layer_the_model_lacks_names_only_layers_that_exist(cli, tiny_encoder_path, tmp_path):
    # The tiny encoder has 2 layers: "cls-train --layer 3" would be a second error, not a fix.
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p")
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--layer", "3")
    said = " ".join(err.split())
    assert code == 1 and out == "" and "Traceback" not in err
    assert "--layer 3 does not exist" in said and "layers 0 (embeddings) to 2" in said
    assert "--layer 3 --out" not in said and "Leave out --layer: this probe reads layer 2" in said


def test_an_eval_set_of_one_label_is_read_as_unable_to_tell_not_as_no_sign():
    # An --eval-data file of positive reviews only: a perfect probe ties always answering 'positive', and the reading
    # said "this run finds no sign of the label": no eval set of one label can show a sign, whatever the vector holds.
    from bertprobe.render.probe import readings

    for train_counts in ({"negative": 40, "positive": 60}, {"negative": 60, "positive": 40}):
        for answers in ([1] * 50, [1] * 45 + [0] * 5):
            said = " ".join(readings(_read_back([1] * 50, answers, train_counts)))
            assert "no sign of the label" not in said and "carries" not in said
            assert "every eval text is labelled 'positive'" in said and "cannot tell" in said


def test_a_task_whose_training_file_lacks_a_label_names_the_file_not_max_train(cli, tiny_encoder_path, tmp_path):
    # A GLUE folder whose train.tsv holds only positive sentences, and no --max-train: the hint told the user to give
    # "a larger --max-train", an option they never used and that cannot add the missing label.
    glue = tmp_path / "SST-2"
    glue.mkdir()
    (glue / "train.tsv").write_text("sentence\tlabel\n" + "".join(f"a fine film number {i}\t1\n" for i in range(8)))
    (glue / "dev.tsv").write_text("sentence\tlabel\na dull film\t0\na fine film\t1\n")
    code, out, err = cli("cls-train", "--task", "sst2", "--data-dir", glue, "--model", tiny_encoder_path)
    said = " ".join(err.split())
    assert code == 1 and out == "" and "Traceback" not in err
    assert "the training set has no rows labelled 'negative'" in said
    assert "--max-train" not in said and "hint: Add training rows labelled 'negative'" in said


def test_cls_predict_at_another_dtype_than_the_probe_was_trained_at_says_so(cli, tiny_encoder_path, tmp_path):
    # bfloat16 features move a float32 probe's probabilities by a few hundredths: not the trained numbers.
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p")
    assert json.loads((tmp_path / "p" / "probe.json").read_text())["dtype"] == "float32"
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--json")
    assert code == 0 and "trained on float32 features" not in err
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--dtype", "bfloat16", "--json")
    assert code == 0, err
    notices = " ".join(json.loads(out)["notices"] + [err])
    assert "trained on float32 features and reads bfloat16 ones" in " ".join(notices.split())


def test_a_sweep_with_cross_validated_c_says_c_was_chosen_for_the_main_cell_only(cli, tiny_encoder_path, tmp_path):
    rows = _rows()[:40]
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    args = ("cls-train", "--data", path, "--model", tiny_encoder_path, "--sweep")
    code, out, err = cli(*args, "--C", "auto")
    assert code == 0, err
    said = " ".join(out.split())
    assert "Every cell uses C=" in said and "chosen by cross-validation for layer" in said
    code, out, _ = cli(*args)
    assert "chosen by cross-validation" not in " ".join(out.split())  # a C given by hand is no choice to explain


def test_a_probe_without_its_models_layer_count_refuses_a_negative_layer(cli, tiny_encoder_path, tmp_path):
    # Saved by an older bertprobe (no num_layers): -1 was resolved as if the probe's own layer were the last one.
    _train_tiny(cli, tiny_encoder_path, tmp_path, "--out", tmp_path / "p", "--layer", 1)
    meta_path = tmp_path / "p" / "probe.json"
    meta = json.loads(meta_path.read_text())
    del meta["num_layers"]
    meta_path.write_text(json.dumps(meta))
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--layer", -1)
    assert code == 1 and out == "" and "does not record" in err and "reads layer 1" in err
    code, out, err = cli("cls-predict", tmp_path / "p", "a fine film", "--layer", 1, "--json")
    assert code == 0, err
