"""End-to-end jobs: what an app does with a seq2seq or language model, one call per input.

A translation runs the encoder once and the decoder once per output token with the search in
between; a generation runs the prefix through the step graph, then one step per token. One
call of one graph says nothing about either, so these rows time the whole job:

- a bundle through ``edgernn.runtime.Runtime`` (``translate`` greedy and beam, ``generate``
  at temperature 0), exactly what a device app calls;
- a checkpoint doing the same job in PyTorch with its own search (``Seq2Seq.greedy`` and
  ``beam_search``, the LM's ``generate`` at temperature 0), not a teacher-forced pass.

Each sample is one input's whole job; the row reports per-sequence p50/p90, output tokens per
second and the time to the first token (seq2seq: encoder + first decoder step; lm: the prefix
through the model + the first token). Runs in the worker process, on one thread: numpy here,
torch imported only by the PyTorch job.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable

import numpy as np

from edgernn.bench.config import BEAM, GENERATE_TOKENS
from edgernn.bench.timing import _enough, peak_rss_mb, summarize
from edgernn.errors import EdgeRNNError

JOB_THREADS = 1  # an app decodes on one thread; more would time the machine, not the model
SPECIAL_COUNT = 4  # ids 0-3 (<pad>, <unk>, <bos>, <eos>) are never generated, as in training
BOS_ID = 2


def time_per_input(
    call: Callable[[int], object],
    count: Callable[[int, object], int],
    inputs: int,
    timing: dict,
) -> dict:
    """Time ``call(i)`` on inputs ``0, 1, ...`` (cycling) until ``timing`` has enough samples.

    Args:
        call: the whole job on input ``i``; its result goes to ``count``.
        count: output tokens of input ``i``'s result, outside the timed span.
        inputs: how many distinct inputs there are.
        timing: a ``TimingConfig`` as a dict.

    Returns:
        ``summarize``'s percentiles per input, plus ``throughput_per_s`` (inputs per second),
        ``tokens_per_s``, ``output_tokens_mean``, ``inputs`` (distinct ones timed), ``warmup``.
    """
    for index in range(timing["warmup"]):
        call(index % inputs)
    samples, tokens = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside one sample would be noise, not the model's cost
    try:
        start = time.perf_counter()
        while not _enough(samples, time.perf_counter() - start, timing):
            index = len(samples) % inputs
            begin = time.perf_counter()
            result = call(index)
            samples.append(time.perf_counter() - begin)
            tokens.append(count(index, result))
    finally:
        if gc_was_enabled:
            gc.enable()
    total_s = float(sum(samples))
    return summarize(samples) | {
        "warmup": timing["warmup"],
        "throughput_per_s": len(samples) / total_s,
        "tokens_per_s": sum(tokens) / total_s,
        "output_tokens_mean": float(np.mean(tokens)),
        "inputs": min(len(samples), inputs),
    }


def first_token_times(call: Callable[[int], object], inputs: int, timing: dict) -> dict:
    """p50/p90 of the time to the first output token, over the same inputs."""
    stats = time_per_input(call, lambda index, result: 1, inputs, timing)
    return {"first_token_p50_ms": stats["p50_ms"], "first_token_p90_ms": stats["p90_ms"]}


class RuntimeJobs:
    """A bundle at one precision in ``edgernn.runtime.Runtime``: the calls an app makes."""

    def __init__(self, request: dict):
        from edgernn.runtime import Runtime

        self.runtime = Runtime(request["path"], request["precision"], threads=JOB_THREADS)
        vocab = self.runtime.manifest["vocab"]
        # The runtime takes token lists (seq2seq) and texts (lm), as an app passes them.
        self.tokens = [[vocab[i] for i in ids] for ids in request["job_inputs"]]
        self.texts = [self.runtime.codec.rules.join.join(tokens) for tokens in self.tokens]
        self._counts: dict[tuple, int] = {}

    def jobs(self) -> list[tuple[str, Callable[[int], object], Callable[[int, object], int]]]:
        """``(label, call, count)`` per job of the task."""
        runtime = self.runtime
        if runtime.task == "lm":
            return [
                (
                    generate_label(),
                    lambda i: runtime.generate(self.texts[i], GENERATE_TOKENS, temperature=0),
                    lambda i, text: GENERATE_TOKENS,  # generate never stops early
                )
            ]
        return [
            (
                beam_label(beam),
                lambda i, beam=beam: runtime.translate([self.tokens[i]], beam=beam),
                lambda i, text, beam=beam: self._count(i, beam),
            )
            for beam in (1, BEAM)
        ]

    def _count(self, index: int, beam: int) -> int:
        # Tokens as ids (the text would count a multi-character token as several): decode
        # once, untimed; the search is deterministic, so it is the timed call's output.
        key = index, beam
        if key not in self._counts:
            src, lengths = self.runtime.codec.encode([self.tokens[index]])
            self._counts[key] = len(self.runtime.decode_ids(src, lengths, beam)[0])
        return self._counts[key]

    def first_token(self, index: int) -> int:
        """Input ``index`` up to its first output token, through the runtime's own graphs."""
        runtime = self.runtime
        if runtime.task == "lm":
            ids = np.array([runtime.codec.ids(self.texts[index], blank_ok=True)], "i8")
            logits, _ = runtime.step(ids)
            return _first_choice(logits[0, -1])
        from edgernn.runtime.search import decoder_step

        src, lengths = runtime.codec.encode([self.tokens[index]])
        encoded = runtime.run("encoder", {"src": src, "src_lengths": lengths})
        names, outputs = self._decoder_states()
        step = decoder_step(
            lambda feeds: runtime.run("decoder", feeds),
            encoded["memory"],
            encoded["mask"],
            names,
            outputs,
        )
        logits, _ = step(np.full(1, BOS_ID, "i8"), tuple(encoded[name] for name in names))
        return int(logits[0].argmax())

    def _decoder_states(self) -> tuple[list[str], list[str]]:
        # The manifest's state pairs of the loaded decoder, as Runtime.decode_ids feeds them.
        (entry,) = [
            entry
            for entry in self.runtime.manifest["files"]
            if entry["role"] == "decoder" and entry["precision"] == self.runtime.precision
        ]
        return [s["input"] for s in entry["states"]], [s["output"] for s in entry["states"]]

    def extra(self) -> dict:
        return {"providers": ["CPUExecutionProvider"]}  # what Runtime's sessions run on


class TorchJobs:
    """A checkpoint's model at one precision doing the app's job with its own search."""

    def __init__(self, request: dict):
        import torch

        from edgernn.bench.precision import variant
        from edgernn.checkpoint import load_checkpoint

        self.torch, self.device = torch, request["device"]
        checkpoint = load_checkpoint(request["path"])
        self.task = checkpoint.spec.task
        run_on = "cpu" if request["precision"] == "int8" else self.device
        self.model = variant(checkpoint.build(), request["precision"]).to(run_on).eval()
        self.quantized = request["precision"] == "int8"
        self.ids = [
            torch.tensor([ids], dtype=torch.long, device=run_on) for ids in request["job_inputs"]
        ]
        self.lengths = [torch.tensor([len(ids)], dtype=torch.long) for ids in request["job_inputs"]]
        self.prefixes = request["job_inputs"]

    def jobs(self) -> list[tuple[str, Callable[[int], object], Callable[[int, object], int]]]:
        model, torch = self.model, self.torch
        if self.task == "lm":

            def generate(i: int) -> list[int]:
                # As edgernn.generate.generate_text, minus building the model on every call.
                with torch.inference_mode():
                    if self.quantized:
                        return self._greedy_tokens(i)
                    return model.generate(self.prefixes[i], GENERATE_TOKENS, temperature=0.0)

            return [(generate_label(), self._synced(generate), lambda i, ids: len(ids))]

        def translate(i: int, beam: int) -> list[list[int]]:
            with torch.inference_mode():
                if beam == 1:
                    return model.greedy(self.ids[i], self.lengths[i])
                return model.beam_search(self.ids[i], self.lengths[i], beam)

        return [
            (
                beam_label(beam),
                self._synced(lambda i, beam=beam: translate(i, beam)),
                lambda i, ids: len(ids[0]),
            )
            for beam in (1, BEAM)
        ]

    def _greedy_tokens(self, index: int) -> list[int]:
        # The LM's generate at temperature 0, step for step: torch's dynamic int8 Linear has
        # no .weight tensor, which generate reads for its device, so int8 runs this copy.
        tokens, state, generated = self.ids[index], None, []
        for _ in range(GENERATE_TOKENS):
            lengths = self.torch.tensor([tokens.size(1)], dtype=self.torch.long)
            logits, state = self.model.forward_with_state(tokens, lengths, state)
            choice = int(logits[0, -1, SPECIAL_COUNT:].argmax()) + SPECIAL_COUNT
            generated.append(choice)
            tokens = self.torch.tensor([[choice]], dtype=self.torch.long, device=tokens.device)
        return generated

    def first_token(self, index: int) -> int:
        """Input ``index`` up to its first output token: encoder + one decoder step (seq2seq),
        the prefix through the model (lm), then the argmax."""
        model, torch = self.model, self.torch
        with torch.inference_mode():
            if self.task == "lm":
                logits, _ = model.forward_with_state(self.ids[index], self.lengths[index])
                token = logits[0, -1, SPECIAL_COUNT:].argmax() + SPECIAL_COUNT
            else:
                memory, mask, state = model.encode(self.ids[index], self.lengths[index])
                bos = torch.full((1,), BOS_ID, dtype=torch.long, device=memory.device)
                logits, _ = model.decode_step(bos, state, memory, mask)
                token = logits[0].argmax()
            self.sync()
            return int(token)

    def _synced(self, call: Callable[[int], object]) -> Callable[[int], object]:
        def synced(index: int) -> object:
            result = call(index)
            self.sync()  # on cuda, the sample covers the work, not its launch
            return result

        return synced

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def extra(self) -> dict:
        if self.device != "cuda":
            return {}
        return {"cuda_max_allocated_mb": self.torch.cuda.max_memory_allocated() / 2**20}


def beam_label(beam: int) -> str:
    return "greedy" if beam == 1 else f"beam {beam}"


def generate_label() -> str:
    return f"{GENERATE_TOKENS} tokens, temperature 0"


def _first_choice(scores: np.ndarray) -> int:
    # As Runtime.generate: reserved ids are never chosen.
    return int(scores[SPECIAL_COUNT:].argmax()) + SPECIAL_COUNT


JOB_RUNNERS = {"torch": TorchJobs, "onnxruntime": RuntimeJobs}


def measure_jobs(request: dict) -> dict:
    """Load the model once, then time each job of its task and the first token.

    Args:
        request: as ``edgernn.bench.worker.measure``, plus ``job_inputs`` (token ids per
            input, specials excluded) and ``job_source`` (where they came from).

    Returns:
        ``load_ms``, ``peak_rss_raw_mb`` and ``latency``: one entry per job (``job`` names
        it), each with the first-token times.
    """
    if request["runtime"] == "torch":
        import torch

        torch.set_num_threads(JOB_THREADS)
    if not request.get("job_inputs"):
        raise EdgeRNNError("no inputs to time the job on (the test split gave none)")
    start = time.perf_counter()
    runner = JOB_RUNNERS[request["runtime"]](request)
    load_ms = (time.perf_counter() - start) * 1000.0
    inputs, timing = len(request["job_inputs"]), request["timing"]
    jobs = runner.jobs()
    first = first_token_times(runner.first_token, inputs, timing)
    _progress(1, len(jobs) + 1)
    latency = []
    for label, call, count in jobs:
        stats = time_per_input(call, count, inputs, timing)
        entry = {"device": request["device"], "batch": None, "seq_len": None}
        entry |= {"threads": JOB_THREADS, "job": label, "input_source": request["job_source"]}
        latency.append(entry | stats | first)
        _progress(len(latency) + 1, len(jobs) + 1)
    result = {"load_ms": load_ms, "peak_rss_raw_mb": peak_rss_mb(), "latency": latency}
    return result | runner.extra()


def _progress(done: int, total: int) -> None:
    print(f"@progress {done} {total}", file=sys.stderr, flush=True)
