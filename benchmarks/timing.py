"""Timing helpers shared by the benchmark scripts (run them as ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path


def median_time(func: Callable[[], object], repeats: int, warmup: bool = True) -> float:
    """Median wall time of ``func`` over ``repeats`` calls, after one untimed warm-up call by default."""
    if warmup:
        func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(rows: dict[str, Callable[[], object]], repeats: int, warmup: bool = True) -> dict[str, float]:
    """Median wall time of each row's call, the rows taking turns (A B C A B C ...).

    On a shared machine a burst of load then slows every row alike; timing one row's repeats
    after another's hands the whole burst to whichever row was running. One untimed warm-up call
    of each row first by default.
    """
    if warmup:
        for func in rows.values():
            func()
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeats):
        for name, func in rows.items():
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line naming the machine, the library versions and the load, for a benchmark's header."""
    versions = []
    for package in ("torch", "transformers"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{package} {metadata.version(package)}")
    threads = ""
    if "torch" in sys.modules:  # only where the benchmark itself runs torch in this process
        threads = f", torch threads {sys.modules['torch'].get_num_threads()}"
    return (
        f"machine: {_cpu_model()}, {os.cpu_count()} CPUs{threads}, load average {os.getloadavg()[0]:.1f}; "
        f"python {platform.python_version()}, {', '.join(versions)}"
    )


def load_after() -> str:
    """The 1-minute load average once the timings are done: how busy the machine was while they ran."""
    return f"load average at the end: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} CPUs)"
