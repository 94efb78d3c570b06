"""A run with --input FILE --out FILE killed part-way resumes when the same command runs again.

Each test kills a real process (``BERTPROBE_TEST_KILL_AFTER``) right after one of the write steps, runs the same
command again, and compares the final file with an uninterrupted run's, byte for byte. Chunks are made small
(3 texts) so a short file has several of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 3
# 11 lines, one of them empty (left out by --on-bad skip): 10 texts, chunks of 3, 3, 3 and 1.
TEXTS = [f"The cat number {n} sat on the [MASK]." for n in range(1, 6)] + [""]
TEXTS += [f"She drank a cup of [MASK] at {n}." for n in range(6, 11)]
FILL = ("fillmask", "-m", "tiny-mlm", "--on-bad", "skip", "--top-k", "3", "--json")
RUNNER = f"""
import runpy, sys
import bertprobe.inputs
bertprobe.inputs.CHUNK_TEXTS = {CHUNK}
sys.argv[0] = "bertprobe"
runpy.run_module("bertprobe", run_name="__main__", alter_sys=True)
"""


def _run(*args, kill=None, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("BERTPROBE_TEST_KILL_AFTER", None)
    if kill:
        env["BERTPROBE_TEST_KILL_AFTER"] = kill
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=300,
        cwd=ROOT,
    )


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _journal(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial.json")


def _partial(out: Path) -> Path:
    return out.with_name(f".{out.name}.partial")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "texts.txt"
    path.write_text("\n".join(TEXTS) + "\n")
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, corpus) -> bytes:
    """The file an uninterrupted run writes; it leaves nothing else beside it."""
    folder = tmp_path_factory.mktemp("whole")
    out = folder / "whole.jsonl"
    run = _run(*FILL, "--input", corpus, "--out", out)
    assert run.returncode == 0, run.stderr
    assert _hidden(folder) == []  # no partial file, no journal
    assert "resuming" not in run.stderr
    assert "skipped 1 bad line 6: empty text" in run.stderr
    data = out.read_bytes()
    assert len(data.splitlines()) == 10
    return data


@pytest.mark.parametrize(
    ("kill", "says"),
    [
        ("jsonl:line-written#2", None),  # nothing committed yet: a fresh start, nothing to say
        ("jsonl:line-written#5", "resuming {out} after 3 result(s) of an interrupted run"),
        ("resume:partial-synced#2", "resuming {out} after 3 result(s)"),
        ("resume-journal:temp-written#2", "resuming {out} after 3 result(s)"),
        ("resume:journal-written#2", "resuming {out} after 6 result(s)"),
        ("resume:journal-written#4", "resuming {out} after 10 result(s)"),
        ("resume:before-rename", "resuming {out} after 10 result(s)"),
        ("atomic-write:renamed", "not resuming the interrupted run of {out}: its partial results are missing"),
    ],
)
def test_a_killed_run_resumes_to_the_same_bytes(tmp_path, corpus, uninterrupted, kill, says):
    out = tmp_path / "results.jsonl"
    out.write_text("an earlier run\n")
    killed = _run(*FILL, "--input", corpus, "--out", out, kill=kill)
    assert killed.returncode == -9, killed.stderr
    if kill != "atomic-write:renamed":
        assert out.read_text() == "an earlier run\n"  # --out itself is all or nothing
    rerun = _run(*FILL, "--input", corpus, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    if says is None:
        assert "resuming" not in rerun.stderr
    else:
        assert says.format(out=out) in rerun.stderr
    assert out.read_bytes() == uninterrupted
    assert "Wrote 10 result(s)" in rerun.stderr  # the count covers the interrupted run's results too
    assert "skipped 1 bad line 6: empty text" in rerun.stderr
    assert _hidden(tmp_path) == []


def test_two_kills_then_a_resume_and_the_summary_says_what_it_covers(tmp_path):
    corpus = tmp_path / "sentences.txt"
    corpus.write_text("\n".join(text.replace("[MASK]", "mat") for text in TEXTS) + "\n")
    args = ("score", "-m", "tiny-mlm", "--on-bad", "skip", "--input", corpus)
    whole = tmp_path / "whole.jsonl"
    plain = _run(*args, "--out", whole)
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "scores.jsonl"
    assert _run(*args, "--out", out, kill="resume:journal-written#1").returncode == -9
    second = _run(*args, "--out", out, kill="resume:journal-written#2")  # this run's second: 9 done
    assert second.returncode == -9 and "resuming" in second.stderr
    assert json.loads(_journal(out).read_text())["state"]["results"] == 9
    rerun = _run(*args, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {out} after 9 result(s)" in rerun.stderr
    assert "Wrote 10 result(s)" in rerun.stderr and "9 of them from the interrupted run" in rerun.stderr
    said = " ".join(rerun.stdout.split())
    assert "Resumed after 9 result(s) of an interrupted run" in said and f"{out} holds all 10" in said
    assert out.read_bytes() == whole.read_bytes()


def _killed_after_two_chunks(corpus: Path, out: Path, *extra: str) -> None:
    killed = _run(*FILL, *extra, "--input", corpus, "--out", out, kill="resume:journal-written#2")
    assert killed.returncode == -9, killed.stderr
    assert _journal(out).is_file() and _partial(out).is_file()


def test_other_arguments_start_over(tmp_path, corpus):
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(corpus, out, "--seed", "1")
    rerun = _run(*FILL, "--input", corpus, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"not resuming the interrupted run of {out}: its arguments changed; starting over" in rerun.stderr
    assert "resuming " + str(out) not in rerun.stderr.replace("not resuming", "")
    assert [json.loads(line)["seed"] for line in out.read_text().splitlines()] == [0] * 10
    assert _hidden(tmp_path) == []


def test_an_edited_input_starts_over_and_gives_that_input_s_file(tmp_path, corpus):
    texts = tmp_path / "texts.txt"
    texts.write_bytes(corpus.read_bytes())
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(texts, out)
    texts.write_text(texts.read_text().replace("number 1 ", "number one "))
    rerun = _run(*FILL, "--input", texts, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert "its input file changed; starting over" in rerun.stderr
    fresh = tmp_path / "fresh.jsonl"
    assert _run(*FILL, "--input", texts, "--out", fresh).returncode == 0
    assert out.read_bytes() == fresh.read_bytes()
    assert json.loads(out.read_text().splitlines()[0])["text"] == "The cat number one sat on the [MASK]."


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("journal-cut", "its journal is damaged"),
        ("journal-state", "its journal is damaged"),
        ("partial-cut", "its partial results are shorter than its journal says"),
        ("partial-edited", "its partial results do not match its journal"),
        ("journal-gone", "its partial results have no journal"),
    ],
)
def test_a_damaged_journal_or_partial_file_starts_over(tmp_path, corpus, uninterrupted, damage, says):
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(corpus, out)
    journal, partial = _journal(out), _partial(out)
    recorded = json.loads(journal.read_text())
    if damage == "journal-cut":
        journal.write_text(journal.read_text()[:40])
    elif damage == "journal-state":  # the key still matches, but the counts cannot be this input's
        recorded["state"]["items"] = 5
        journal.write_text(json.dumps(recorded))
    elif damage == "partial-cut":
        with partial.open("r+b") as file:
            file.truncate(recorded["bytes"] - 10)
    elif damage == "partial-edited":
        data = bytearray(partial.read_bytes())
        data[100] ^= 1
        partial.write_bytes(bytes(data))
    else:
        journal.unlink()
    rerun = _run(*FILL, "--input", corpus, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"not resuming the interrupted run of {out}: {says}" in rerun.stderr
    assert out.read_bytes() == uninterrupted
    assert _hidden(tmp_path) == []


def test_stdin_does_not_resume_and_clears_a_stale_partial(tmp_path, corpus, uninterrupted):
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(corpus, out)
    piped = _run(*FILL, "--input", "-", "--out", out, stdin=corpus.read_text())
    assert piped.returncode == 0, piped.stderr
    assert "texts read from stdin starts over; its partial results removed" in piped.stderr
    assert out.read_bytes() == uninterrupted  # the same texts, computed whole
    assert _hidden(tmp_path) == []
    killed = _run(*FILL, "--input", "-", "--out", out, stdin=corpus.read_text(), kill="jsonl:line-written#5")
    assert killed.returncode == -9
    assert not _partial(out).exists() and not _journal(out).exists()  # written as before: a temporary file
    assert out.read_bytes() == uninterrupted


def test_a_second_run_writing_the_same_out_is_refused(tmp_path, corpus):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "results.jsonl"
    with _partial(out).open("a") as held:  # another run holds it
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        busy = _run(*FILL, "--input", corpus, "--out", out)
    assert busy.returncode == 1
    assert "another bertprobe run is writing it now" in busy.stderr
    assert not out.exists()


def test_the_journal_records_the_run_s_identity(tmp_path, corpus):
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(corpus, out)
    recorded = json.loads(_journal(out).read_text())
    identity = recorded["identity"]
    # The command and its options as parsed, less those that only change what is printed (--json, --show).
    command, options = identity["arguments"]
    assert command == "fillmask_cli" and options["input_file"] == str(corpus) and options["out"] == str(out)
    assert options["top_k"] == 3 and options["on_bad"] == "skip" and "json" not in options
    assert identity["model"][0].startswith("tiny-mlm")
    assert identity["chunk size"] == CHUNK
    state = recorded["state"]
    assert (state["chunks"], state["items"], state["results"]) == (2, 6, 6)
    assert recorded["bytes"] == _partial(out).stat().st_size


def _sink(out: Path, identity: dict):
    from bertprobe.atomic import ResumableFile
    from bertprobe.render.jsonl import JsonLines

    resumable = ResumableFile(out, identity)
    state, reason = resumable.open()
    return JsonLines(out, resumable=resumable, count=state["results"] if state else 0), state, reason


@pytest.mark.parametrize(
    ("stop", "committed", "kept"),
    [
        (KeyboardInterrupt, True, True),  # Ctrl-C: a rerun resumes from the last chunk
        (OSError, True, True),  # a full disk: the same
        ("DataError", True, True),  # a text refused under --on-bad stop: a rerun with --on-bad skip starts over
        (KeyboardInterrupt, False, False),  # nothing committed: nothing worth keeping
    ],
)
def test_the_sink_keeps_what_a_rerun_can_resume(tmp_path, stop, committed, kept):
    from bertprobe.errors import DataError

    stop = DataError if stop == "DataError" else stop
    out = tmp_path / "results.jsonl"
    identity = {"arguments": ["score", "--input", "texts.txt"], "model": "m", "input file": "abc"}
    sink, state, reason = _sink(out, identity)
    assert state is None and reason is None
    with pytest.raises(stop), sink:
        sink.write({"index": 1})
        sink.write({"index": 2})
        if committed:
            sink.commit({"results": 2})
        sink.write({"index": 3})  # after the last commit: cut on resume
        raise stop("stopped")
    assert not out.exists()
    assert _partial(out).exists() is kept and _journal(out).exists() is kept
    if not kept:
        return
    assert _partial(out).read_text() == '{"index": 1}\n{"index": 2}\n'  # only what the journal vouches for
    sink, state, reason = _sink(out, identity)
    assert state == {"results": 2} and reason is None and sink.count == 2
    with sink:
        sink.write({"index": 3})
        sink.commit({"results": 3})
    assert out.read_text() == '{"index": 1}\n{"index": 2}\n{"index": 3}\n'
    assert _hidden(tmp_path) == []
    other = {**identity, "model": "n"}
    sink, state, reason = _sink(tmp_path / "again.jsonl", other)
    assert state is None and reason is None  # another target: nothing of this one's


def test_a_changed_identity_names_what_changed(tmp_path):
    out = tmp_path / "results.jsonl"
    identity = {"arguments": ["a"], "model": "m", "input file": "abc"}
    sink, _, _ = _sink(out, identity)
    with pytest.raises(KeyboardInterrupt), sink:
        sink.write({"index": 1})
        sink.commit({"results": 1})
        raise KeyboardInterrupt
    sink, state, reason = _sink(out, {**identity, "model": "n", "input file": "abd"})
    assert state is None and reason == "its model and input file changed"
    assert _partial(out).stat().st_size == 0 and not _journal(out).exists()
    sink.__exit__(KeyboardInterrupt, None, None)
    assert _hidden(tmp_path) == []


def test_torchrun_does_not_resume_and_clears_a_stale_partial(tmp_path, corpus):
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(corpus, out)
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bertprobe")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("BERTPROBE_TEST_KILL_AFTER", None)
    args = [sys.executable, *launcher, *FILL, "--device", "cpu", "--input", corpus, "--out", out]
    run = subprocess.run(list(map(str, args)), capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.count("a run under torchrun starts over; its partial results removed") == 1
    assert [json.loads(line)["index"] for line in out.read_text().splitlines()] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
    assert _hidden(tmp_path) == []


def test_the_same_options_spelt_otherwise_resume_and_printing_options_do_not_count(tmp_path, corpus, uninterrupted):
    # Keyed by the options as parsed: "-m" or "--model", a --show or --json that changes only what is printed.
    out = tmp_path / "results.jsonl"
    _killed_after_two_chunks(corpus, out)
    respelt = ("fillmask", "--model", "tiny-mlm", "--on-bad", "skip", "--top-k", "3", "--show", "5")
    rerun = _run(*respelt, "--input", corpus, "--out", out)
    assert rerun.returncode == 0, rerun.stderr
    assert f"resuming {out} after 6 result(s) of an interrupted run" in rerun.stderr
    assert out.read_bytes() == uninterrupted


def test_in_process_runs_with_other_options_never_mix(cli, tmp_path, monkeypatch):
    # A notebook or test runner calls the CLI in one process: sys.argv is the host's, the options as parsed are not.
    import bertprobe.inputs

    monkeypatch.setattr(bertprobe.inputs, "CHUNK_TEXTS", CHUNK)
    texts = tmp_path / "texts.txt"
    # Line 5 is refused while computing (its target merges with the mask's neighbour): --on-bad stop stops there,
    # after the first chunk was committed.
    texts.write_text("The [MASK] sat.\nA [MASK] ran.\nThe [MASK] slept.\nOne [MASK] ate.\nThe [MASK]s are here.\n")
    out = tmp_path / "results.jsonl"
    code, _, stderr = cli("fillmask", "--input", texts, "--targets", "cat", "-m", "tiny-mlm", "--out", out)
    assert code == 1 and "line 5" in stderr and _journal(out).exists(), stderr
    code, _, stderr = cli("fillmask", "--input", texts, "--targets", "dog", "-m", "tiny-mlm", "--on-bad", "skip",
                          "--out", out)  # fmt: skip
    assert code == 0 and f"resuming {out} after" not in stderr and "its arguments changed" in stderr, stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["targets"][0]["targets"][0]["word"] for r in records] == ["dog"] * 4


def test_nsp_pairs_resume_to_the_same_bytes(tmp_path, tiny_pretraining_path):
    pairs = tmp_path / "pairs.csv"
    rows = [f"Sentence {n} is here.,Sentence {n} follows it." for n in range(1, 11)]
    pairs.write_text("sentence_a,sentence_b\n" + "\n".join(rows) + "\n")
    args = ("nsp", "--input", pairs, "-m", tiny_pretraining_path)
    whole = tmp_path / "whole.jsonl"
    assert _run(*args, "--out", whole).returncode == 0
    out = tmp_path / "results.jsonl"
    killed = _run(*args, "--out", out, kill="resume:journal-written#2")
    assert killed.returncode == -9, killed.stderr
    rerun = _run(*args, "--out", out)
    assert rerun.returncode == 0 and f"resuming {out} after 6 result(s)" in rerun.stderr, rerun.stderr
    assert out.read_bytes() == whole.read_bytes()
