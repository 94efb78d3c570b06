"""pretrain start-up: torch.optim.AdamW (which imports the torch compiler) against bertprobe's own AdamW.

Each timing is a fresh process (the import is paid once per process), after ``import torch``:
build the optimizer for minilm-sized parameters (22.7 M, as pretrain would) and take one step.
Also reports whether ``torch._dynamo`` got imported. Median of ``--runs`` interleaved runs.

    .venv/bin/python benchmarks/bench_pretrain_start.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from timing import load_after, machine

CHILD = """
import sys, time
import torch
from torch import nn
from bertprobe.pretrain import AdamW  # imported in both runs, outside the timing
model = nn.Sequential(nn.Embedding(30522, 384), *[nn.Linear(384, 384) for _ in range(12)])
params = list(model.named_parameters())
for _, p in params:
    p.grad = torch.zeros_like(p)
start = time.perf_counter()
if sys.argv[1] == "torch":
    opt = torch.optim.AdamW([p for _, p in params], lr=1e-4)
else:
    opt = AdamW([(params, 0.01)], lr=1e-4)
built = time.perf_counter()
opt.step()
print(built - start, time.perf_counter() - built, "torch._dynamo" in sys.modules)
"""


def run(kind: str) -> tuple[float, float, bool]:
    out = subprocess.run([sys.executable, "-c", CHILD, kind], capture_output=True, text=True, check=True).stdout
    build, step, dynamo = out.split()
    return float(build), float(step), dynamo == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    builds: dict[str, list[float]] = {"torch": [], "own": []}
    steps: dict[str, list[float]] = {"torch": [], "own": []}
    dynamo: dict[str, bool] = {}
    for _ in range(args.runs):
        for kind in builds:
            build, step, imported = run(kind)
            builds[kind].append(build)
            steps[kind].append(step)
            dynamo[kind] = imported
    print(machine())
    print(f"median of {args.runs} fresh processes each, taking turns")
    for kind, label in (("torch", "torch.optim.AdamW"), ("own", "bertprobe AdamW")):
        print(f"{label:18s} build {statistics.median(builds[kind]):6.2f} s   first step "
              f"{statistics.median(steps[kind]):6.2f} s   imports torch._dynamo: {dynamo[kind]}")  # fmt: skip
    total = {k: statistics.median(builds[k]) + statistics.median(steps[k]) for k in builds}
    print(f"build + first step: torch.optim is {total['torch'] / total['own']:.1f}x bertprobe's")
    print(load_after())


if __name__ == "__main__":
    main()
