"""Saved artefacts are never trusted blindly, and no write can be half-done.

Feature-cache entries and saved probes carry a content hash that is checked on read; a probe is
written as one directory swapped in by one rename. Crash tests kill a real subprocess right after
each named write step (``BERTPROBE_TEST_KILL_AFTER``) and check that the next run gives exactly what
an uninterrupted run gives.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bertprobe.errors import ArtifactError

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "sentiment.csv"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERTPROBE_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def data_file(tmp_path) -> Path:
    with EXAMPLES.open(newline="") as handle:
        rows = [(row["text"], row["label"]) for row in csv.DictReader(handle)][:40]
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([("text", "label"), *rows])
    return path


def _train(cli, model, data, *extra):
    code, out, err = cli("cls-train", "--data", data, "--model", model, "--json", *extra)
    assert code == 0, err
    return json.loads(out), err


def _run(*args: str, kill_after: str | None = None, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BERTPROBE_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("BERTPROBE_TEST_KILL_AFTER", None)
    if kill_after:
        env["BERTPROBE_TEST_KILL_AFTER"] = kill_after
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)


# --------------------------------------------------------------------------------------------
# The feature cache.
# --------------------------------------------------------------------------------------------


def _rewrite_entry(entry: Path, change) -> None:
    """Change the stored values but keep the entry's metadata (key, shape, dtype): all finite."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(entry), framework="pt") as handle:
        metadata = handle.metadata()
        tensor = handle.get_tensor("features")
    save_file({"features": change(tensor).contiguous()}, str(entry), metadata=metadata)


def _flip_one_bit(tensor):
    import numpy as np
    import torch

    raw = tensor.numpy().copy().view(np.uint32)
    raw[3, 5] ^= 1 << 20  # a mantissa bit: the value stays finite and close
    return torch.from_numpy(raw.view(np.float32))


@pytest.mark.parametrize(
    "change", [lambda t: t * 0, _flip_one_bit, lambda t: t.flip(0)], ids=["zeroed", "one-bit", "rows-swapped"]
)
def test_a_cache_entry_changed_on_disk_is_rebuilt_and_said_so(cli, tiny_encoder_path, data_file, tmp_path, change):
    first, _ = _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "p1")
    [entry] = (tmp_path / "cache" / "features").glob("*.safetensors")
    good = entry.read_bytes()
    _rewrite_entry(entry, change)
    assert entry.read_bytes() != good
    again, err = _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "p2")
    assert again["cache_hits"] == 0 and "does not match its content hash" in again["cache_rebuilt"][0]
    assert "feature cache entry rebuilt" in err and "content hash" in err  # said on stderr
    assert again["metrics"] == first["metrics"]
    assert _weights(tmp_path / "p2") == _weights(tmp_path / "p1")  # the very same probe
    assert entry.read_bytes() == good  # rebuilt to the same bytes


def _weights(directory: Path) -> bytes:
    return (directory / "probe.safetensors").read_bytes()


def test_cache_write_killed_at_each_step_is_rebuilt_with_the_same_result(cli, tiny_encoder_path, data_file, tmp_path):
    reference, _ = _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "p-clean")  # uninterrupted
    args = ("-m", "bertprobe", "cls-train", "--data", str(data_file), "--model", str(tiny_encoder_path), "--json")
    for step in ("atomic-write:temp-written", "atomic-write:renamed"):
        cache = tmp_path / step.replace(":", "-")
        # Only the feature-cache entry's write: the fingerprint memo is written atomically before it.
        killed = _run(*args, kill_after=f"{step}@*.safetensors", cache=cache)
        assert killed.returncode == -signal.SIGKILL and killed.stdout == ""
        strays = list((cache / "features").glob(".*.tmp.safetensors"))
        assert len(strays) == (1 if step.endswith("written") else 0)
        for stray in strays:  # an hour old: the next run that writes to the cache removes it
            os.utime(stray, (stray.stat().st_atime - 7200, stray.stat().st_mtime - 7200))
        resumed = _run(*args, "--out", str(cache / "p"), cache=cache)
        assert resumed.returncode == 0, resumed.stderr
        result = json.loads(resumed.stdout)
        assert result["metrics"] == reference["metrics"] and _weights(cache / "p") == _weights(tmp_path / "p-clean")
        # Killed before the rename: nothing usable was cached; after it: the entry is complete and read back.
        assert (result["cache_hits"], result["cache_rebuilt"]) == ((0, []) if step.endswith("written") else (1, []))
        assert [p.suffix for p in (cache / "features").iterdir()] == [".safetensors"]  # no stray temporary


# --------------------------------------------------------------------------------------------
# Saved probes.
# --------------------------------------------------------------------------------------------


def _edit_meta(directory: Path, **changes) -> None:
    meta = json.loads((directory / "probe.json").read_text())
    meta.update(changes)
    (directory / "probe.json").write_text(json.dumps(meta))


@pytest.fixture
def two_probes(cli, tiny_encoder_path, data_file, tmp_path):
    _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "a")
    _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "b", "--C", "0.01")
    return tmp_path / "a", tmp_path / "b"


def test_probe_json_records_the_hash_of_its_weights(two_probes):
    from bertprobe.probe import load_probe

    for directory in two_probes:
        meta = json.loads((directory / "probe.json").read_text())
        assert meta["weights_sha256"] == hashlib.sha256((directory / "probe.safetensors").read_bytes()).hexdigest()
        assert load_probe(directory).labels == meta["labels"]
        hidden = [p.name for p in directory.parent.iterdir() if p.name.startswith(f".{directory.name}")]
        assert hidden == [f".{directory.name}.lock"]  # no staging folder left; the lock file stays


def _swap_weights(a: Path, b: Path) -> None:
    (a / "probe.safetensors").write_bytes((b / "probe.safetensors").read_bytes())


def _edit_one_weight(a: Path, b: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(a / "probe.safetensors"))
    tensors["coef"][0, 0] += 0.5
    save_file(tensors, str(a / "probe.safetensors"), metadata={"format": "bertprobe-probe"})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_swap_weights, "SHA-256 differs"),
        (_edit_one_weight, "SHA-256 differs"),
        (lambda a, b: _edit_meta(a, labels=["negative", "negative"]), "lists the label 'negative' twice"),
        (lambda a, b: _edit_meta(a, labels="negative,positive"), "'labels' should be list, not str"),
        (lambda a, b: _edit_meta(a, labels=["negative", 1]), "every label should be a non-empty string"),
        (lambda a, b: _edit_meta(a, labels=["negative", {"x": 1}]), "every label should be a non-empty string"),
        (lambda a, b: _edit_meta(a, layer="2"), "'layer' should be int, not str"),
        (lambda a, b: _edit_meta(a, layer=True), "'layer' should be int, not bool"),
        (lambda a, b: _edit_meta(a, layer=-1), "do not make sense"),
        (lambda a, b: _edit_meta(a, max_length=2), "max_length 2 do not make sense"),  # [CLS] [SEP] only
        (lambda a, b: _edit_meta(a, max_length=12.5), "'max_length' should be int, not float"),
        (lambda a, b: _edit_meta(a, pooling=["cls"]), "'pooling' should be str, not list"),
        (lambda a, b: _edit_meta(a, pooling="median"), "unknown pooling 'median'"),
        (lambda a, b: _edit_meta(a, fingerprint=None), "'fingerprint' should be str, not NoneType"),
        (lambda a, b: _edit_meta(a, weights_sha256=None), "'weights_sha256' should be str"),
        (lambda a, b: _edit_meta(a, model_path=3), "'model_path' should be str or null, not int"),
        (lambda a, b: (a / "probe.json").write_text("[1, 2]"), "is not a bertprobe probe"),
        (lambda a, b: _edit_meta(a, version=1), "probe format version 1"),
        # Well-typed edits that would change every prediction: the weights file records what the probe reads.
        (lambda a, b: _edit_meta(a, labels=["positive", "negative"]), "changed after the probe was saved (labels"),
        (lambda a, b: _edit_meta(a, layer=1), "changed after the probe was saved (layer"),
        (lambda a, b: _edit_meta(a, pooling="mean"), "saved (pooling"),
        (lambda a, b: _edit_meta(a, max_length=8, layer=0), "saved (layer, max_length"),
        (lambda a, b: _edit_meta(a, fingerprint="other#0123456789abcdef"), "saved (fingerprint"),
    ],
)
def test_a_changed_or_mistyped_probe_is_refused_in_one_line(cli, two_probes, damage, message):
    from bertprobe.probe import load_probe

    a, b = two_probes
    damage(a, b)
    with pytest.raises(ArtifactError, match=message.replace("(", r"\(")):
        load_probe(a)
    code, out, err = cli("cls-predict", a, "a fine film")
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2 and message in lines[0] and lines[1].startswith("hint:")


def test_a_probe_saved_before_its_weights_recorded_what_it_reads_still_loads(two_probes):
    from bertprobe.probe import load_probe

    a, _ = two_probes
    _edit_one_weight(a, a)  # rewritten with the older metadata (format only)
    _edit_meta(a, weights_sha256=hashlib.sha256((a / "probe.safetensors").read_bytes()).hexdigest())
    assert load_probe(a).labels == ["negative", "positive"]


def test_a_probe_for_another_model_is_refused_in_one_line(cli, two_probes, tiny_pretraining_path):
    code, out, err = cli("cls-predict", two_probes[0], "a fine film", "--model", tiny_pretraining_path)
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and len(lines) == 2
    assert "this probe was trained on" in lines[0] and "hint: Pass --model" in lines[1]


def test_the_hint_names_a_local_model_by_a_path_that_works_from_anywhere(
    cli, tiny_encoder_path, tiny_pretraining_path, data_file, tmp_path, monkeypatch
):
    monkeypatch.chdir(tiny_encoder_path.parent)
    _train(cli, f"./{tiny_encoder_path.name}", data_file, "--out", tmp_path / "probe")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("cls-predict", tmp_path / "probe", "a fine film", "--model", tiny_pretraining_path)
    assert code == 1 and f"hint: Pass --model {tiny_encoder_path.resolve()}," in err


def test_out_that_holds_other_files_is_refused_before_training(cli, tiny_encoder_path, data_file, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, stdout, err = cli("cls-train", "--data", data_file, "--model", tiny_encoder_path, "--out", out)
    assert code == 1 and stdout == "" and "holds other files (notes.txt)" in err
    assert (out / "notes.txt").read_text() == "keep me" and not (tmp_path / "cache" / "features").exists()
    (tmp_path / "file").write_text("")
    code, _, err = cli("cls-train", "--data", data_file, "--model", tiny_encoder_path, "--out", tmp_path / "file")
    assert code == 1 and "is a file" in err


def test_saved_files_get_the_permissions_any_new_file_gets(cli, tiny_encoder_path, data_file, tmp_path):
    """safetensors writes 0600 files: a probe saved in a shared folder was unreadable to everyone else."""
    import stat

    old = os.umask(0o022)
    try:
        _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "p")
    finally:
        os.umask(old)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in (tmp_path / "p").iterdir()}
    assert "probe.safetensors" in modes and set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((tmp_path / "p").stat().st_mode) == 0o755


def test_a_symlinked_out_gets_the_new_probe_where_it_points(cli, tiny_encoder_path, data_file, tmp_path):
    """--out runs/latest (a link to runs/v1): v1 holds the new probe afterwards and the link is still a link."""
    from bertprobe.probe import load_probe

    _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "v1")
    (tmp_path / "latest").symlink_to(tmp_path / "v1", target_is_directory=True)
    _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "latest", "--C", "0.01")
    assert (tmp_path / "latest").is_symlink()
    assert load_probe(tmp_path / "v1").meta["C"] == load_probe(tmp_path / "latest").meta["C"] == 0.01
    assert not [p.name for p in tmp_path.iterdir() if ".new-" in p.name or ".old-" in p.name or ".tmp-" in p.name]


SAVE_SCRIPT = """
import json, sys
import numpy as np
from bertprobe import atomic
from bertprobe.probe import save_probe
if sys.argv[2] == "no-exchange":
    atomic._exchange = lambda first, second: False
rng = np.random.default_rng(int(sys.argv[3]))
meta = dict(model="m", revision=None, fingerprint="m#abc", layer=2, num_layers=2, pooling="cls", max_length=64,
            labels=["negative", "positive"], metrics={"accuracy": float(sys.argv[3])})
save_probe(sys.argv[1], rng.normal(size=(1, 8)), rng.normal(size=1), rng.normal(size=8), rng.random(8) + 0.5, meta)
"""

SAVE_STEPS = [
    ("probe-save:weights-written", "old"),
    ("probe-save:meta-written", "old"),
    ("atomic-dir:complete", "old"),
    ("atomic-dir:swapped", "new"),
    ("atomic-dir:renamed", "new"),
]


@pytest.mark.parametrize("path", ["exchange", "no-exchange"])
def test_a_probe_save_killed_at_each_step_leaves_the_old_probe_or_the_new_one(tmp_path, path):
    from bertprobe.probe import load_probe

    def snapshot(directory: Path) -> dict[str, bytes]:
        load_probe(directory)  # loads cleanly (and finishes a half-done swap)
        return {name: (directory / name).read_bytes() for name in ("probe.json", "probe.safetensors")}

    def save(directory: Path, seed: int, kill_after: str | None = None) -> subprocess.CompletedProcess:
        return _run("-c", SAVE_SCRIPT, str(directory), path, str(seed), kill_after=kill_after, cache=tmp_path / "c")

    reference = tmp_path / "reference"
    assert save(reference / "old", 1).returncode == 0 and save(reference / "new", 2).returncode == 0
    expected = {"old": snapshot(reference / "old"), "new": snapshot(reference / "new")}
    steps = SAVE_STEPS if path == "exchange" else [*SAVE_STEPS[:3], ("atomic-dir:old-moved", "new"), SAVE_STEPS[4]]
    for step, survivor in steps:
        directory = tmp_path / step.replace(":", "-") / "probe"
        assert save(directory, 1).returncode == 0
        killed = save(directory, 2, kill_after=step)
        if step == "atomic-dir:swapped" and killed.returncode == 0:
            pytest.skip("this file system has no atomic rename-exchange")
        assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
        assert snapshot(directory) == expected[survivor], step
        # The next save works and leaves no staging folders behind.
        assert save(directory, 2).returncode == 0 and snapshot(directory) == expected["new"]
        assert sorted(p.name for p in directory.parent.iterdir()) == [".probe.lock", "probe"]  # no staging left


def test_crash_point_fires_on_the_nth_time_only(tmp_path):
    script = (
        "from bertprobe.atomic import crash_point\nfor i in range(3):\n    print(i, flush=True)\n    crash_point('x')"
    )
    assert _run("-c", script, kill_after="x#2", cache=tmp_path).stdout.split() == ["0", "1"]
    assert _run("-c", script, kill_after="y", cache=tmp_path).stdout.split() == ["0", "1", "2"]


def test_concurrent_saves_take_turns_and_a_reader_never_removes_a_live_save(tmp_path):
    """Two saves to one directory, and a reader's clean-up meanwhile: the live save's staging survives,
    the second save waits for the first, and the directory ends as the last complete save, with no strays."""
    import threading

    from bertprobe.atomic import atomic_directory, recover_directory

    target = tmp_path / "probe"
    inside, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with atomic_directory(target) as staging:
            (staging / "who").write_text("first")
            inside.set()
            release.wait(10)
            assert (staging / "who").read_text() == "first"  # the reader below did not remove it

    def second() -> None:
        with atomic_directory(target) as staging:
            (staging / "who").write_text("second")
        second_done.set()

    one = threading.Thread(target=first)
    one.start()
    assert inside.wait(10)
    recover_directory(target)  # a reader (cls-predict) cleaning up after a crash, while the save is live
    two = threading.Thread(target=second)
    two.start()
    assert not second_done.wait(0.5)  # waits for the first save's lock
    release.set()
    one.join(10)
    two.join(10)
    assert second_done.is_set()
    assert (target / "who").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".probe.lock", "probe"]


def test_reading_a_probe_or_a_wrong_path_leaves_no_lock_file_beside_it(cli, tmp_path):
    # A read with nothing to recover takes no lock: `cls-predict --probe data.csv` by mistake must not litter the
    # user's folder with a hidden `.data.csv.lock` (nor fail in a folder it cannot write to).
    from bertprobe.atomic import recover_directory

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "sentiment.csv").write_text("text,label\nGood.,positive\n")
    code, _, stderr = cli("cls-predict", folder / "sentiment.csv", "Fine.")
    assert code == 1 and "Traceback" not in stderr
    recover_directory(folder / "absent-probe")
    assert sorted(p.name for p in folder.iterdir()) == ["sentiment.csv"]


def test_a_write_removes_the_temporary_a_killed_write_left_an_hour_ago(tmp_path):
    # `--out results.jsonl` killed mid-write left a hidden temporary beside the file, one more at every kill.
    from bertprobe.atomic import atomic_write

    target = tmp_path / "results.jsonl"
    stale, fresh = tmp_path / ".results.jsonl.ab12cd_3.tmp.jsonl", tmp_path / ".results.jsonl.zz99yy00.tmp.jsonl"
    other = tmp_path / ".other.jsonl.ab12cd_3.tmp.jsonl"  # another target's: never touched
    for path in (stale, fresh, other):
        path.write_text("partial")
    hour_ago = stale.stat().st_mtime - 7200
    for path in (stale, other):
        os.utime(path, (hour_ago, hour_ago))
    atomic_write(target, "done\n")
    assert target.read_text() == "done\n"
    assert not stale.exists() and fresh.exists() and other.exists()  # a fresh one may be a live writer's


def test_a_cache_entry_whose_truncated_count_was_edited_is_rebuilt(cli, tiny_encoder_path, data_file, tmp_path):
    # The count of texts cut to fit is reported to the user ("N texts were truncated"): it is content, hashed too.
    import json as _json

    from safetensors import safe_open
    from safetensors.torch import save_file

    _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "p1")
    [entry] = (tmp_path / "cache" / "features").glob("*.safetensors")
    with safe_open(str(entry), framework="pt") as handle:
        key = _json.loads(handle.metadata()["key"])
        tensor = handle.get_tensor("features")
    key["truncated"] = 7
    save_file({"features": tensor}, str(entry), metadata={"key": _json.dumps(key, sort_keys=True)})
    again, _ = _train(cli, tiny_encoder_path, data_file, "--out", tmp_path / "p2")
    assert again["cache_hits"] == 0 and "does not match its content hash" in again["cache_rebuilt"][0]
