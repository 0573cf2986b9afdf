"""What a distillation does: the student's shape and how it learns (frozen, validated)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from edgernn.config import CELLS, TrainConfig
from edgernn.errors import EdgeRNNError

SEQ2SEQ_MODES = ("word", "sequence", "both")
DEFAULT_AUGMENT = {"regress": 0.3}  # DistillConfig.augment when it is None; 0 elsewhere
REGRESSION_MODES = ("mse", "bounded")
RESERVED_TOKENS = 4  # <pad>, <unk>, <bos>, <eos> (edgernn.data.vocab, which imports torch)


@dataclass(frozen=True)
class StudentConfig:
    """The student's shape; a field left ``None`` follows the teacher or the parameter budget.

    Example::

        StudentConfig(cell="gru", bidirectional=False)   # width chosen to fit 1/4 of the teacher
    """

    hidden: int | None = None  # None: the widest student within max_param_ratio
    embed: int | None = None  # None: the teacher's embedding scaled like the hidden width
    layers: int | None = None  # None: as many as the teacher
    cell: str | None = None  # None: the teacher's cell type
    bidirectional: bool | None = None  # None: as the teacher; False: one-way student
    dropout: float | None = None  # None: the teacher's
    max_param_ratio: float = 0.25  # budget for automatic sizing: student / teacher parameters
    # The source embedding (edgernn.distill.vocab, edgernn.models.embedding); None: as the
    # teacher's. The student keeps the vocab_size most frequent training tokens, or as few as
    # cover vocab_coverage of them; embed_rank factorizes its table (V x r + r x E; 0: a full one).
    vocab_size: int | None = None
    vocab_coverage: float | None = None
    embed_rank: int | None = None
    embed_buckets: int | None = None  # a hashed table of about this many rows; 0: not hashed

    def __post_init__(self) -> None:
        if self.cell is not None and self.cell not in CELLS:
            raise EdgeRNNError(f"unknown student cell {self.cell!r}; choose one of rnn, lstm, gru")
        for name in ("hidden", "embed", "layers"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise EdgeRNNError(f"student {name} must be at least 1, got {value}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise EdgeRNNError(f"student dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.max_param_ratio <= 1.0:
            raise EdgeRNNError(f"max_param_ratio must be in (0, 1], got {self.max_param_ratio}")
        self._check_vocabulary()

    def _check_vocabulary(self) -> None:
        if self.vocab_size is not None and self.vocab_coverage is not None:
            raise EdgeRNNError("give --vocab-size or --vocab-coverage, not both")
        if self.vocab_size is not None and self.vocab_size <= RESERVED_TOKENS:
            raise EdgeRNNError(
                f"vocab size must exceed the {RESERVED_TOKENS} reserved tokens, "
                f"got {self.vocab_size}"
            )
        if self.vocab_coverage is not None and not 0.0 < self.vocab_coverage <= 1.0:
            raise EdgeRNNError(f"vocab coverage must be in (0, 1], got {self.vocab_coverage}")
        if self.embed_buckets is not None and self.embed_buckets < 0:
            raise EdgeRNNError(f"embed buckets must be >= 0 (0: none), got {self.embed_buckets}")
        if self.embed_rank is not None and self.embed_rank < 0:
            raise EdgeRNNError(f"embed rank must be >= 0 (0: a full table), got {self.embed_rank}")


@dataclass(frozen=True)
class DistillConfig:
    """How the student learns from the teacher; defaults chosen on the builtin datasets."""

    # Defaults measured on the builtin datasets, 3 seeds each (benchmarks/results/
    # distill_sweep.md): T = 1 beat 2 on ner and sentiment; hidden-state matching won charlm,
    # ner, translate and seqsum against plain soft targets.
    temperature: float = 1.0  # softens both distributions
    alpha: float = 0.5  # weight of the teacher's outputs; 1 - alpha goes to the true targets
    # Hidden-state matching (FitNets): MSE between the features the student's and the
    # teacher's output layers read, through a learned projection; 0 is off.
    hidden_match: float = 1.0
    seq_kd: str = "word"  # seq2seq: word-level KD, sequence-level KD (teacher's beams), or both
    # regress: mse pulls towards the teacher's outputs; bounded (Chen et al. 2017) only adds
    # weight where the student is worse than the teacher, so the true targets stay the only
    # targets of the training inputs and the teacher teaches through function matching and
    # the hidden states. Plain mse lost to bounded on seqsum and forecast.
    regression_kd: str = "bounded"
    beam: int = 4  # beam width of the teacher's outputs for sequence-level KD
    # Function matching (Beyer et al. 2022): also imitate the teacher on perturbed inputs,
    # weighted by alpha: Gaussian noise of this std on numeric inputs, token replacement with
    # this probability on text; 0 is off. None: per task (DEFAULT_AUGMENT): noise 0.3 for
    # regression, whose exact labels leave the teacher nothing to add on the training inputs;
    # off for text, where token replacement lost on ner.
    augment: float | None = None
    train: TrainConfig = field(default_factory=TrainConfig)  # the same budget as a teacher

    def __post_init__(self) -> None:
        if not 0 < self.temperature < float("inf"):  # also refuses NaN
            raise EdgeRNNError(f"temperature must be positive and finite, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise EdgeRNNError(f"alpha must be in [0, 1], got {self.alpha}")
        if not 0 <= self.hidden_match < float("inf"):
            raise EdgeRNNError(f"hidden_match must be >= 0, got {self.hidden_match}")
        if self.seq_kd not in SEQ2SEQ_MODES:
            raise EdgeRNNError(
                f"unknown seq2seq distillation {self.seq_kd!r}; choose word, sequence or both"
            )
        if self.regression_kd not in REGRESSION_MODES:
            raise EdgeRNNError(
                f"unknown regression distillation {self.regression_kd!r}; choose mse or bounded"
            )
        if self.augment is not None and not 0.0 <= self.augment < 1.0:
            raise EdgeRNNError(f"augment must be in [0, 1), got {self.augment}")
        if self.beam < 1:
            raise EdgeRNNError(f"beam must be at least 1, got {self.beam}")

    def for_task(self, task: str) -> DistillConfig:
        """This config with its per-task defaults (``None`` fields) filled in."""
        if self.augment is not None:
            return self
        return replace(self, augment=DEFAULT_AUGMENT.get(task, 0.0))
