"""The model fingerprint on a bert-base-sized checkpoint: full content hash, memo hit, and the old edge hash.

A checkpoint directory with a 440 MB ``model.safetensors`` of random bytes (one U8 tensor, a valid
header), tiny-mlm's ``config.json`` and ``tokenizer.json`` is written to a temporary folder
(deleted at the end). Timed, in one process:

1. ``edge hash``: what bertprobe 0.1 did, size + first and last 64 KiB of each weight file
   (blind to an edit in the middle; kept here as the obvious cheap alternative).
2. ``first fingerprint``: ``checkpoint.fingerprint`` with an empty memo: SHA-256 of every byte,
   then the memo written (``$BERTPROBE_CACHE/fingerprints.json``).
3. ``memo hit``: the same call again: one ``stat`` per file, the memo read, small files re-hashed.

The file has just been written, so it is in the page cache: (2) measures hashing, not the disk; a
cold read from disk adds the disk's read time (about 0.2-4 s for 440 MB on SSD-HDD).

    .venv/bin/python benchmarks/bench_fingerprint.py [--megabytes 440] [--runs 3] [--hits 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from timing import load_after, machine, median_time

from bertprobe import checkpoint

TINY = Path(__file__).parent.parent / "bertprobe" / "data" / "models" / "tiny-mlm"


def write_checkpoint(folder: Path, size: int) -> Path:
    header = json.dumps({"blob": {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    with (folder / "model.safetensors").open("wb") as handle:
        handle.write(len(header).to_bytes(8, "little") + header)
        left = size
        while left:
            chunk = os.urandom(min(left, 1 << 24))
            handle.write(chunk)
            left -= len(chunk)
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(TINY / name, folder / name)
    past = time.time_ns() - 60_000_000_000  # older than the memo's "may still be changing" window
    os.utime(folder / "model.safetensors", ns=(past, past))
    return folder


def edge_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in checkpoint.weight_files(folder):
        size = file.stat().st_size
        digest.update(str(size).encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 16))
            handle.seek(max(0, size - (1 << 16)))
            digest.update(handle.read(1 << 16))
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=440)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hits", type=int, default=20)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-fingerprint-", dir="/tmp"))
    try:
        model = work / "model"
        model.mkdir()
        os.environ["BERTPROBE_CACHE"] = str(work / "cache")
        write_checkpoint(model, args.megabytes * 1_000_000)
        memo = checkpoint.memo_path()

        def first() -> str:
            memo.unlink(missing_ok=True)
            return checkpoint.fingerprint("bench", model)

        first_s = median_time(first, args.runs)
        expected = first()
        hit_s = median_time(lambda: checkpoint.fingerprint("bench", model), args.hits)
        assert checkpoint.fingerprint("bench", model) == expected
        edge_s = median_time(lambda: edge_hash(model), args.hits)

        mb = args.megabytes
        print(machine())
        print(f"checkpoint: {mb} MB model.safetensors + config.json + tokenizer.json (page cache warm)")
        print(f"{'method':<34} {'median s':>10} {'vs edge hash':>13}")
        for name, seconds in (
            ("edge hash (0.1, blind to edits)", edge_s),
            ("first fingerprint (full SHA-256)", first_s),
            ("fingerprint, memo hit", hit_s),
        ):
            print(f"{name:<34} {seconds:>10.4f} {seconds / edge_s:>12.1f}x")
        print(
            f"full hash throughput: {mb / first_s:,.0f} MB/s; a memo hit is {first_s / hit_s:,.0f}x faster than hashing"
        )
        print("Medians over runs in one process; the memo is keyed by path, size, mtime, ctime and inode.")
        print(load_after())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
