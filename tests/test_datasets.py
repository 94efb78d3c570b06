"""Labelled data: GLUE SST-2 files, the offline / unreachable errors, and the user's own files."""

from __future__ import annotations

import dataclasses
import http.server
import io
import json
import os
import re
import sys
import threading
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from bertprobe import datasets
from bertprobe.errors import DataError, NetworkError, OfflineError

GLUE_TRAIN = (
    "sentence\tlabel\n"
    "a gripping , funny film \t1\n"
    "the plot is a tedious mess \t0\n"
    'an " odd quote but a lovely cast \t1\n'
    "dull , dull , dull \t0\n"
)
GLUE_DEV = (
    "sentence\tlabel\nit 's a charming and often affecting journey . \t1\nunflinchingly bleak and desperate \t0\n"
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))


def _glue_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.tsv").write_text(GLUE_TRAIN)
    (root / "dev.tsv").write_text(GLUE_DEV)
    return root


def test_glue_files_give_sst2_with_named_labels(tmp_path):
    split = datasets.load_task("sst2", _glue_dir(tmp_path / "SST-2"))
    assert split.label_names == ["negative", "positive"]
    assert split.train.texts[0] == "a gripping , funny film"
    assert split.train.labels == ["positive", "negative", "positive", "negative"]
    assert split.train.texts[2] == 'an " odd quote but a lovely cast'  # GLUE's tsv is unquoted
    assert split.eval.labels == ["positive", "negative"]
    assert split.counts("train") == {"negative": 2, "positive": 2}
    # A partial copy is announced: the real SST-2 has 67,349 / 872 sentences.
    assert any("67349 / 872" in note for note in split.notes)
    # The folder GLUE's zip unpacks to may be given, or its parent.
    assert datasets.load_task("sst2", tmp_path).train.texts == split.train.texts


def test_glue_file_with_a_bad_label_names_the_line(tmp_path):
    root = _glue_dir(tmp_path / "glue")
    (root / "dev.tsv").write_text("sentence\tlabel\nfine \t1\nhmm \tpositive\n")
    with pytest.raises(DataError, match=r"dev\.tsv, line 3: label 'positive'"):
        datasets.load_task("sst2", root)


def test_glue_dir_without_the_files_says_what_is_missing(tmp_path):
    (tmp_path / "train.tsv").write_text(GLUE_TRAIN)
    with pytest.raises(DataError, match=r"no dev\.tsv") as info:
        datasets.load_task("sst2", tmp_path)
    assert "SST-2.zip" in info.value.hint


def test_offline_sst2_is_one_clear_error(cli):
    with pytest.raises(OfflineError):  # conftest sets HF_HUB_OFFLINE=1: no download is even tried
        datasets.load_task("sst2")
    code, out, err = cli("cls-train", "--task", "sst2", "--model", "minilm")
    assert code == 1 and out == ""
    assert "sst2 is not available offline" in err
    assert "--data-dir" in err and "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip" in err
    assert "Traceback" not in err


@pytest.fixture
def online(monkeypatch):
    """Pretend the network is allowed (HF_HUB_OFFLINE off) and point SST-2 at a local URL."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "_from_hub", lambda task: None)  # with `datasets` installed it would go online
    monkeypatch.setattr(datasets, "TASKS", dict(datasets.TASKS))
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT_S", 2.0)

    def point_at(url: str) -> None:
        datasets.TASKS["sst2"] = dataclasses.replace(datasets.TASKS["sst2"], glue_url=url)

    return point_at


def test_unreachable_download_is_a_network_error_with_instructions(online):
    online("http://127.0.0.1:9/glue/SST-2.zip")  # the discard port: connection refused at once
    with pytest.raises(NetworkError, match=re.escape("downloading http://127.0.0.1:9/glue/SST-2.zip failed")) as info:
        datasets.load_task("sst2")
    assert "--data-dir" in info.value.hint


def test_download_unpacks_glue_zip_into_the_cache_and_reuses_it(online, tmp_path):
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("SST-2/train.tsv", GLUE_TRAIN)
        archive.writestr("SST-2/dev.tsv", GLUE_DEV)
        archive.writestr("SST-2/test.tsv", "index\tsentence\n0\tunlabelled\n")
    body = payload.getvalue()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        online(f"http://127.0.0.1:{server.server_port}/glue/data/SST-2.zip")
        split = datasets.load_task("sst2")
    finally:
        server.shutdown()
    assert requests == ["/glue/data/SST-2.zip"]
    assert split.train.labels == ["positive", "negative", "positive", "negative"]
    cached = tmp_path / "cache" / "datasets" / "sst2"
    assert sorted(p.name for p in cached.iterdir()) == ["dev.tsv", "sha256.json", "train.tsv"]  # no temp files
    # The server is gone: a second load must come from the cache, even offline.
    again = datasets.load_task("sst2", offline=True)
    assert again.eval.texts == split.eval.texts
    # A cached copy changed on disk (here: a sentence cut off) is refused, not read as SST-2.
    train = (cached / "train.tsv").read_bytes()
    (cached / "train.tsv").write_bytes(train[:-8])
    with pytest.raises(DataError, match=r"sst2 in .* changed since it was downloaded \(train\.tsv differ\)") as info:
        datasets.load_task("sst2", offline=True)
    assert f"Delete {cached}" in info.value.hint
    (cached / "train.tsv").write_bytes(train)
    (cached / "sha256.json").write_text("{")
    with pytest.raises(DataError, match=r"sha256\.json is damaged"):
        datasets.load_task("sst2", offline=True)


def test_a_cached_copy_without_digests_is_checked_from_its_first_read_on(tmp_path):
    # What a download killed before its digests (or an older bertprobe) leaves: whole files, no sha256.json.
    cached = _glue_dir(tmp_path / "cache" / "datasets" / "sst2")
    assert datasets.load_task("sst2", offline=True).train.labels == ["positive", "negative", "positive", "negative"]
    (cached / "train.tsv").write_text(GLUE_TRAIN.replace("\t1\n", "\t0\n"))  # later changed: every label 0
    with pytest.raises(DataError, match=r"changed since it was downloaded \(train\.tsv differ\)"):
        datasets.load_task("sst2", offline=True)


def test_csv_columns_are_guessed_and_labels_kept_as_written(tmp_path):
    (tmp_path / "reviews.csv").write_text('id,review,sentiment\n1,"Great, really.",pos\n2,Awful.,neg\n3,Fine,pos\n')
    data = datasets.read_labelled(tmp_path / "reviews.csv")
    assert data.texts == ["Great, really.", "Awful.", "Fine"]
    assert data.labels == ["pos", "neg", "pos"]
    assert data.origin[1].endswith("reviews.csv, line 3")


def test_named_columns_in_jsonl(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"body": "good", "y": 1}\n{"body": "bad", "y": 0}\n')
    data = datasets.read_labelled(tmp_path / "d.jsonl", text_column="body", label_column="y")
    assert data.texts == ["good", "bad"] and data.labels == ["1", "0"]


def test_missing_columns_list_what_the_file_has(tmp_path):
    (tmp_path / "d.csv").write_text("words,y\nhello,1\n")
    with pytest.raises(DataError, match=r"no text column among text, sentence.*\(columns: words, y\)") as info:
        datasets.read_labelled(tmp_path / "d.csv")
    assert "--text-column" in info.value.hint


def test_bad_rows_are_reported_with_their_line(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\nfine,pos\n\nno label here,\n")
    with pytest.raises(DataError, match=r"d\.csv, line 4: empty 'label'"):
        datasets.load_files(tmp_path / "d.csv")


def test_eval_label_unseen_in_training_is_refused_with_its_line(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,pos\nb,neg\n")
    (tmp_path / "eval.csv").write_text("text,label\nc,pos\nd,neutral\n")
    with pytest.raises(DataError, match=r"eval\.csv, line 3: label 'neutral' never occurs"):
        datasets.load_files(tmp_path / "train.csv", tmp_path / "eval.csv")


def test_a_single_class_is_refused(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\na,pos\nb,pos\n")
    with pytest.raises(DataError, match="at least two classes"):
        datasets.load_files(tmp_path / "d.csv")


def test_split_is_stratified_seeded_and_disjoint():
    rows = [(f"text {i}", "pos" if i % 4 else "neg") for i in range(200)]  # 150 pos / 50 neg
    data = datasets.LabelledData([t for t, _ in rows], [label for _, label in rows], [""] * 200)
    train, held = datasets.stratified_split(data, 0.2, seed=3)
    assert len(held) == 40 and len(train) == 160
    assert Counter(held.labels) == {"pos": 30, "neg": 10}
    assert not set(train.texts) & set(held.texts)
    assert datasets.stratified_split(data, 0.2, seed=3)[1].texts == held.texts
    assert datasets.stratified_split(data, 0.2, seed=4)[1].texts != held.texts


def test_subsample_keeps_label_shares():
    data = datasets.LabelledData([str(i) for i in range(100)], ["a"] * 80 + ["b"] * 20, [""] * 100)
    sample = datasets.subsample(data, 10, seed=0)
    assert Counter(sample.labels) == {"a": 8, "b": 2}
    assert datasets.subsample(data, 1000, seed=0) is data
    with pytest.raises(DataError, match="fewer rows than there are labels"):
        datasets.subsample(data, 1, seed=0)
    almost_all = datasets.subsample(data, 99, seed=0)  # one row left out: too few to stratify, still sampled
    assert len(almost_all.texts) == 99 and len(set(almost_all.texts)) == 99


def test_integer_labels_sort_numerically(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"t{i},{i % 11}\n" for i in range(44)))
    split = datasets.load_files(tmp_path / "d.csv", test_size=0.25)
    assert split.label_names == [str(i) for i in range(11)]


def test_label_order_is_the_same_in_every_process():
    """Labels that are one integer written two ways ("1", "01") tie on their number: the tie must not be broken
    by set order, which changes with the hash seed, so the class order (and what follows it) changes per run."""
    import subprocess
    import sys

    script = "from bertprobe import datasets; print(datasets._label_order(['1', '01', '0', '00', '-0']))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    orders = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**env, "PYTHONHASHSEED": str(seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(8)
    }
    assert orders == {"['-0', '0', '00', '01', '1']\n"}


def test_the_shipped_sentiment_sample_is_balanced_and_distinct():
    path = Path(__file__).parent.parent / "examples" / "sentiment.csv"
    data = datasets.read_labelled(path)
    assert len(data) >= 300
    assert Counter(data.labels) == {"positive": len(data) // 2, "negative": len(data) // 2}
    assert len(set(data.texts)) == len(data.texts)


# --------------------------------------------------------------------------------------------
# Hostile or odd data files.
# --------------------------------------------------------------------------------------------


def test_jsonl_splits_on_newlines_only(tmp_path):
    path = tmp_path / "d.jsonl"
    # Raw (unescaped) U+2028, U+0085 and U+2029 inside JSON strings are part of the text.
    path.write_text(
        '{"text": "one\u2028line", "label": "a"}\r\n{"text": "two\u0085three", "label": "b"}\n'
        '{"text": "four\u2029five", "label": "a"}\n{"text": "six", "label": {"x": 1}}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"d\.jsonl, line 4: 'label' is an object, not a string"):
        datasets.read_labelled(path)
    path.write_text(path.read_text(encoding="utf-8").replace('{"x": 1}', '"b"'), encoding="utf-8")
    data = datasets.read_labelled(path)
    assert data.texts == ["one\u2028line", "two\u0085three", "four\u2029five", "six"]
    assert data.origin[3].endswith("line 4")


def test_csv_keeps_line_separators_inside_a_field(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"one\u2028two",a\nthree\u0085four,b\n', encoding="utf-8")
    data = datasets.read_labelled(path)
    assert data.texts == ["one\u2028two", "three\u0085four"] and data.origin[1].endswith("line 3")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": ["a", "list"], "label": "a"}', "'text' is a list, not a string"),
        ('{"text": "fine", "label": {"name": "a"}}', "'label' is an object, not a string"),
        ('{"text": "fine", "label": NaN}', "'label' is the number nan"),
        ('{"text": "fine", "label": "a", "label": "b"}', "the key 'label' appears twice"),
        ('["fine", "a"]', "expected a JSON object, got list"),
    ],
)
def test_a_jsonl_value_of_the_wrong_kind_names_its_line(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n' + line + "\n")
    with pytest.raises(DataError, match=re.escape(f"d.jsonl, line 2: {message}")):
        datasets.read_labelled(path)


def test_unused_fields_may_hold_anything(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "ok", "label": "a", "meta": {"tags": [1, 2]}}\n{"text": "no", "label": 0}\n')
    assert datasets.read_labelled(path).labels == ["a", "0"]


@pytest.mark.parametrize(
    ("name", "content"),
    [("d.csv", "text,label,text\na,b,c\n"), ("d.tsv", "text\tlabel\tlabel\na\tb\tc\n"), ("d.csv", " label ,label\n")],
)
def test_a_header_with_a_repeated_column_is_refused(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=r"line 1: the header names the column\(s\) '(text|label)' more than once"):
        datasets.read_labelled(path, "text", "label")


def test_labels_differing_only_in_case_are_warned_about(cli, tmp_path, tiny_encoder_path):
    path = tmp_path / "d.csv"
    rows = [f"text {i},{label}" for i, label in enumerate(["Positive", "positive", "negative"] * 6)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    split = datasets.load_files(path, test_size=0.5)
    assert split.label_names == ["Positive", "negative", "positive"]
    [note] = split.notes
    assert "'Positive' and 'positive' differ only in case" in note and "3 different classes" not in note
    code, _, err = cli("cls-train", "--data", path, "--model", tiny_encoder_path, "--test-size", "0.5", "--json")
    assert code == 0 and "'Positive' and 'positive' differ only in case" in err
    evaluation = tmp_path / "e.csv"
    evaluation.write_text("text,label\nx,NEGATIVE\n")
    with pytest.raises(DataError, match="labels are case-sensitive and the training data has 'negative'"):
        datasets.load_files(path, evaluation)


def test_one_label_number_written_two_ways_is_warned_about(tmp_path):
    # A JSON file whose label numbers came from an int and a float column: 1 and 1.0 read as two classes.
    path = tmp_path / "d.jsonl"
    rows = [{"text": f"text {i}", "label": label} for i, label in enumerate([1, 1.0, 0] * 6)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    split = datasets.load_files(path, test_size=0.5)
    assert split.label_names == ["0", "1", "1.0"]
    [note] = split.notes
    assert "the labels '1' and '1.0' are one number written two ways" in note


def _serve(online, body: bytes, headers: dict[str, str] | None = None):
    server = _server(body, headers)
    online(f"http://127.0.0.1:{server.server_port}/SST-2.zip")
    return server


def _server(body: bytes, headers: dict[str, str] | None = None):
    """A local HTTP server (started) that answers every GET with ``body``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            for key, value in (headers if headers is not None else {"Content-Length": str(len(body))}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _zip(train: str | bytes) -> bytes:
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("SST-2/train.tsv", train)
        archive.writestr("SST-2/dev.tsv", GLUE_DEV)
    return payload.getvalue()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("bomb", "would inflate to"),  # 4 MB of one repeated line: ~1000x, over the ratio cap
        ("too big", "would inflate to"),  # over the per-member cap (lowered to 1 MB here)
        ("huge download", "more than GLUE's zip can be"),  # Content-Length over the cap
        ("long download", "sent more than"),  # no Content-Length, the body runs past the cap
    ],
)
def test_a_zip_bomb_or_oversized_download_is_refused_and_nothing_is_written(
    online, tmp_path, monkeypatch, case, message
):
    import random

    monkeypatch.setattr(datasets, "_from_hub", lambda task: None)
    monkeypatch.setattr(datasets, "MAX_MEMBER_BYTES", 1 << 20)
    monkeypatch.setattr(datasets, "MAX_DOWNLOAD_BYTES", 1 << 20)
    headers = None
    if case == "bomb":
        body = _zip(GLUE_TRAIN.encode() + b"a fine film\t1\n" * 300_000)
    elif case == "too big":
        words = [f"w{random.Random(i).randrange(10**6)}" for i in range(200_000)]
        body = _zip(GLUE_TRAIN.encode() + " ".join(words).encode() + b"\t1\n")
    else:
        body = b"x" * ((1 << 20) + 10)
        headers = {"Content-Length": str(len(body))} if case == "huge download" else {}
    server = _serve(online, body, headers)
    try:
        with pytest.raises(NetworkError, match=message):
            datasets.load_task("sst2")
    finally:
        server.shutdown()
    cached = tmp_path / "cache" / "datasets" / "sst2"
    assert not cached.exists() or list(cached.iterdir()) == []


@pytest.mark.parametrize(
    "kill",
    [
        "atomic-write:temp-written@train.tsv",
        "atomic-write:renamed@train.tsv",
        "atomic-write:renamed@dev.tsv",
        "atomic-write:temp-written@sha256.json",
        "atomic-write:renamed@sha256.json",
    ],
)
def test_a_download_killed_at_each_write_leaves_a_cache_the_next_run_reads_or_rebuilds(tmp_path, kill):
    """SIGKILL after each write step of the SST-2 download; the next run gives what an uninterrupted one does."""
    import subprocess
    import sys

    server = _server(_zip(GLUE_TRAIN))
    url = f"http://127.0.0.1:{server.server_port}/SST-2.zip"
    script = (
        "import dataclasses, json, sys\n"
        "from bertprobe import datasets\n"
        "datasets._from_hub = lambda task: None\n"  # the local server is the only source: never the hub
        "datasets.TASKS['sst2'] = dataclasses.replace(datasets.TASKS['sst2'], glue_url=sys.argv[1])\n"
        "split = datasets.load_task('sst2')\n"
        "print(json.dumps([split.train.texts, split.train.labels, split.eval.texts, split.eval.labels]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(BERTPROBE_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    try:
        killed = subprocess.run([sys.executable, "-c", script, url], env={**env, "BERTPROBE_TEST_KILL_AFTER": kill},
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert killed.returncode == -9, killed.stderr
        again = subprocess.run([sys.executable, "-c", script, url], env=env, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
        assert again.returncode == 0, again.stderr
        fresh = {**env, "BERTPROBE_CACHE": str(tmp_path / "c2")}
        clean = subprocess.run([sys.executable, "-c", script, url], env=fresh, capture_output=True, text=True,
                               timeout=120)  # fmt: skip
    finally:
        server.shutdown()
    assert json.loads(again.stdout) == json.loads(clean.stdout)
    cached = tmp_path / "cache" / "datasets" / "sst2"
    # A kill before a rename leaves its hidden temp file (swept after an hour, as every atomic write's is), never
    # a half-written train.tsv, dev.tsv or sha256.json.
    left = [p.name for p in cached.iterdir() if p.name not in ("train.tsv", "dev.tsv", "sha256.json")]
    assert all(name.startswith(".") and ".tmp" in name for name in left), left
    # Killed before the digests were renamed in, the copy (whole: each file was renamed in) is read, and hashed then.
    digests = cached / "sha256.json"
    assert json.loads(digests.read_text()).keys() == {"train.tsv", "dev.tsv"}


def _fake_datasets_library(monkeypatch, tables):
    """`datasets` installed, its load_dataset answering ``tables`` ({part: {column: values}}) without a network."""
    import importlib.machinery
    import sys
    import types

    from bertprobe.models import spec

    module = types.ModuleType("datasets")
    module.__spec__ = importlib.machinery.ModuleSpec("datasets", None)
    module.load_dataset = lambda hub_id: tables
    monkeypatch.setitem(sys.modules, "datasets", module)
    monkeypatch.setattr(spec, "_hub_reachable", lambda timeout=3.0: True)  # never the network in a test


def test_hub_rows_marked_unlabelled_are_refused_not_read_as_the_last_label(monkeypatch):
    # GLUE marks an unlabelled row -1: label_names[-1] would have made it "positive" without a word.
    task = datasets.get_task("sst2")
    good = {"sentence": ["a fine film ", "dull"], "label": [1, 0]}
    _fake_datasets_library(monkeypatch, {"train": {"sentence": ["a fine film", "no label"], "label": [1, -1]},
                                         "validation": good})  # fmt: skip
    with pytest.raises(datasets._Unavailable, match="train row 2 has label -1"):
        datasets._from_hub(task)
    _fake_datasets_library(monkeypatch, {"train": good, "validation": good})
    split = datasets._from_hub(task)
    assert split.train.texts == ["a fine film", "dull"]  # stripped, as the GLUE files are read
    assert split.train.labels == [task.label_names[1], task.label_names[0]]


@pytest.mark.parametrize("hashed", [True, False])
def test_a_cached_copy_that_cannot_be_read_is_one_error_line(tmp_path, monkeypatch, hashed):
    cached = _glue_dir(tmp_path / "cache" / "datasets" / "sst2")
    if hashed:
        datasets.load_task("sst2", offline=True)  # the first read records the digests
    assert (cached / "sha256.json").is_file() == hashed
    real = Path.read_bytes

    def failing(path):
        if path.name == "train.tsv":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", failing)
    with pytest.raises(DataError, match=r"the cached sst2 in .* cannot be read \(Permission denied\)") as info:
        datasets.load_task("sst2", offline=True)
    assert f"Delete {cached}" in info.value.hint


def test_a_hold_out_that_takes_every_row_of_a_label_is_refused_naming_test_size(tmp_path):
    # 18 'neg', 2 'pos', --test-size 0.8: the stratified split put both 'pos' rows in eval, and cls-train then said
    # "the training set has no rows labelled 'pos'; give a larger --max-train" to a user who never gave --max-train.
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{'pos' if i < 2 else 'neg'}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"--test-size 0\.8 leaves no training row labelled 'pos'") as refused:
        datasets.load_files(path, test_size=0.8)
    assert "--test-size" in refused.value.hint and "--max-train" not in refused.value.hint
    split = datasets.load_files(path, test_size=0.5)  # one 'pos' row on each side: fine
    assert Counter(split.train.labels)["pos"] == 1 and Counter(split.eval.labels)["pos"] == 1


def test_subsample_too_small_to_stratify_with_sklearn_still_keeps_every_label_and_its_share():
    # A label with one row (or fewer rows left out than labels) made --max-train fall back to a plain random sample,
    # announced as "stratified": it dropped the one-row label in 7 of 10 seeds (then "no rows labelled 'b'").
    one_b = datasets.LabelledData([f"t{i}" for i in range(101)], ["a"] * 100 + ["b"], [""] * 101)
    for seed in range(10):
        sample = datasets.subsample(one_b, 50, seed)
        assert Counter(sample.labels) == {"a": 49, "b": 1} and len(set(sample.texts)) == 50
    assert datasets.subsample(one_b, 50, 0).texts == datasets.subsample(one_b, 50, 0).texts  # seeded
    assert datasets.subsample(one_b, 50, 0).texts != datasets.subsample(one_b, 50, 1).texts
    few_left_out = datasets.LabelledData([f"t{i}" for i in range(22)], ["a"] * 10 + ["b"] * 2 + ["c"] * 10, [""] * 22)
    for seed in range(10):  # 20 of 22: shares 9.1 / 1.8 / 9.1 rows
        assert Counter(datasets.subsample(few_left_out, 20, seed).labels) == {"a": 9, "b": 2, "c": 9}


def test_the_split_line_never_rounds_a_small_hold_out_to_zero():
    # --test-size 0.007 of 310 rows holds out 3 of them: "100% train / 0% eval" would say nothing was held out.
    examples = Path(__file__).resolve().parent.parent / "examples" / "sentiment.csv"
    split = datasets.load_files(examples, test_size=0.007)
    assert len(split.eval) > 0
    assert "split 99.3% train / 0.7% eval" in split.source
    assert "split 80% train / 20% eval" in datasets.load_files(examples).source


def test_the_hub_dataset_is_quiet_and_a_partial_one_is_named(monkeypatch, capsys):
    import sys
    import warnings

    task = datasets.get_task("sst2")
    good = {"sentence": ["a fine film", "dull"], "label": [1, 0]}
    _fake_datasets_library(monkeypatch, {"train": good, "validation": good})
    loud = sys.modules["datasets"].load_dataset

    def load_dataset(hub_id):  # what the real library does on a first download
        print("Generating train split: 100%|██████████| 67349/67349", file=sys.stderr)
        print("Downloading readme: 5.27kB")
        warnings.warn("`trust_remote_code` is deprecated", FutureWarning, stacklevel=1)
        return loud(hub_id)

    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", load_dataset)
    split = datasets._from_hub(task)
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # the terminal belongs to bertprobe
    # Two sentences where SST-2 has 67,349 / 872: said, as for a --data-dir copy of another size.
    assert split.notes == ["the hub's stanfordnlp/sst2 holds 2 / 2 sentences; the full sst2 has 67349 / 872"]


def test_an_unreachable_hub_is_not_retried_for_half_a_minute(monkeypatch):
    # Unreachable, `datasets` retried its HEAD requests for about 24 s (printing each retry) before failing: now
    # only its cache is asked (its offline switch, put back after), and the reason says what happened.
    import huggingface_hub.constants as hub_constants

    from bertprobe.models import spec

    task = datasets.get_task("sst2")
    _fake_datasets_library(monkeypatch, {})
    monkeypatch.setattr(spec, "_hub_reachable", lambda timeout=3.0: False)
    seen = []

    def load_dataset(hub_id):
        seen.append(hub_constants.HF_HUB_OFFLINE)
        raise ConnectionError(f"Couldn't reach '{hub_id}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", load_dataset)
    before = hub_constants.HF_HUB_OFFLINE
    with pytest.raises(datasets._Unavailable, match="the hub is unreachable and `datasets` has no cached copy"):
        datasets._from_hub(task)
    assert seen == [True] and before == hub_constants.HF_HUB_OFFLINE
