"""The runtimes a worker can measure: PyTorch (checkpoints), ONNX Runtime (ONNX files) and
the C target (a C export folder, compiled for this CPU and called through ctypes).

Each runtime module is imported only inside the worker that measures it, so a process's
memory holds one runtime. ``import_runtime`` is what the empty baseline process runs too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgernn.errors import EdgeRNNError


def import_runtime(runtime: str, device: str) -> None:
    """Import ``runtime`` (and start the CUDA context on cuda) without loading any model."""
    if runtime == "torch":
        import torch

        import edgernn.bench.precision  # noqa: F401  (the measuring worker imports it too)
        import edgernn.checkpoint  # noqa: F401

        if device == "cuda":
            torch.zeros(1, device="cuda")
            torch.cuda.synchronize()
    elif runtime == "onnxruntime":
        import onnxruntime  # noqa: F401


class TorchRunner:
    """A checkpoint's model at one precision on one device, fed random valid inputs."""

    def __init__(self, request: dict):
        import torch

        from edgernn.bench.precision import variant
        from edgernn.checkpoint import load_checkpoint

        self.torch = torch
        self.device = request["device"]
        checkpoint = load_checkpoint(request["path"])
        self.spec = checkpoint.spec
        self.model = variant(checkpoint.build(), request["precision"]).to(self.device)
        self.generator = torch.Generator().manual_seed(request["seed"])

    def points(self, batches: list[int], seq_lens: list[int]) -> list[tuple]:
        return [(b, t) for b in batches for t in seq_lens]

    def set_threads(self, threads: int) -> None:
        self.torch.set_num_threads(threads)

    def prepare(self, batch: int, seq_len: int) -> tuple[Callable[[], object], dict]:
        """The call to time at ``(batch, seq_len)`` and the input shapes it uses."""
        args = self._inputs(batch, seq_len)
        model, torch = self.model, self.torch

        def call() -> object:
            with torch.inference_mode():
                return model(*args)

        return call, {f"arg{i}": list(a.shape) for i, a in enumerate(args)}

    def _inputs(self, batch: int, seq_len: int) -> tuple:
        spec, torch = self.spec, self.torch
        if spec.vocab_size:
            low = 4 if spec.vocab_size > 4 else 0  # skip <pad>/<unk>/<bos>/<eos>
            inputs = torch.randint(low, spec.vocab_size, (batch, seq_len), generator=self.generator)
        else:
            inputs = torch.randn(batch, seq_len, spec.input_size, generator=self.generator)
        lengths = torch.full((batch,), seq_len, dtype=torch.long)  # packing wants CPU lengths
        args = [inputs.to(self.device), lengths]
        if spec.task == "seq2seq":
            # One teacher-forced pass: decoding as many target steps as source steps.
            low = 4 if spec.num_outputs > 4 else 0
            shape = (batch, seq_len)
            target = torch.randint(low, spec.num_outputs, shape, generator=self.generator)
            args.append(target.to(self.device))
        return tuple(args)

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def extra(self) -> dict:
        if self.device != "cuda":
            return {}
        return {"cuda_max_allocated_mb": self.torch.cuda.max_memory_allocated() / 2**20}


# What ONNX Runtime raises when a graph cannot run on the inputs it is given.
_ORT_RUN_ERRORS = ("Fail", "InvalidArgument", "RuntimeException", "NotImplemented", "EPFail")


class OrtRunner:
    """An ONNX file in ONNX Runtime, one session per thread count.

    Inputs follow the grid on their batch and sequence axes, or, for an ONNX file edgernn
    did not make given an example (``request["as_given"]``), keep the example's shapes but
    for the axes ``request["axes"]`` marks (``edgernn.bench.inputs.AsGiven``).
    """

    def __init__(self, request: dict):
        import onnxruntime as ort

        from edgernn.bench.inputs import as_given, assign_axes, check_example, ort_dtype

        self.ort, self.path, self.device = ort, request["path"], request["device"]
        self.session = None
        self.example = _load_example(request.get("example"))
        self._open(request["threads"][0])
        self.inputs = [
            {"name": i.name, "dtype": ort_dtype(i.type), "shape": list(i.shape)}
            for i in self.session.get_inputs()
        ]
        if self.example is not None:
            check_example(self.inputs, self.example)
        self.plan = None
        if request.get("as_given") and self.example is not None:
            shapes = {name: array.shape for name, array in self.example.items()}
            self.plan = as_given(self.inputs, shapes, request.get("axes") or {})
            self.axes = self.plan.roles
        else:
            self.axes = assign_axes(self.inputs, frozenset(self.example or ()))
        self.rng = np.random.default_rng(request["seed"])

    def _open(self, threads: int) -> None:
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # warnings would land on the user's terminal
        providers = ["CPUExecutionProvider"]
        if self.device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        self.session = None  # free the previous session first: peak memory is one session
        self.session = self.ort.InferenceSession(self.path, options, providers=providers)
        if self.device == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise EdgeRNNError("onnxruntime could not start its CUDA provider")
        self.threads = threads

    def points(self, batches: list[int], seq_lens: list[int]) -> list[tuple]:
        from edgernn.bench.inputs import grid_uses

        uses_batch, uses_seq = self.plan.varies if self.plan else grid_uses(self.axes)
        # A graph without a batch (or sequence) axis would time the same work again and again.
        batches = batches if uses_batch else [None]
        seq_lens = seq_lens if uses_seq else [None]
        return [(b, t) for b in batches for t in seq_lens]

    def set_threads(self, threads: int) -> None:
        if threads != self.threads:
            self._open(threads)

    def prepare(self, batch: int | None, seq_len: int | None) -> tuple[Callable, dict]:
        from edgernn.bench.inputs import make_feeds

        point = self.plan.feed_point((batch, seq_len)) if self.plan else (batch, seq_len)
        feeds = make_feeds(self.inputs, self.axes, point, self.rng, self.example)
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        session = self.session
        self._try(session, feeds, shapes)
        return (lambda: session.run(None, feeds)), shapes

    def stream(self, steps: int, states: list[dict]) -> tuple[Callable, dict]:
        """One stream's call of ``steps`` steps, each feeding the state the last one returned.

        What a streaming app does per chunk: the state input is the previous call's state
        output, not a fresh array, so the timed work is that of a real stream.

        Args:
            steps: the chunk length each call covers.
            states: the step graph's ``{"input", "output"}`` state pairs (its manifest entry).
        """
        from edgernn.bench.inputs import make_feeds

        feeds = make_feeds(self.inputs, self.axes, (1, steps), self.rng, self.example)
        for state in states:
            feeds[state["input"]] = np.zeros_like(feeds[state["input"]])  # a stream's start
        shapes = {k: list(v.shape) for k, v in feeds.items()}
        session, names = self.session, [o.name for o in self.session.get_outputs()]
        self._try(session, feeds, shapes)
        carried = [(state["input"], names.index(state["output"])) for state in states]

        def call() -> None:
            outputs = session.run(None, feeds)
            for name, index in carried:
                feeds[name] = outputs[index]

        return call, shapes

    def _try(self, session, feeds: dict, shapes: dict) -> None:
        """One untimed call, so a graph that cannot take these shapes fails as one line."""
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        errors = tuple(getattr(state, name) for name in _ORT_RUN_ERRORS if hasattr(state, name))
        try:
            session.run(None, feeds)
        except errors as error:
            reason = (str(error).strip().splitlines() or ["no message"])[0]
            raise EdgeRNNError(
                f"ONNX Runtime cannot run it on inputs {shapes} ({reason}); {self._fix()}"
            ) from None

    def _fix(self) -> str:
        if self.example is None:
            return (
                "if an axis must keep its size (a fixed audio chunk, say), pass --example "
                "inputs.npz to time the shapes the model takes"
            )
        if self.plan is not None and any(self.plan.varies):
            return (
                "an input whose axis must follow the varied one (a state, say) needs --axes "
                "too, e.g. --axes state=-,batch,-"
            )
        return "check that the --example arrays are inputs the model runs on"

    def sync(self) -> None:
        """``run`` returns host arrays, so it has already waited for the device."""

    def extra(self) -> dict:
        return {"providers": self.session.get_providers()}


def _load_example(path: str | None) -> dict | None:
    from pathlib import Path

    from edgernn.npz import load_npz

    return None if path is None else load_npz(Path(path), None)


class CRunner:
    """A C export (``edgernn export --target c``) built as a shared library, one sequence per
    call: the C API has no batch, so only batch 1 is timed, on the one thread it runs on."""

    def __init__(self, request: dict):
        import tempfile
        from pathlib import Path

        from edgernn.c.library import CLibrary

        self.work = tempfile.TemporaryDirectory(prefix="edgernn-bench-c-")
        self.library = CLibrary(Path(request["path"]), Path(self.work.name))
        self.streaming = self.library.streaming  # time_grid adds a stream entry then
        self.rng = np.random.default_rng(request["seed"])

    def points(self, batches: list[int], seq_lens: list[int]) -> list[tuple]:
        return [(1, t) for t in seq_lens]

    def set_threads(self, threads: int) -> None:
        """The C code runs on the calling thread whatever the count."""

    def prepare(self, batch: int, seq_len: int) -> tuple[Callable, dict]:
        frames = self.library.frames(seq_len, self.rng)
        call, _ = self.library.runner(frames)
        self.library.run(frames)  # refuses, as one line, a model that cannot take it
        return call, {"input": list(frames.shape)}

    def stream(self, steps: int, states: list[dict]) -> tuple[Callable, dict]:
        """A stream's chunk: ``edgernn_step`` once per frame, the state carried in C."""
        frames = self.library.frames(steps, self.rng)
        return self.library.stepper(frames)[0], {"input": list(frames.shape)}

    def sync(self) -> None:
        """The C call returns when its work is done."""

    def extra(self) -> dict:
        return {"ram_bytes": self.library.ram_bytes}


RUNNERS = {"torch": TorchRunner, "onnxruntime": OrtRunner, "c": CRunner}
