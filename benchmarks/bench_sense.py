"""How long `bertprobe sense` takes on a 100-sentence set: batched forward passes vs one sentence at a time.

Run: .venv/bin/python benchmarks/bench_sense.py [--model minilm] [--repeats 5] [--device cpu]
Prints the median of each way and the ratio. Both ways compute the same vectors (checked).
"""

from __future__ import annotations

import argparse
import os

from timing import median_time

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
    args = parser.parse_args()

    import numpy as np
    import torch

    from bertprobe import models, sense

    lm = models.load(args.model, device=args.device)
    sentences = hundred_sentences()
    assert len(sentences) == 100
    print(f"model {lm.name} on {lm.device}, {len(sentences)} sentences, torch threads {torch.get_num_threads()}")

    batched, _ = sense.word_vectors(lm, "bank", sentences, batch_size=32)
    single, _ = sense.word_vectors(lm, "bank", sentences, batch_size=1)
    np.testing.assert_allclose(batched.vectors, single.vectors, atol=1e-4)

    sense.probe(lm, "bank", sentences)  # warm-up: sklearn imports, allocator
    rows = [
        ("probe, batched (batch 32)", lambda: sense.probe(lm, "bank", sentences, batch_size=32)),
        ("probe, one sentence at a time", lambda: sense.probe(lm, "bank", sentences, batch_size=1)),
        ("vectors only, batched (batch 32)", lambda: sense.word_vectors(lm, "bank", sentences, batch_size=32)),
        ("vectors only, one at a time", lambda: sense.word_vectors(lm, "bank", sentences, batch_size=1)),
    ]
    results = {}
    for name, func in rows:
        results[name] = median_time(func, args.repeats, warmup=False)
        print(f"{name:<36} median {results[name] * 1000:8.1f} ms")
    probe_ratio = results["probe, one sentence at a time"] / results["probe, batched (batch 32)"]
    vector_ratio = results["vectors only, one at a time"] / results["vectors only, batched (batch 32)"]
    print(f"speed-up of batching: probe x{probe_ratio:.2f}, vectors x{vector_ratio:.2f}")


if __name__ == "__main__":
    main()
