"""Real-time factor of streaming graphs: per-call latency / the span one call covers.

``--chunk-ms`` is that span (32 ms for a 512-sample chunk at 16 kHz). It applies where one
call covers a fixed span: an ONNX file timed at its example's shapes with no time axis
varied, an edgernn bundle's step graph timed at a single chunk length, and that graph's
streaming entry (``stream``: batch 1, one chunk per call, the state carried from call to
call), whose chunk is that single length or, with several, one step. Below 1 the graph
keeps up with the stream; the p99 factor says whether it does so on its slow calls too.
"""

from __future__ import annotations

from edgernn.bench.config import BenchConfig, Candidate


def covers_chunk(candidate: Candidate, entry: dict, config: BenchConfig) -> bool:
    """Whether one call at this latency ``entry`` covers ``config.chunk_ms``."""
    if config.chunk_ms is None:
        return False
    if candidate.as_given:
        return entry["seq_len"] is None  # an --axes time axis changes the span per point
    if entry.get("stream"):
        return True  # one streaming call covers its chunk by construction (stream_steps)
    # A step graph's call covers seq_len steps: one chunk_ms fits only one timed length.
    return candidate.graph == "step" and len(config.seq_lens) == 1


def stream_steps(config: BenchConfig) -> int:
    """Steps per streaming call: the chunk ``--seq-lens`` gives when it gives one length,
    else one step (a token, a frame), the finest a stream can be fed."""
    return config.seq_lens[0] if len(config.seq_lens) == 1 else 1


def with_real_time_factor(entry: dict, chunk_ms: float) -> dict:
    """The latency entry plus ``chunk_ms`` and ``real_time_factor`` (from p50, and p99)."""
    return entry | {
        "chunk_ms": float(chunk_ms),
        "real_time_factor": entry["p50_ms"] / chunk_ms,
        "real_time_factor_p99": entry["p99_ms"] / chunk_ms,
    }


def chunk_notes(candidates: list[Candidate], config: BenchConfig) -> list[str]:
    """Why rows that ``--chunk-ms`` cannot describe have no real-time factor."""
    if config.chunk_ms is None:
        return []
    notes = []
    steps = [c.name for c in candidates if c.graph == "step"]
    if steps and len(config.seq_lens) > 1:
        notes.append(
            f"--chunk-ms: {', '.join(steps)} timed at several lengths: only their streaming "
            f"entry (one step per call) has a real-time factor, {config.chunk_ms:g} ms taken "
            "as one step's span; give one --seq-lens value for a longer chunk"
        )
    timed = [c.name for c in candidates if c.as_given and _varies_time(c)]
    if timed:
        notes.append(
            f"--chunk-ms: {', '.join(timed)} vary a time axis (--axes), so one call does not "
            "cover a fixed span: no real-time factor"
        )
    if not any(c.as_given or c.graph == "step" for c in candidates):
        notes.append(
            "--chunk-ms applies to no row: it is for ONNX files timed at their --example's "
            "shapes and for bundles' step graphs"
        )
    return notes


def _varies_time(candidate: Candidate) -> bool:
    return any("time" in roles for roles in candidate.axes.values())
