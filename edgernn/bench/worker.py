"""Measure one candidate in this fresh process: ``python -m edgernn.bench.worker``.

Reads one JSON request on stdin and prints one JSON result as the last line of stdout.
Progress goes to stderr as ``@progress DONE TOTAL`` lines, which the parent turns into its
tqdm bar. A request with ``"mode": "baseline"`` imports the runtime, loads nothing and
reports the peak memory that costs, to be subtracted from the candidates' peaks.

Failures print ``{"error": "..."}`` and exit 1; the parent raises it as one clear line.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

from edgernn.bench.runtimes import RUNNERS, import_runtime
from edgernn.bench.timing import peak_rss_mb, time_calls
from edgernn.errors import EdgeRNNError


def baseline(request: dict) -> dict:
    """Peak memory of a process that imported the runtime and loaded nothing."""
    import_runtime(request["runtime"], request["device"])
    return {"peak_rss_mb": peak_rss_mb()}


def measure(request: dict) -> dict:
    """Load the candidate once, then time it over the threads x batch x length grid.

    Args:
        request: ``runtime``, ``path``, ``precision``, ``device``, ``example``, ``seed``,
            ``batch_sizes``, ``seq_lens``, ``threads`` and ``timing`` (a ``TimingConfig``
            as a dict); for an ONNX file timed at its example's shapes, ``as_given`` and
            ``axes`` (input -> roles, the ``--axes`` the grid may vary); for an end-to-end
            job, ``job`` and its inputs (``edgernn.bench.jobs.measure_jobs``); for a step
            graph, ``stream`` (``steps`` per call and the ``states`` pairs) adds one
            streaming entry per thread count.

    Returns:
        ``load_ms``, ``peak_rss_raw_mb``, ``latency`` (one entry per grid point) and
        runtime extras (CUDA memory, ONNX Runtime providers).
    """
    import_runtime(request["runtime"], request["device"])
    if request.get("job"):  # the app's whole job per input, not the grid
        from edgernn.bench.jobs import measure_jobs

        return measure_jobs(request)
    start = time.perf_counter()
    runner = RUNNERS[request["runtime"]](request)
    runner.set_threads(request["threads"][0])
    load_ms = (time.perf_counter() - start) * 1000.0
    result = {"load_ms": load_ms, "latency": time_grid(runner, request)}
    return result | {"peak_rss_raw_mb": peak_rss_mb()} | runner.extra()


def time_grid(runner, request: dict) -> list[dict]:
    """One timing entry per threads x batch x length point (and per threads, streaming).

    ``runner`` is one of ``edgernn.bench.runtimes.RUNNERS`` or anything with their methods
    (``points``, ``set_threads``, ``prepare``, ``sync``; ``stream`` for a step graph).
    """
    points = runner.points(request["batch_sizes"], request["seq_lens"])
    total, latency = len(points) * len(request["threads"]), []
    for threads in request["threads"]:
        runner.set_threads(threads)
        for batch, seq_len in points:
            call, shapes = runner.prepare(batch, seq_len)
            stats = time_calls(call, runner.sync, request["timing"])
            per_call = batch or 1  # a graph without a batch axis runs one input per call
            entry = {"device": request["device"], "batch": batch, "seq_len": seq_len}
            entry |= {"threads": threads} | stats
            entry |= {"throughput_per_s": per_call * 1000.0 / stats["p50_ms"], "shapes": shapes}
            latency.append(entry)
            print(f"@progress {len(latency)} {total}", file=sys.stderr, flush=True)
        if request.get("stream") and getattr(runner, "streaming", True):
            latency.append(_streaming_entry(runner, request, threads))
    return latency


def _streaming_entry(runner, request: dict, threads: int) -> dict:
    """A step graph as a stream runs it: batch 1, one chunk per call, the state carried."""
    stream = request["stream"]
    call, shapes = runner.stream(stream["steps"], stream["states"])
    stats = time_calls(call, runner.sync, request["timing"])
    entry = {"device": request["device"], "batch": 1, "seq_len": stream["steps"]}
    entry |= {"threads": threads} | stats | {"stream": True}
    return entry | {"throughput_per_s": 1000.0 / stats["p50_ms"], "shapes": shapes}


def main() -> int:
    code = 0
    try:
        request = json.loads(sys.stdin.read())
        result = baseline(request) if request.get("mode") == "baseline" else measure(request)
    except EdgeRNNError as error:
        result, code = {"error": str(error)}, 1
    except Exception as error:  # anything else: the parent shows the message, stderr the rest
        traceback.print_exc()
        result, code = {"error": f"{type(error).__name__}: {error}"}, 1
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
