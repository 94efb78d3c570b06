"""How long `bertprobe sense` takes on a 100-sentence set: batched forward passes vs one sentence at a time.

Run: .venv/bin/python benchmarks/bench_sense.py [--model minilm] [--repeats 5] [--threads N] [--device cpu]
Prints the median of each way and the ratio. Both ways compute the same vectors (checked). The
four rows take turns, repeat by repeat, so that a busy shared machine slows them alike.
"""

from __future__ import annotations

import argparse
import os

from timing import interleaved_medians, load_after, machine

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PREFIXES = ["", "Yesterday, ", "As far as I know, ", "In the story, ", "Apparently, ", "Last year, ", "Again, "]
PREFIXES += ["Oddly enough, ", "In the end, "]


def hundred_sentences() -> list:
    from bertprobe import sense

    base = sense.builtin("bank")
    out = []
    for prefix in PREFIXES:
        for s in base:
            text = prefix + (s.text[0].lower() + s.text[1:] if prefix else s.text)
            out.append(sense.SenseSentence(text, s.sense))
    return out[:100]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    import numpy as np
    import torch

    from bertprobe import models, sense

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = models.load(args.model, device=args.device)
    sentences = hundred_sentences()
    assert len(sentences) == 100
    print(machine())
    print(f"model {lm.name} on {lm.device}, {len(sentences)} sentences, median of {args.repeats}, rows taking turns")

    batched, _ = sense.word_vectors(lm, "bank", sentences, batch_size=32)
    single, _ = sense.word_vectors(lm, "bank", sentences, batch_size=1)
    np.testing.assert_allclose(batched.vectors, single.vectors, atol=1e-4)

    sense.probe(lm, "bank", sentences)  # warm-up: sklearn imports, allocator
    rows = {
        "probe, batched (batch 32)": lambda: sense.probe(lm, "bank", sentences, batch_size=32),
        "probe, one sentence at a time": lambda: sense.probe(lm, "bank", sentences, batch_size=1),
        "vectors only, batched (batch 32)": lambda: sense.word_vectors(lm, "bank", sentences, batch_size=32),
        "vectors only, one at a time": lambda: sense.word_vectors(lm, "bank", sentences, batch_size=1),
    }
    results = interleaved_medians(rows, args.repeats, warmup=False)
    for name, seconds in results.items():
        print(f"{name:<36} median {seconds * 1000:8.1f} ms")
    probe_ratio = results["probe, one sentence at a time"] / results["probe, batched (batch 32)"]
    vector_ratio = results["vectors only, one at a time"] / results["vectors only, batched (batch 32)"]
    print(f"speed-up of batching: probe x{probe_ratio:.2f}, vectors x{vector_ratio:.2f}")
    print(load_after())


if __name__ == "__main__":
    main()
