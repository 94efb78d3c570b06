"""torchrun: two processes split the texts, rank 0 writes one ordered file equal to a one-process run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TEXTS = [
    "The ostrich looked at the platypus.",
    "A dog barked.",
    "Unbelievably, the hippopotamus yawned.",
    "The quick brown fox jumps over the lazy dog.",
    "She sold sea shells by the sea shore.",
]


LAUNCHER = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bertprobe")


def _env():
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}


def _run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=_env(), timeout=600)


def _said_by_bertprobe(stderr: str) -> list[str]:
    """stderr less what torchrun, the processes' parent, says of a failed run (bertprobe cannot silence it).

    That is its log lines ('W1202 ... torch/distributed/elastic/... Sending process 7 closing signal') and,
    last, the traceback of its own ChildFailedError or SignalException with its box of failures.
    """
    end = stderr.rfind("Traceback (most recent call last):")
    if end >= 0 and re.search(
        r"^torch\.distributed\.elastic\.\S+(ChildFailedError|SignalException)", stderr[end:], re.M
    ):
        stderr = stderr[:end]
    return [line for line in stderr.splitlines() if not re.match(r"[WE]\d{4} .*torch/distributed/elastic/", line)]


def test_torchrun_two_processes_write_what_one_process_writes(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    common = ("score", "--input", corpus, "--json", "--device", "cpu", "-m", "auto")  # auto: a loader notice
    single = _run("-m", "bertprobe", *common, "--out", one)
    assert single.returncode == 0, single.stderr
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bertprobe")
    double = _run(*launcher, *common, "--out", two)
    assert double.returncode == 0, double.stderr[-3000:]
    assert single.stderr.count("Using offline model") == 1
    assert double.stderr.count("Using offline model") == 1, double.stderr  # rank 0 only, not once per process
    first = [json.loads(line) for line in one.read_text().splitlines()]
    second = [json.loads(line) for line in two.read_text().splitlines()]
    assert [d["index"] for d in second] == [1, 2, 3, 4, 5]
    for a, b in zip(first, second, strict=True):
        pll_a, pll_b = a.pop("pll"), b.pop("pll")
        assert pll_a == pytest.approx(pll_b, abs=1e-4)  # a different packing pads differently: float noise only
        assert [s["token"] for s in a.pop("scores")] == [s["token"] for s in b.pop("scores")]
        a.pop("pseudo_perplexity"), b.pop("pseudo_perplexity")
        assert a == b


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"WORLD_SIZE": "2"}, "WORLD_SIZE is 2 but RANK is not set"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' is not a whole number"),
        ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR and MASTER_PORT are not set"),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "x", "MASTER_PORT": "1"}, "RANK=2 is outside WORLD_SIZE=2"),
    ],
)
def test_a_half_set_launcher_environment_is_one_line(cli, mlm_path, monkeypatch, env, said):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _, stderr = cli("score", "A dog barked.", "The cat sat.", "-m", mlm_path)
    assert code == 1 and said in stderr and "torchrun" in stderr and "Traceback" not in stderr


def test_torchrun_a_text_refused_by_another_process_is_skipped_once(cli, tmp_path, mlm_path):
    """Line 2 goes to rank 1, whose computation refuses it ('cat' written at its mask reads 'cats')."""
    corpus = tmp_path / "masks.txt"
    corpus.write_text("The [MASK] sat on the mat.\nThe [MASK]s are here.\nA [MASK] barked.\n")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    common = ("fillmask", "--input", corpus, "--targets", "cat", "--json", "--device", "cpu", "-m", mlm_path)
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bertprobe")
    code, _, stderr = cli(*common, "--on-bad", "skip", "--out", one)
    assert code == 0, stderr
    double = _run(*launcher, *common, "--on-bad", "skip", "--out", two)
    assert double.returncode == 0, double.stderr[-3000:]
    assert double.stdout == ""
    assert double.stderr.count("skipped 1 bad line 2: the target 'cat' merges") == 1, double.stderr
    first = [json.loads(line) for line in one.read_text().splitlines()]
    second = [json.loads(line) for line in two.read_text().splitlines()]
    assert [d["line"] for d in first] == [d["line"] for d in second] == [1, 3]
    for a, b in zip(first, second, strict=True):
        assert a["filled"] == b["filled"]
        assert a["targets"][0]["targets"][0]["score"] == pytest.approx(b["targets"][0]["targets"][0]["score"])


@pytest.mark.parametrize(
    ("args", "said"),
    [(("fillmask", "--input", "-"), "--input - under torchrun"), (("score", "--pairs", "-.tsv"), "--pairs - under")],
)
def test_torchrun_refuses_texts_on_stdin_that_its_processes_would_share(cli, mlm_path, monkeypatch, args, said):
    """Every process reads the one stdin: each would get a part of the texts, or none of them."""
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, stdout, stderr = cli(*args, "-m", mlm_path)
    assert code == 1 and stdout == "" and said in stderr, stderr


def test_torchrun_pairs_say_a_skipped_line_once(tmp_path, mlm_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("good\tbad\nThe cat sleeps.\tThe cat sleep.\n\tA dog barks.\nThe dogs bark.\tThe dogs barks.\n")
    launcher = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "bertprobe")
    double = _run(*launcher, "score", "--pairs", pairs, "--on-bad", "skip", "--json", "--device", "cpu", "-m", mlm_path)
    assert double.returncode == 0, double.stderr[-3000:]
    assert double.stderr.count("skipped") == 1 and "line 3" in double.stderr, double.stderr
    assert json.loads(double.stdout)["n"] == 2


def test_torchrun_a_run_one_process_stops_is_one_error_line_and_no_traceback(tmp_path, mlm_path):
    """Rank 0 stops on line 2 (refused by rank 1's computation); rank 1, waiting for it, leaves without a word."""
    corpus = tmp_path / "masks.txt"
    corpus.write_text("The [MASK] sat on the mat.\nThe [MASK]s are here.\nA [MASK] barked.\n")
    stopped = tmp_path / "stopped.jsonl"
    common = ("fillmask", "--input", corpus, "--targets", "cat", "--json", "--device", "cpu", "-m", mlm_path)
    halted = _run(*LAUNCHER, *common, "--out", stopped)
    assert halted.returncode == 1 and not stopped.exists()  # 1: torchrun's own exit status for a failed process
    said = _said_by_bertprobe(halted.stderr)
    assert said == [
        f"error: {corpus}, line 2: the target 'cat' merges with the text next to the mask: written there it reads "
        "'cats', so its own word pieces cannot be scored",
        "hint: Put a space (or punctuation) between the mask and the words around it. "
        "Or pass --on-bad skip to leave such lines out and list them.",
    ], halted.stderr[-3000:]
    assert "Connection closed by peer" not in halted.stderr and "[rank1]" not in halted.stderr


def test_torchrun_ctrl_c_says_interrupted_once_and_keeps_nothing(tmp_path, mlm_path):
    """A terminal's Ctrl-C reaches torchrun, which passes SIGINT on to every process: one of them says so."""
    corpus = tmp_path / "many.txt"
    corpus.write_text("".join(f"The cat number {n} sat on the mat by the door.\n" for n in range(3000)))
    folder = tmp_path / "out"
    folder.mkdir()
    command = [sys.executable, *LAUNCHER, "score", "--input", corpus, "--device", "cpu", "-m", mlm_path]
    run = subprocess.Popen(
        [*map(str, command), "--out", str(folder / "scores.jsonl")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,  # its own process group, as the terminal's foreground job is
    )
    try:
        deadline = time.monotonic() + 120
        while not any(folder.iterdir()) and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # rank 0's temporary --out file: every process has joined, the texts are under way
        assert run.poll() is None, run.communicate()[1][-3000:]
        os.killpg(run.pid, signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 1, stderr[-3000:]  # torchrun's SignalException, whatever its processes exit with
    said = _said_by_bertprobe(stderr)
    assert said == ["error: interrupted", "hint: Nothing half-written was kept."], stderr[-3000:]
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("env", "first"),
    [
        ({}, True),
        ({"WORLD_SIZE": "2", "RANK": "0", "TORCHELASTIC_RUN_ID": "r"}, True),
        ({"WORLD_SIZE": "2", "RANK": "1", "TORCHELASTIC_RUN_ID": "r"}, False),  # rank 0 says what both would
        ({"WORLD_SIZE": "2", "RANK": "1"}, True),  # set by hand, not by torchrun: no rank 0 may be there
        ({"WORLD_SIZE": "2", "RANK": "one", "TORCHELASTIC_RUN_ID": "r"}, True),
        ({"WORLD_SIZE": "2", "RANK": "2", "TORCHELASTIC_RUN_ID": "r"}, True),
    ],
)
def test_before_joining_the_group_rank_0_of_a_torchrun_says_why_it_stopped(monkeypatch, env, first):
    from bertprobe import distributed

    for name in ("WORLD_SIZE", "RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert distributed.first_to_stop() is first


def test_torchrun_after_joining_only_the_first_process_to_stop_says_why(tmp_path):
    script = tmp_path / "stop.py"
    script.write_text(
        "from bertprobe import distributed\n"
        "place = distributed.world('cpu')\n"
        "import sys\n"  # one write per process: print's pieces from two processes interleave on the shared pipe
        "sys.stdout.write(f'{place.rank} {distributed.first_to_stop()} {distributed.first_to_stop()}\\n')\n"
        "sys.stdout.flush()\n"
        "distributed.finish(place)\n"
    )
    both = _run("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script)
    assert both.returncode == 0, both.stderr[-3000:]
    answers = sorted(line.split() for line in both.stdout.splitlines())
    assert [rank for rank, *_ in answers] == ["0", "1"]
    assert sorted(first for _, first, again in answers if first == again) == ["False", "True"], both.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("fillmask", "--bogus"), "error: no such option: --bogus"),  # before the processes join: rank 0 says it
        (("fillmask", "--input", "{corpus}", "--json"), "no [MASK] in the text"),  # after: the first to stop does
    ],
)
def test_torchrun_an_error_every_process_meets_is_said_once(tmp_path, mlm_path, args, said):
    corpus = tmp_path / "texts.txt"
    corpus.write_text("The [MASK] sat on the mat.\nNo mask here.\nA [MASK] barked.\n")
    stopped = _run(*LAUNCHER, *(str(a).format(corpus=corpus) for a in args), "--device", "cpu", "-m", mlm_path)
    assert stopped.returncode != 0
    lines = _said_by_bertprobe(stopped.stderr)
    assert len(lines) == 2 and said in lines[0] and lines[1].startswith("hint: "), stopped.stderr[-3000:]
