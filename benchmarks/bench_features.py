"""Feature extraction for probes: batched vs one sentence at a time, and a rerun that hits the cache.

1. Throughput (sentences / s) of the batched, length-sorted, dynamically padded extraction that
   cls-train uses, against a naive loop that runs the same model on one sentence at a time
   (same texts, same ``inference_mode``, same [CLS] of the last layer).
2. ``probe.cls_train`` with an empty feature cache (extract + write) against a rerun that reads
   the cache, and the feature step alone. Model loading is outside both timings.

Medians of interleaved runs in one process; the sample texts are examples/sentiment.csv, repeated
to ``--texts``; the slow
loop runs on the first ``--naive-texts`` of them (its rate per sentence does not depend on how many).

    .venv/bin/python benchmarks/bench_features.py [--model minilm] [--texts 310] [--naive-texts 100]
        [--runs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from timing import load_after, machine

SAMPLE = Path(__file__).parent.parent / "examples" / "sentiment.csv"


def load_texts(count: int) -> tuple[list[str], list[str]]:
    with SAMPLE.open(newline="") as handle:
        rows = [(row["text"], row["label"]) for row in csv.DictReader(handle)]
    texts, labels = [], []
    while len(texts) < count:  # repeats get a suffix so the texts stay distinct
        for text, label in rows[: count - len(texts)]:
            texts.append(text if len(texts) < len(rows) else f"{text} ({len(texts) // len(rows)})")
            labels.append(label)
    return texts, labels


def naive_loop(lm, texts: list[str]) -> None:
    import torch

    with torch.inference_mode():
        for text in texts:
            ids = torch.tensor([lm.tokenizer.encode(text).ids], device=lm.device)
            out = lm.model(input_ids=ids, output_hidden_states=True)
            out["hidden_states"][-1][:, 0].float().cpu()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--texts", type=int, default=310)
    parser.add_argument("--naive-texts", type=int, default=100, help="texts the slow loop runs on")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from bertprobe import datasets, featcache, models, probe

    lm = models.load(args.model, device=args.device)
    texts, labels = load_texts(args.texts)
    layer = lm.num_layers
    encodings, _ = featcache.encode(lm, texts, lm.tokenizer.model_max_length)
    print(machine())
    print(f"model: {lm.name} ({lm.num_layers} layers, {lm.hidden_size} wide) on {lm.device}, "
          f"torch threads {torch.get_num_threads()}, {len(texts)} texts, {os.cpu_count()} CPUs")  # fmt: skip

    # 1. Throughput: batched extraction against one sentence at a time.
    featcache.extract_pooled(lm, encodings[:64], [(layer, "cls")], args.batch_size)  # warm-up
    naive_loop(lm, texts[:16])
    batched, naive = [], []
    for _ in range(args.runs):
        start = time.perf_counter()
        featcache.extract_pooled(lm, encodings, [(layer, "cls")], args.batch_size)
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        naive_loop(lm, texts[: args.naive_texts])
        naive.append(time.perf_counter() - start)
    b_rate, n_rate = len(texts) / median(batched), min(args.naive_texts, len(texts)) / median(naive)
    print(
        f"batched (size {args.batch_size}, length-sorted): {b_rate:7.1f} sentences/s  (median {median(batched):.3f} s)"
    )
    print(f"one sentence at a time:              {n_rate:7.1f} sentences/s  (median {median(naive):.3f} s, first "
          f"{min(args.naive_texts, len(texts))} texts)")  # fmt: skip
    print(f"speed-up batched / naive: {b_rate / n_rate:.1f}x  (target >= 3x)")

    # 2. The cache: cls_train from an empty cache against a rerun that hits it.
    half = len(texts) * 4 // 5
    data = datasets.LabelledData(texts, labels, [""] * len(texts))
    split = datasets.Split(data.subset(range(half)), data.subset(range(half, len(texts))), ["negative", "positive"], "")
    first, again, feat_first, feat_again = [], [], [], []
    for _ in range(args.runs):
        root = Path(tempfile.mkdtemp(prefix="bench-featcache-"))
        os.environ["BERTPROBE_CACHE"] = str(root)
        try:
            start = time.perf_counter()
            cold = probe.cls_train(lm, split, batch_size=args.batch_size)
            first.append(time.perf_counter() - start)
            start = time.perf_counter()
            warm = probe.cls_train(lm, split, batch_size=args.batch_size)
            again.append(time.perf_counter() - start)
            assert (cold.cache_misses, warm.cache_hits) == (1, 1) and warm.metrics == cold.metrics
            shutil.rmtree(root / "features")
            start = time.perf_counter()
            featcache.pooled_features(lm, texts, [(layer, "cls")], batch_size=args.batch_size)
            feat_first.append(time.perf_counter() - start)
            start = time.perf_counter()
            featcache.pooled_features(lm, texts, [(layer, "cls")], batch_size=args.batch_size)
            feat_again.append(time.perf_counter() - start)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    f, a = median(first), median(again)
    print(f"cls_train, empty cache:  median {f:.3f} s")
    print(f"cls_train, cache hit:    median {a:.3f} s")
    print(f"speed-up rerun / first run: {f / a:.1f}x  (target >= 20x)")
    ff, fa = median(feat_first), median(feat_again)
    print(f"features alone: extract + write {ff:.3f} s, read {fa:.4f} s: {ff / fa:.0f}x")
    print(load_after())


if __name__ == "__main__":
    main()
