"""What ``compress`` does: ``CompressConfig`` (the stages), ``CompressOptions`` (its flags)
and ``BundleReportConfig`` (the latency grid of the bundle report).

``CompressOptions`` is the flat form the command line and a recipe's ``[compress]`` section
share: one field per ``edgernn compress`` flag, named like the flag, its default read from the
stage configs (``StudentConfig``, ``DistillConfig``, ``PruneConfig``, ``QuantizeConfig``,
``TrainConfig``), so every default is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from edgernn.config import TrainConfig
from edgernn.distill.config import DistillConfig, StudentConfig
from edgernn.errors import EdgeRNNError
from edgernn.export.config import EMBED_BITS
from edgernn.metrics.drop import POINTS, RELATIVE
from edgernn.prune.config import PruneConfig
from edgernn.quantize.config import QuantizeConfig

DEFAULT_PRUNE_AMOUNT = 0.25  # of the student's hidden units, structured
# What a lossy stage may cost against the teacher on the valid split, by metric direction
# (higher is better?): 1 point for accuracy-like metrics, 2 % relative for perplexity and MSE.
DEFAULT_TOLERANCE = {True: 1.0, False: 2.0}
_POINTS = f"{DEFAULT_TOLERANCE[True]:g} {POINTS}".replace("1 points", "1 point")
TOLERANCE_TEXT = f"{_POINTS}; {DEFAULT_TOLERANCE[False]:g} {RELATIVE}"  # for help texts


@dataclass(frozen=True)
class CompressConfig:
    """Which stages run and how; ``None`` skips a stage."""

    student: StudentConfig | None = field(default_factory=StudentConfig)  # None: no distilling
    distill: DistillConfig = field(default_factory=DistillConfig)
    prune: PruneConfig | None = field(
        default_factory=lambda: PruneConfig(amount=DEFAULT_PRUNE_AMOUNT)
    )
    quantize: QuantizeConfig | None = field(default_factory=QuantizeConfig)
    # A pruning or int8 result worse than the teacher by more than this on the valid split is
    # reported but not kept (see stages._Run.keep_if_close). None: DEFAULT_TOLERANCE; inf
    # keeps all.
    tolerance: float | None = None
    # Bits per weight of embedding tables in the bundle's int8 graphs: 8, or 4-bit blocks
    # (edgernn.export.int4), where the table of a large vocabulary keeps most of the bytes.
    embed_bits: int = 8

    def __post_init__(self) -> None:
        if self.tolerance is not None and not self.tolerance >= 0:
            raise EdgeRNNError(f"tolerance must be >= 0, got {self.tolerance}")
        if self.embed_bits not in EMBED_BITS:
            raise EdgeRNNError(f"embed bits must be 8 or 4, got {self.embed_bits}")


@dataclass(frozen=True)
class CompressOptions:
    """The ``edgernn compress`` flags (and recipe ``[compress]`` keys), one field each.

    Example::

        config = CompressOptions(student_hidden=32, prune=0.5).config()
    """

    student_hidden: int | None = StudentConfig.hidden  # None: widest within the budget
    student_embed: int | None = StudentConfig.embed  # None: scaled with the hidden width
    student_layers: int | None = StudentConfig.layers  # None: the teacher's
    student_cell: str | None = StudentConfig.cell  # None: the teacher's
    student_unidirectional: bool = False  # a one-way student of a bidirectional teacher
    vocab_size: int | None = StudentConfig.vocab_size  # None: the teacher's vocabulary
    vocab_coverage: float | None = StudentConfig.vocab_coverage
    embed_rank: int | None = StudentConfig.embed_rank  # None: as the teacher's table
    embed_buckets: int | None = StudentConfig.embed_buckets  # None: as the teacher's table
    embed_bits: int = 8  # bits per embedding-table weight in the int8 ONNX graphs (8 or 4)
    temperature: float = DistillConfig.temperature
    alpha: float = DistillConfig.alpha
    seq_kd: str = DistillConfig.seq_kd  # word|sequence|both (seq2seq)
    hidden_match: float = DistillConfig.hidden_match
    augment: float | None = DistillConfig.augment  # None: DEFAULT_AUGMENT of the task
    regression_kd: str = DistillConfig.regression_kd  # mse|bounded (regress)
    prune: float = DEFAULT_PRUNE_AMOUNT  # fraction of hidden units (structured) or weights
    prune_mode: str = PruneConfig.mode
    sensitivity: float = QuantizeConfig.threshold  # int8: most one layer may cost alone
    tolerance: float | None = None  # None: DEFAULT_TOLERANCE; inf keeps every stage
    no_distill: bool = False
    no_prune: bool = False
    no_quantize: bool = False
    epochs: int = TrainConfig.epochs  # distillation epochs (upper bound)
    lr: float = TrainConfig.lr  # distillation's peak learning rate (one-cycle)
    seed: int = TrainConfig.seed

    def __post_init__(self) -> None:
        self.config()  # every value is checked where the stage configs check it

    def config(self, progress: bool = True) -> CompressConfig:
        """The ``CompressConfig`` these options describe.

        Raises:
            EdgeRNNError: an invalid value.
        """
        student = StudentConfig(
            hidden=self.student_hidden,
            embed=self.student_embed,
            layers=self.student_layers,
            cell=self.student_cell,
            bidirectional=False if self.student_unidirectional else None,
            vocab_size=self.vocab_size,
            vocab_coverage=self.vocab_coverage,
            embed_rank=self.embed_rank,
            embed_buckets=self.embed_buckets,
        )
        embedding = (self.vocab_size, self.vocab_coverage, self.embed_rank, self.embed_buckets)
        if self.no_distill and any(value is not None for value in embedding):
            raise EdgeRNNError(
                "a pruned vocabulary or a low-rank or hashed embedding is a student's, and "
                "--no-distill trains none: drop --no-distill or the embedding flags"
            )
        distill_fields = {f.name for f in fields(DistillConfig)} & {f.name for f in fields(self)}
        distill = DistillConfig(
            train=TrainConfig(epochs=self.epochs, lr=self.lr, seed=self.seed, progress=progress),
            **{name: getattr(self, name) for name in distill_fields},
        )
        prune = None if self.no_prune else PruneConfig(amount=self.prune, mode=self.prune_mode)
        return CompressConfig(
            student=None if self.no_distill else student,
            distill=distill,
            prune=prune,
            quantize=None if self.no_quantize else QuantizeConfig(threshold=self.sensitivity),
            tolerance=self.tolerance,
            embed_bits=self.embed_bits,
        )


@dataclass(frozen=True)
class BundleReportConfig:
    """The latency grid of the final report; small by default so compress stays quick."""

    batch_sizes: tuple[int, ...] = (1, 8)
    seq_lens: tuple[int, ...] = (16, 64)
    threads: tuple[int, ...] = (1,)
    min_time_s: float = 0.3  # per grid point; ratios, not absolute times, are the point
    progress: bool = True
    # Also export the C99 target into OUTDIR/c (edgernn.c) and report its flash, RAM, test
    # metric and batch-1 latency beside the ONNX graphs.
    c_target: bool = False
