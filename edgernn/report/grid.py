"""The latency grid of a report: the point summaries quote, and a row's entry at a point."""

from __future__ import annotations


def reference_point(config) -> dict:
    """The grid point summary tables quote: batch 1, the middle length, fewest threads."""
    batches, lengths = sorted(config.batch_sizes), sorted(config.seq_lens)
    return {
        "device": config.device,
        "batch": 1 if 1 in batches else batches[0],
        "seq_len": lengths[(len(lengths) - 1) // 2],
        "threads": min(config.threads),
    }


def latency_at(row: dict, point: dict) -> dict | None:
    """The row's latency entry at ``point``; a graph without that axis matches any value."""
    for entry in row["latency"]:
        if entry["threads"] != point["threads"]:
            continue
        if all(entry[axis] in (None, point[axis]) for axis in ("batch", "seq_len")):
            return entry
    return None
