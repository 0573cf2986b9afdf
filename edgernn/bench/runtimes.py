"""The two runtimes a worker can measure: PyTorch (checkpoints) and ONNX Runtime (ONNX files).

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
    else:
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


class OrtRunner:
    """An ONNX file in ONNX Runtime, one session per thread count."""

    def __init__(self, request: dict):
        import onnxruntime as ort

        from edgernn.bench.inputs import assign_axes, check_example, ort_dtype

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

        uses_batch, uses_seq = grid_uses(self.axes)
        # A graph without a batch (or sequence) axis would time the same work again and again.
        batches = batches if uses_batch else [None]
        seq_lens = seq_lens if uses_seq else [None]
        return [(b, t) for b in batches for t in seq_lens]

    def set_threads(self, threads: int) -> None:
        if threads != self.threads:
            self._open(threads)

    def prepare(self, batch: int | None, seq_len: int | None) -> tuple[Callable, dict]:
        from edgernn.bench.inputs import make_feeds

        feeds = make_feeds(self.inputs, self.axes, (batch, seq_len), self.rng, self.example)
        session = self.session
        return (lambda: session.run(None, feeds)), {k: list(v.shape) for k, v in feeds.items()}

    def sync(self) -> None:
        """``run`` returns host arrays, so it has already waited for the device."""

    def extra(self) -> dict:
        return {"providers": self.session.get_providers()}


def _load_example(path: str | None) -> dict | None:
    if path is None:
        return None
    with np.load(path, allow_pickle=False) as arrays:
        return {name: arrays[name] for name in arrays.files}


RUNNERS = {"torch": TorchRunner, "onnxruntime": OrtRunner}
