"""Frozen, self-validating configuration for models and training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from edgernn.errors import EdgeRNNError

TASKS = ("classify", "tag", "lm", "regress", "seq2seq")
CELLS = ("rnn", "lstm", "gru")
ATTENTIONS = ("bahdanau", "luong")
DEFAULT_ATTENTION = "bahdanau"  # seq2seq's attention when none is chosen
POOLINGS = ("last", "mean", "max")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise EdgeRNNError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise EdgeRNNError(f"{name} must be at least 1, got {value}")


def attention_for(task: str, attention: str | None) -> str | None:
    """``attention``, or ``DEFAULT_ATTENTION`` for a seq2seq model that names none.

    Example::

        attention_for("seq2seq", None)   # "bahdanau"
    """
    if task == "seq2seq":
        return attention or DEFAULT_ATTENTION
    return attention


@dataclass(frozen=True)
class ModelSpec:
    """Every hyperparameter needed to rebuild a model; stored in checkpoints as a dict."""

    task: str
    cell: str = "lstm"
    hidden: int = 128  # units per direction per layer; the main capacity knob
    layers: int = 1
    bidirectional: bool = False  # not allowed for lm (it would see the future)
    embed: int = 64  # token embedding width; unused for numeric inputs
    vocab_size: int = 0  # source vocabulary size; 0 means numeric inputs
    input_size: int = 0  # numeric features per step; 0 means token inputs
    num_outputs: int = 1  # classes, tags, LM vocabulary, regression targets or target vocabulary
    # seq2seq only: bahdanau (additive) or luong (multiplicative); see attention_for
    attention: str | None = None
    pooling: str = "last"  # classify/regress: how the sequence becomes one vector
    dropout: float = 0.1  # between layers and before the head; 0 disables
    max_len: int = 512  # longest input sequence the model accepts

    def __post_init__(self) -> None:
        _check_choice("task", self.task, TASKS)
        _check_choice("cell", self.cell, CELLS)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_positive(hidden=self.hidden, layers=self.layers, max_len=self.max_len)
        _check_positive(num_outputs=self.num_outputs)
        if (self.vocab_size > 0) == (self.input_size > 0):
            raise EdgeRNNError("a model takes either tokens (vocab_size) or numbers (input_size)")
        if self.vocab_size > 0:
            _check_positive(embed=self.embed)
        if not 0.0 <= self.dropout < 1.0:
            raise EdgeRNNError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.task == "lm" and self.bidirectional:
            raise EdgeRNNError("a language model cannot be bidirectional: it would see the future")
        if self.task == "seq2seq":
            _check_choice("attention", self.attention or "", ATTENTIONS)
            if self.vocab_size == 0:
                raise EdgeRNNError("seq2seq needs token inputs")
        elif self.attention is not None:
            raise EdgeRNNError("--attention only applies to --task seq2seq")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EdgeRNNError(f"model spec has unknown fields {unknown}; is edgernn too old?")
        return cls(**values)


@dataclass(frozen=True)
class TrainConfig:
    """How a model is fitted; defaults suit the builtin datasets on a laptop CPU."""

    # Upper bound; early stopping usually ends sooner. 20 epochs with patience 4 stopped the
    # builtin teachers early enough that a 1/4-size student trained 40 epochs beat 5 of 6.
    epochs: int = 40
    batch_size: int = 64
    lr: float = 3e-3  # peak learning rate of the one-cycle schedule
    weight_decay: float = 1e-2  # AdamW decoupled weight decay
    clip_norm: float = 1.0  # recurrent nets explode without gradient clipping
    patience: int = 10  # epochs without validation improvement before stopping
    seed: int = 0
    progress: bool = True  # tqdm bar on stderr

    def __post_init__(self) -> None:
        _check_positive(epochs=self.epochs, batch_size=self.batch_size, patience=self.patience)
        if self.lr <= 0:
            raise EdgeRNNError(f"learning rate must be positive, got {self.lr}")
        if self.clip_norm <= 0:
            raise EdgeRNNError(f"clip norm must be positive, got {self.clip_norm}")
