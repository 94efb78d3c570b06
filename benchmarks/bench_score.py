"""`bertprobe score` over a corpus against the obvious alternatives, whole process each, in one run.

Rows (each a fresh process, so imports and model loading count, as they do for a user):

- score:       `bertprobe score --input corpus.txt --out scores.jsonl` (all masked copies of all
               sentences packed by length into shared forward passes).
- minicons:    minicons' `MaskedLMScorer.sequence_score` in batches of 20 (its own venv: minicons
               0.3.39 needs transformers 4.57 and tokenizers < 0.23). Path from
               $BERTPROBE_MINICONS_PYTHON (e.g. /work/venv-minicons/bin/python); skipped if unset.
- per-process: one `bertprobe fillmask TEXT --mode each` process per sentence (a subset of
               --subset sentences, scaled to the corpus).
- plain loop:  transformers' BertForMaskedLM, one forward pass per sentence holding all its masked
               copies, full MLM logits then log_softmax (what one writes first, batched per sentence).

Times are CPU seconds of each process and its children (getrusage), which a busy shared machine
disturbs far less than wall time (also printed); sentences/s on N cores = sentences / (CPU s / N).

Targets: score <= 1.0x minicons, >= 10x faster than per-process, <= 0.7x the plain loop.
The PLLs of all rows are compared (max |difference|).

Models: a random-weight BERT-base-shaped MLM (12 layers, 768 wide, 30,522 word pieces; timings
do not depend on the weights) and the shipped tiny-mlm (2 layers, 128 wide).

    nice -n 19 .venv/bin/python benchmarks/bench_score.py [--threads 2] [--sentences 240] [--subset 6]
        [--models base,tiny] [--device cpu] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import load_after, machine

ROOT = Path(__file__).resolve().parents[1]

PLAIN_LOOP = r"""
import json, sys, torch
from transformers import AutoModelForMaskedLM, AutoTokenizer
path, corpus, out, device = sys.argv[1:5]
tok = AutoTokenizer.from_pretrained(path)
# float32 like the other rows (transformers 5 would take a float16 checkpoint's own dtype)
model = AutoModelForMaskedLM.from_pretrained(path, dtype=torch.float32).eval().to(device)
plls = []
for text in open(corpus, encoding="utf-8").read().splitlines():
    ids = tok(text)["input_ids"]
    positions = [i for i, t in enumerate(ids) if t not in tok.all_special_ids]
    copies = torch.tensor([ids] * len(positions))
    for row, p in enumerate(positions):
        copies[row, p] = tok.mask_token_id
    with torch.inference_mode():
        logits = model(input_ids=copies.to(device)).logits.float()
    rows = torch.arange(len(positions))
    log_probs = logits[rows, torch.tensor(positions)].log_softmax(-1)
    plls.append(float(log_probs[rows, torch.tensor([ids[p] for p in positions])].sum()))
json.dump(plls, open(out, "w"))
"""

MINICONS = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
from minicons import scorer
path, corpus, out, device = sys.argv[1:5]
texts = open(corpus, encoding="utf-8").read().splitlines()
model = scorer.MaskedLMScorer(path, device)
plls = []
for start in range(0, len(texts), 20):
    plls += model.sequence_score(texts[start : start + 20], reduction=lambda x: x.sum(0).item())
json.dump(plls, open(out, "w"))
"""


def corpus_sentences(count: int) -> list[str]:
    """Everyday English sentences shipped with bertprobe (sense sentences, then sentiment reviews)."""
    sentences = [json.loads(line)["sentence"] for line in (ROOT / "bertprobe/data/senses.jsonl").open()]
    import csv

    with (ROOT / "examples/sentiment.csv").open(encoding="utf-8") as file:
        sentences += [row["text"] for row in csv.DictReader(file) if len(row["text"].split()) <= 30]
    if len(sentences) < count:
        raise SystemExit(f"only {len(sentences)} sentences available")
    return sentences[:count]


def base_shaped_mlm(target: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    BertForMaskedLM(BertConfig()).save_pretrained(target)
    source = ROOT / "bertprobe/data/models/tiny-mlm"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, target / name)
    return target


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench(name: str, path: Path, texts: list[str], args: argparse.Namespace, work: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
    }
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    n = len(texts)
    outputs = {row: work / f"{name}-{row.replace(' ', '-')}.out" for row in ("score", "minicons", "plain loop")}
    commands: dict[str, list[list[str]]] = {
        "score": [
            [sys.executable, "-m", "bertprobe", "score", "--input", str(corpus), "--out", str(outputs["score"]),
             "--json", "-m", str(path), "--device", args.device]
        ]
    }  # fmt: skip
    minicons = os.environ.get("BERTPROBE_MINICONS_PYTHON")
    if minicons and Path(minicons).is_file():
        script = work / "minicons_run.py"
        script.write_text(MINICONS)
        commands["minicons"] = [[minicons, str(script), str(path), str(corpus), str(outputs["minicons"]), args.device]]
    else:
        print("  minicons: skipped (set BERTPROBE_MINICONS_PYTHON to a python that has minicons installed)")
    subset = texts[: args.subset]
    commands["per-process"] = [
        [sys.executable, "-m", "bertprobe", "fillmask", text, "--mode", "each", "--json", "-m", str(path),
         "--device", args.device]
        for text in subset
    ]  # fmt: skip
    script = work / "plain_loop.py"
    script.write_text(PLAIN_LOOP)
    commands["plain loop"] = [
        [sys.executable, str(script), str(path), str(corpus), str(outputs["plain loop"]), args.device]
    ]
    walls: dict[str, list[float]] = {row: [] for row in commands}
    cpus: dict[str, list[float]] = {row: [] for row in commands}
    for _ in range(args.repeats):  # rows interleaved, so a busy machine slows them all alike
        for row, runs in commands.items():
            measured = [timed(command, env) for command in runs]
            walls[row].append(sum(wall for wall, _ in measured))
            cpus[row].append(sum(cpu for _, cpu in measured))
    scale = {row: (n / len(subset) if row == "per-process" else 1.0) for row in commands}
    wall = {row: statistics.median(values) * scale[row] for row, values in walls.items()}
    rows = {row: statistics.median(values) * scale[row] for row, values in cpus.items()}
    plls = {"score": [json.loads(line)["pll"] for line in outputs["score"].read_text().splitlines()]}
    for row in ("minicons", "plain loop"):
        if row in commands:
            plls[row] = json.loads(outputs[row].read_text())

    print(
        f"\n{name}: {n} sentences, {args.threads} threads, device {args.device} "
        f"(per-process: {len(subset)} run, scaled; median of {args.repeats})"
    )
    # On a shared machine wall time depends on the neighbours; CPU time (process + children) much less.
    # sentences/s on 2 cores = sentences / (CPU seconds / threads), i.e. as if the cores were ours alone.
    print(f"  {'row':<12} {'CPU s':>9} {'wall s':>9} {'sentences/s':>12} {'score / row':>12}")
    for row, seconds in rows.items():
        per_second = n / (seconds / args.threads)
        print(f"  {row:<12} {seconds:9.1f} {wall[row]:9.1f} {per_second:12.2f} {rows['score'] / seconds:11.2f}x")
    for row, values in plls.items():
        if row != "score":
            gap = max(abs(a - b) for a, b in zip(plls["score"], values, strict=True))
            print(f"  max |PLL(score) - PLL({row})| = {gap:.2e}")
    verdicts = [("plain loop", 0.7, "<="), ("minicons", 1.0, "<=")]
    for row, target, _ in verdicts:
        if row in rows:
            ratio = rows["score"] / rows[row]
            print(f"  score / {row}: {ratio:.2f}x (target <= {target}x) {'ok' if ratio <= target else 'MISSED'}")
    speedup = rows["per-process"] / rows["score"]
    print(f"  per-process / score: {speedup:.1f}x faster (target >= 10x) {'ok' if speedup >= 10 else 'MISSED'}")
    print(f"  {load_after()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sentences", type=int, default=240)
    parser.add_argument("--subset", type=int, default=6)
    parser.add_argument("--models", default="base,tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1, help="Runs of every row, interleaved; the median counts.")
    args = parser.parse_args()
    texts = corpus_sentences(args.sentences)
    import importlib.metadata as md

    versions = {p: md.version(p) for p in ("torch", "transformers", "tokenizers")}
    print(machine())
    print("bertprobe venv:", ", ".join(f"{k} {v}" for k, v in versions.items()))
    minicons = os.environ.get("BERTPROBE_MINICONS_PYTHON")
    if minicons and Path(minicons).is_file():
        probe = "import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) for p in "
        probe += "('minicons', 'torch', 'transformers', 'tokenizers')))"
        listed = subprocess.run([minicons, "-c", probe], capture_output=True, text=True).stdout.strip()
        print("minicons venv:", listed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            if name == "base":
                path = base_shaped_mlm(work / "bert-base-random")
            elif name == "tiny":
                path = ROOT / "bertprobe/data/models/tiny-mlm"
            else:
                raise SystemExit(f"unknown model {name!r}: base or tiny")
            bench(name, path, texts, args, work)


if __name__ == "__main__":
    main()
