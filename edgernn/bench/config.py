"""What to measure (``BenchConfig``, ``TimingConfig``) and on which models (``Candidate``).

Torch-free on purpose: the measuring subprocess imports this module too, and its memory must
hold only the runtime under test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from edgernn.errors import EdgeRNNError

DEVICES = ("cpu", "cuda")
FORMATS = ("torch", "onnx", "c")  # c: a C export folder (edgernn export --target c)
PRECISIONS = ("fp32", "fp16", "int8")
ROLES = ("teacher", "student", "final", "peer")
# What an app does with a model of the task, timed end to end as one call per input.
JOBS = {"seq2seq": "translate", "lm": "generate"}
BEAM = 4  # the beam width timed beside greedy: a common setting for on-device search
GENERATE_TOKENS = 32  # tokens generated per prefix (temperature 0): one short reply


def _check_sizes(name: str, values: tuple[int, ...]) -> None:
    if not values:
        raise EdgeRNNError(f"{name} needs at least one value")
    bad = [v for v in values if not isinstance(v, int) or v < 1]
    if bad:
        raise EdgeRNNError(f"{name} must all be integers >= 1, got {bad}")


def _check_chunk_ms(chunk_ms: float | None) -> None:
    if chunk_ms is None:
        return
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, (int, float)):
        raise EdgeRNNError(f"--chunk-ms must be a number of milliseconds, got {chunk_ms!r}")
    if not (math.isfinite(chunk_ms) and chunk_ms > 0):
        raise EdgeRNNError(
            f"--chunk-ms must be a positive, finite number of milliseconds (the span one call "
            f"covers, e.g. 32 for 512 samples at 16 kHz), got {chunk_ms}"
        )


@dataclass(frozen=True)
class TimingConfig:
    """How long each grid point is timed: at least ``min_iters`` and ``min_time_s``, capped."""

    warmup: int = 5  # untimed calls first: lazy allocations, caches and cuDNN plans settle
    min_iters: int = 20  # a median of fewer samples moves with every scheduler hiccup
    min_time_s: float = 0.5  # fast models run many iterations, so the median is stable
    max_iters: int = 10_000  # caps a very fast model's loop
    max_time_s: float = 5.0  # caps a slow point; it then keeps at least 3 samples

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise EdgeRNNError(f"warm-up iterations must be >= 0, got {self.warmup}")
        if not 1 <= self.min_iters <= self.max_iters:
            raise EdgeRNNError(
                f"need 1 <= min_iters <= max_iters, got {self.min_iters} and {self.max_iters}"
            )
        if not 0 <= self.min_time_s <= self.max_time_s:
            raise EdgeRNNError(
                f"need 0 <= min_time_s <= max_time_s, got {self.min_time_s} and {self.max_time_s}"
            )


@dataclass(frozen=True)
class BenchConfig:
    """The measurement grid, the device and where the task metric comes from.

    Example::

        config = BenchConfig(batch_sizes=(1, 8), seq_lens=(16, 64), threads=(1, 2))
    """

    device: str = "cpu"  # cuda measures fp32/fp16 PyTorch and ORT's CUDA provider
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    seq_lens: tuple[int, ...] = (16, 64, 256)
    threads: tuple[int, ...] = (1,)  # intra-op threads; inter-op is pinned to 1
    data: str | None = None  # DATA whose test split gives the task metric; None skips it
    timing: TimingConfig = field(default_factory=TimingConfig)
    progress: bool = True  # tqdm bar on stderr
    seed: int = 0  # random inputs are seeded so two runs time the same work
    # The audio (or time) span one call of a streaming graph covers, e.g. 32 for 512 samples
    # at 16 kHz: rows of such graphs get real-time factor = per-call latency / chunk_ms.
    chunk_ms: float | None = None
    # seq2seq and lm: also time the app's whole job (translate, generate) per input; the
    # summary ratios then compare those rows, never one call of one graph.
    end_to_end: bool = True

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise EdgeRNNError(f"unknown device {self.device!r}; choose cpu or cuda")
        _check_sizes("batch sizes", self.batch_sizes)
        _check_sizes("sequence lengths", self.seq_lens)
        _check_sizes("thread counts", self.threads)
        _check_chunk_ms(self.chunk_ms)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One model in one runtime and precision: one row of the report.

    ``example`` (an ``.npz`` keyed by input names) fixes input shapes, dtypes and valid
    values for ONNX files edgernn did not make. Such a file (``as_given``) is timed at the
    example's shapes exactly, except the axes ``axes`` marks batch or time (the
    ``--axes NAME=ROLE,...`` syntax of ``edgernn.export.axes``), which follow the grid.
    """

    name: str
    path: str  # the .pt checkpoint, the .onnx file or the C export folder
    format: str  # torch | onnx | c
    precision: str  # fp32 | fp16 | int8
    role: str = "peer"  # teacher | student | final | peer
    example: str | None = None
    task: str | None = None  # known for checkpoints and bundles; None for a bare ONNX file
    graph: str | None = None  # a bundle graph's role: model | step | encoder | decoder
    as_given: bool = False  # an ONNX file with an example: no grid but the axes below
    axes: dict = field(default_factory=dict, hash=False)  # input -> ("batch"|"time"|"-", ...)
    # translate | generate: the app's whole job (``edgernn.bench.jobs``), one call per input,
    # of a checkpoint (its own search in PyTorch) or of a bundle (``Runtime``, every graph).
    job: str | None = None

    def __post_init__(self) -> None:
        for label, value, choices in (
            ("format", self.format, FORMATS),
            ("precision", self.precision, PRECISIONS),
            ("role", self.role, ROLES),
        ):
            if value not in choices:
                raise EdgeRNNError(f"unknown {label} {value!r}; choose one of {choices}")
        if self.job is not None and self.job not in JOBS.values():
            raise EdgeRNNError(f"unknown job {self.job!r}; choose one of {list(JOBS.values())}")

    @property
    def runtime(self) -> str:
        return {"torch": "torch", "onnx": "onnxruntime", "c": "c"}[self.format]
