"""Many texts: `fillmask --input`'s batched core against one text at a time and transformers' pipeline.

All three run in this one process on the same loaded checkpoint and the same masked sentences
(the built-in cloze sets, repeated to --texts): `fill_many` (what `fillmask --input` runs: the
texts' forward passes padded together), `fill` called per text (what `--input` did before), and
transformers' fill-mask pipeline with a batch size. Prints median seconds per 100 texts and the
ratios, and checks that the three agree on every top-1 word. The first call of each (the
agreement check) is the warm-up; then the three take turns, run by run, so that a busy shared
machine slows them alike.

    .venv/bin/python benchmarks/bench_fillmask_input.py [--model DIR|minilm-mlm] [--texts 240] [--runs 3]
        [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import interleaved_medians, load_after, machine

DATA = Path(__file__).resolve().parents[1] / "bertprobe" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm-mlm")
    parser.add_argument("--texts", type=int, default=240)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pipeline-batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from transformers import pipeline
    from transformers.utils import logging

    import bertprobe
    from bertprobe.fillmask import fill, fill_many

    if args.threads:
        torch.set_num_threads(args.threads)
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    sentences = [
        json.loads(line)["text"]
        for name in ("cloze.jsonl", "cloze_heldout.jsonl")
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    texts = (sentences * (args.texts // len(sentences) + 1))[: args.texts]
    lm = bertprobe.load(args.model, head="mlm", offline=True)
    reference = pipeline("fill-mask", model=str(lm.path), device="cpu", dtype=torch.float32)

    def batched() -> list[str]:
        return [r.masks[0].predictions[0].token_str for r in fill_many(lm, texts, "single", 5)]

    def one_at_a_time() -> list[str]:
        return [fill(lm, t, "single", 5).masks[0].predictions[0].token_str for t in texts]

    def the_pipeline() -> list[str]:
        found = reference(texts, top_k=5, batch_size=args.pipeline_batch)
        return [f[0]["token_str"].strip() for f in found]

    tops = {name: func() for name, func in (("batched", batched), ("one", one_at_a_time), ("pipe", the_pipeline))}
    agree = sum(a == b == c for a, b, c in zip(tops["batched"], tops["one"], tops["pipe"], strict=True))
    per100 = 100 / len(texts)
    medians = interleaved_medians(
        {"ours": batched, "one": one_at_a_time, "pipe": the_pipeline}, args.runs, warmup=False
    )
    ours, one, pipe = (medians[name] * per100 for name in ("ours", "one", "pipe"))
    print(machine())
    print(f"model {lm.name}, {len(texts)} texts, median of {args.runs}, the three taking turns")
    print(f"fill_many (fillmask --input)        {ours:7.3f} s / 100 texts")
    print(f"fill, one text at a time            {one:7.3f} s / 100 texts   ({one / ours:.2f}x the batched time)")
    print(f"transformers pipeline, batch {args.pipeline_batch:<5d} {pipe:7.3f} s / 100 texts   "
          f"({pipe / ours:.2f}x the batched time)")  # fmt: skip
    print(f"top-1 words equal in all three: {agree} / {len(texts)}")
    print(load_after())


if __name__ == "__main__":
    main()
