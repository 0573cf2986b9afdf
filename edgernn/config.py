"""Frozen, self-validating configuration for models and training."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from edgernn.errors import EdgeRNNError

TASKS = ("classify", "tag", "lm", "regress", "seq2seq")
CELLS = ("rnn", "lstm", "gru")
ATTENTIONS = ("bahdanau", "luong")
DEFAULT_ATTENTION = "bahdanau"  # seq2seq's attention when none is chosen
POOLINGS = ("last", "mean", "max")
# Largest model edgernn builds: 2**31 fp32 parameters are 8 GiB of weights (training needs
# about four times that). A checkpoint or flag asking for more is refused before anything is
# allocated, instead of exhausting memory or overflowing inside torch.
MAX_PARAMS = 2**31
SEED_RANGE = (0, 2**64 - 1)  # what torch.manual_seed takes
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per recurrent layer


def _shown(value: object) -> str:
    return repr(value)[:60]  # a damaged checkpoint may hold anything there


def _check_types(spec: object, kinds: dict[str, tuple[type, ...]]) -> None:
    # bool is an int subclass, so it must be ruled out explicitly where an int is meant.
    for name, kind in kinds.items():
        value = getattr(spec, name)
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kind):
            wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kind)
            raise EdgeRNNError(f"{name} must be {wanted}, got {_shown(value)}")


def check_seed(seed: object) -> None:
    """Refuse a seed torch cannot take (not an int, negative, or past 64 bits)."""
    low, high = SEED_RANGE
    if not isinstance(seed, int) or isinstance(seed, bool) or not low <= seed <= high:
        raise EdgeRNNError(f"seed must be an integer in [0, 2**64), got {_shown(seed)}")


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
    # Low-rank source embedding: a vocab x rank table times a rank x embed projection
    # (edgernn.models.embedding); 0 is the plain vocab x embed table.
    embed_rank: int = 0
    # Hashed source embedding: two tables of about embed_buckets rows in all, each token the
    # sum of one row of each (edgernn.models.embedding); 0 is one row per token.
    embed_buckets: int = 0
    vocab_size: int = 0  # source vocabulary size; 0 means numeric inputs
    input_size: int = 0  # numeric features per step; 0 means token inputs
    num_outputs: int = 1  # classes, tags, LM vocabulary, regression targets or target vocabulary
    # seq2seq only: bahdanau (additive) or luong (multiplicative); see attention_for
    attention: str | None = None
    pooling: str = "last"  # classify/regress: how the sequence becomes one vector
    dropout: float = 0.1  # between layers and before the head; 0 disables
    max_len: int = 512  # longest input sequence the model accepts

    def __post_init__(self) -> None:
        _check_types(self, _SPEC_TYPES)
        _check_choice("task", self.task, TASKS)
        _check_choice("cell", self.cell, CELLS)
        _check_choice("pooling", self.pooling, POOLINGS)
        _check_positive(hidden=self.hidden, layers=self.layers, max_len=self.max_len)
        _check_positive(num_outputs=self.num_outputs)
        if (self.vocab_size > 0) == (self.input_size > 0):
            raise EdgeRNNError("a model takes either tokens (vocab_size) or numbers (input_size)")
        if self.vocab_size > 0:
            _check_positive(embed=self.embed)
        _check_embedding(self)
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
        if self.vocab_size < 0 or self.input_size < 0:
            raise EdgeRNNError("vocab_size and input_size cannot be negative")
        count = parameter_count(self)
        if count > MAX_PARAMS:
            raise EdgeRNNError(
                f"the model would have {count:,} parameters, more than edgernn builds "
                f"({MAX_PARAMS:,}, edgernn.config.MAX_PARAMS); choose smaller "
                "hidden/embed/layers"
            )

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def to_dict(self) -> dict:
        # A field added after version 1 is written only when it is used, so a model that does
        # not use it still loads in the edgernn versions that came before the field.
        values = asdict(self)
        return {k: v for k, v in values.items() if k not in _LATER_FIELDS or v != _LATER_FIELDS[k]}

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise EdgeRNNError(f"model spec has unknown fields {unknown}; is edgernn too old?")
        return cls(**values)


_LATER_FIELDS = {"embed_rank": 0, "embed_buckets": 0}  # name -> the default that older files mean
_SIZES = ("hidden", "layers", "embed", "vocab_size", "input_size", "num_outputs")
_SIZES += ("embed_rank", "embed_buckets")
_SPEC_TYPES = {
    **dict.fromkeys(("task", "cell", "pooling"), (str,)),
    **dict.fromkeys((*_SIZES, "max_len"), (int,)),
    "bidirectional": (bool,),
    "attention": (str, type(None)),
    "dropout": (float, int),
}


def _check_embedding(spec: ModelSpec) -> None:
    if spec.embed_rank == 0 and spec.embed_buckets == 0:
        return
    if spec.vocab_size == 0:
        raise EdgeRNNError(
            "embed_rank and embed_buckets apply to token inputs; numeric inputs have no embedding"
        )
    if spec.embed_rank and spec.embed_buckets:
        raise EdgeRNNError("an embedding is low-rank or hashed, not both: drop one")
    if spec.embed_buckets:
        if spec.embed_buckets < 3:
            raise EdgeRNNError(f"embed_buckets must be at least 3, got {spec.embed_buckets}")
        return
    if not 1 <= spec.embed_rank <= spec.embed:
        raise EdgeRNNError(
            f"embed_rank must be in [1, embed={spec.embed}] (0: a full table), "
            f"got {spec.embed_rank}"
        )


def hashed_rows(buckets: int) -> tuple[int, int]:
    """Rows of a hashed embedding's two tables (``edgernn.models.embedding.HashedEmbedding``):
    consecutive sizes, which are coprime, for ``buckets`` in all (an even count loses one)."""
    first = (buckets + 1) // 2
    return first, first - 1


def embedding_params(spec: ModelSpec) -> int:
    """Parameters of the source embedding: vocab x embed, vocab x rank + rank x embed, or
    buckets x embed."""
    if spec.vocab_size == 0:
        return 0
    if spec.embed_buckets:
        return sum(hashed_rows(spec.embed_buckets)) * spec.embed
    if spec.embed_rank == 0:
        return spec.vocab_size * spec.embed
    return spec.embed_rank * (spec.vocab_size + spec.embed)


def _rnn_params(cell: str, input_size: int, hidden: int, layers: int, directions: int) -> int:
    # Per layer and direction, nn.RNNBase holds W_ih, W_hh and two biases per gate block.
    gates, total = GATES[cell] * hidden, 0
    for layer in range(layers):
        width = input_size if layer == 0 else hidden * directions
        total += directions * (gates * (width + hidden) + 2 * gates)
    return total


def parameter_count(spec: ModelSpec) -> int:
    """Parameters of the model ``spec`` describes, by arithmetic (nothing is built).

    Equal to ``sum(p.numel() for p in build_model(spec).parameters())``; the tests check it.

    Example::

        parameter_count(ModelSpec(task="classify", vocab_size=100, hidden=16))
    """
    h, out, memory = spec.hidden, spec.num_outputs, spec.hidden * spec.directions
    width = spec.embed if spec.vocab_size > 0 else spec.input_size
    total = embedding_params(spec)
    total += _rnn_params(spec.cell, width, h, spec.layers, spec.directions)
    if spec.task != "seq2seq":
        return total + memory * out + out
    bahdanau = attention_for(spec.task, spec.attention) == "bahdanau"
    total += out * spec.embed  # target embedding
    total += _rnn_params(spec.cell, spec.embed + (memory if bahdanau else 0), h, spec.layers, 1)
    # Bahdanau: query (no bias), key and score (no bias) projections; Luong: key, no bias.
    total += h * h + memory * h + h + h if bahdanau else memory * h
    total += (2 if spec.cell == "lstm" else 1) * (memory * h + h)  # bridges
    if not bahdanau:
        total += (memory + h) * h + h  # combine
    return total + ((h + memory) if bahdanau else h) * out + out


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
    # Optimizer steps in all, the one-cycle schedule fitted to them; None: the epochs decide.
    # A bound for a quick run on data too big for a whole epoch (e.g. shards of many GiB).
    max_steps: int | None = None

    def __post_init__(self) -> None:
        _check_positive(epochs=self.epochs, batch_size=self.batch_size, patience=self.patience)
        if self.max_steps is not None:
            _check_positive(max_steps=self.max_steps)
        if not 0 < self.lr < math.inf:  # also refuses NaN
            raise EdgeRNNError(f"learning rate must be positive and finite, got {self.lr}")
        if not 0 < self.clip_norm < math.inf:
            raise EdgeRNNError(f"clip norm must be positive and finite, got {self.clip_norm}")
        check_seed(self.seed)
