"""torchrun: two processes split the texts, rank 0 writes one ordered file equal to a one-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TEXTS = [
    "The ostrich looked at the platypus.",
    "A dog barked.",
    "Unbelievably, the hippopotamus yawned.",
    "The quick brown fox jumps over the lazy dog.",
    "She sold sea shells by the sea shore.",
]


def _run(*args):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


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


def test_torchrun_a_text_refused_by_another_process_is_skipped_once_or_named(cli, tmp_path, mlm_path):
    """Line 2 goes to rank 1, whose computation refuses it ('cat' written at its mask reads 'cats')."""
    corpus = tmp_path / "masks.txt"
    corpus.write_text("The [MASK] sat on the mat.\nThe [MASK]s are here.\nA [MASK] barked.\n")
    one, two, stopped = tmp_path / "one.jsonl", tmp_path / "two.jsonl", tmp_path / "stopped.jsonl"
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
    halted = _run(*launcher, *common, "--out", stopped)
    assert halted.returncode != 0 and not stopped.exists()
    assert f"error: {corpus}, line 2: the target 'cat' merges" in halted.stderr, halted.stderr[-3000:]


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
