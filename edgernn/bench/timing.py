"""The timing loop and the process's peak memory; stdlib and numpy only."""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

MIN_SLOW_SAMPLES = 3  # a point that hits max_time_s still needs a few samples for a median


def time_calls(call: Callable[[], object], sync: Callable[[], None], timing: dict) -> dict:
    """Warm up, then time ``call`` until enough samples and enough time are collected.

    Args:
        call: one inference on fixed inputs.
        sync: waits for the device to finish (``torch.cuda.synchronize``; a no-op on CPU),
            so each sample covers the whole call and not just its launch.
        timing: a ``TimingConfig`` as a dict.

    Returns:
        ``{"p50_ms", "p90_ms", "p99_ms", "mean_ms", "iterations", "warmup"}``.
    """
    for _ in range(timing["warmup"]):
        call()
    sync()
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one sample would be noise, not the model's cost
    try:
        start = time.perf_counter()
        while not _enough(samples, time.perf_counter() - start, timing):
            begin = time.perf_counter()
            call()
            sync()
            samples.append(time.perf_counter() - begin)
    finally:
        if gc_was_enabled:
            gc.enable()
    return summarize(samples) | {"warmup": timing["warmup"]}


def _enough(samples: list[float], elapsed: float, timing: dict) -> bool:
    count = len(samples)
    if count >= timing["max_iters"]:
        return True
    if elapsed >= timing["max_time_s"] and count >= MIN_SLOW_SAMPLES:
        return True
    return count >= timing["min_iters"] and elapsed >= timing["min_time_s"]


def summarize(samples: list[float]) -> dict:
    """Percentiles in milliseconds of per-call times in seconds."""
    ms = np.asarray(samples) * 1000.0
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "mean_ms": float(ms.mean()),
        "iterations": len(samples),
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0  # bytes there, KiB here
