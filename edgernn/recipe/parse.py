"""TOML recipes (``pipelines/*.toml``): a whole train -> compress -> bundle run in one file.

A recipe has four sections; every key is optional except ``[data] source`` and ``task``::

    [data]      source, task, tokens, unicode, lowercase, split_punct
    [teacher]   cell, hidden, layers, bidirectional, embed, attention, pooling, dropout,
                max_len, epochs, batch_size, lr, patience, seed -- or checkpoint = "path.pt"
    [compress]  the ``edgernn compress`` flags with underscores (``CompressOptions``)
    [bench]     batch_sizes, seq_lens, threads, min_time_s

Unknown sections or keys and values of the wrong type are one ``EdgeRNNError`` that names the
file, the section and the key.
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from edgernn.compress.config import BundleReportConfig, CompressOptions
from edgernn.config import (
    ATTENTIONS,
    CELLS,
    POOLINGS,
    TASKS,
    ModelSpec,
    TrainConfig,
    attention_for,
)
from edgernn.errors import EdgeRNNError
from edgernn.paths import data_path


@dataclass(frozen=True)
class DataSection:
    """What to learn from: a DATA argument (see DESIGN.md) and its task."""

    source: str
    task: str
    tokens: str | None = None  # char|word for text; None: the task's or dataset's default
    # As edgernn train's --unicode, --lowercase, --split-punct; None: the task's default.
    unicode: str | None = None  # nfc | none
    lowercase: bool | None = None
    split_punct: bool | None = None

    def __post_init__(self) -> None:
        _choice("task", self.task, TASKS)
        if self.tokens is not None:
            _choice("tokens", self.tokens, ("char", "word"))
        if self.unicode is not None:
            _choice("unicode", self.unicode, ("nfc", "none"))

    def text_choices(self) -> dict:
        """The tokenization choices, as ``edgernn.train.train(text=...)`` takes them."""
        return {
            "unicode": self.unicode,
            "lowercase": self.lowercase,
            "split_punctuation": self.split_punct,
        }


@dataclass(frozen=True)
class TeacherSection:
    """The full-precision teacher: trained from these settings, or an existing checkpoint.

    Keys and defaults are ``edgernn train``'s: ``ModelSpec``'s and ``TrainConfig``'s.
    """

    checkpoint: str | None = None  # an edgernn checkpoint; relative to the recipe's folder
    cell: str = ModelSpec.cell
    hidden: int = ModelSpec.hidden
    layers: int = ModelSpec.layers
    bidirectional: bool = ModelSpec.bidirectional
    embed: int = ModelSpec.embed
    attention: str | None = ModelSpec.attention  # seq2seq only; None: DEFAULT_ATTENTION
    pooling: str = ModelSpec.pooling
    dropout: float = ModelSpec.dropout
    max_len: int = ModelSpec.max_len
    epochs: int = TrainConfig.epochs  # upper bound; early stopping on the valid split ends sooner
    batch_size: int = TrainConfig.batch_size
    lr: float = TrainConfig.lr
    patience: int = TrainConfig.patience
    seed: int = TrainConfig.seed

    def __post_init__(self) -> None:
        _choice("cell", self.cell, CELLS)
        _choice("pooling", self.pooling, POOLINGS)
        if self.attention is not None:
            _choice("attention", self.attention, ATTENTIONS)
        self.train_config()  # validates epochs, lr, ...

    def model_choices(self) -> dict:
        """The ``ModelSpec`` fields, as ``edgernn.train.train(**choices)`` takes them."""
        names = ("cell", "hidden", "layers", "bidirectional", "embed", "attention")
        return {name: getattr(self, name) for name in (*names, "pooling", "dropout", "max_len")}

    def train_config(self, progress: bool = True) -> TrainConfig:
        keys = ("epochs", "batch_size", "lr", "patience", "seed")
        return TrainConfig(**{key: getattr(self, key) for key in keys}, progress=progress)


# [compress]: the ``edgernn compress`` flags with underscores, their defaults the command's.
CompressSection = CompressOptions


@dataclass(frozen=True)
class BenchSection:
    """The latency grid of the final report (``BundleReportConfig`` without its progress bar)."""

    batch_sizes: tuple[int, ...] = BundleReportConfig.batch_sizes
    seq_lens: tuple[int, ...] = BundleReportConfig.seq_lens
    threads: tuple[int, ...] = BundleReportConfig.threads
    min_time_s: float = BundleReportConfig.min_time_s  # per grid point

    def __post_init__(self) -> None:
        for name in ("batch_sizes", "seq_lens", "threads"):
            values = getattr(self, name)
            if not values or min(values) < 1:
                raise EdgeRNNError(f"{name} must be a non-empty list of integers >= 1")
        if not (self.min_time_s >= 0 and math.isfinite(self.min_time_s)):
            raise EdgeRNNError(f"min_time_s must be a number >= 0, got {self.min_time_s}")

    def report_config(self, progress: bool = True) -> BundleReportConfig:
        """The ``BundleReportConfig`` of this grid."""
        return BundleReportConfig(**asdict(self), progress=progress)


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe; ``name`` is the file's stem (the default output folder's name)."""

    data: DataSection
    teacher: TeacherSection = field(default_factory=TeacherSection)
    compress: CompressSection = field(default_factory=CompressSection)
    bench: BenchSection = field(default_factory=BenchSection)
    name: str = "recipe"

    def smoke(self, data: str) -> Recipe:
        """The same recipe shrunk to seconds: other ``data`` of the same task, tiny sizes.

        Tests run every recipe end to end with this; the architecture choices (cell, layers,
        direction, attention) and the compression stages stay as the recipe says.
        """
        return replace(
            self,
            data=replace(self.data, source=str(data)),
            teacher=replace(self.teacher, hidden=8, embed=8, epochs=1, batch_size=16),
            compress=replace(self.compress, student_hidden=None, epochs=1),
            bench=BenchSection(batch_sizes=(1,), seq_lens=(8,), min_time_s=0.0),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def inputs(self) -> list[tuple[str, str | None]]:
        """``(key, path)`` of the files the recipe reads: its data and a given teacher."""
        data = data_path(self.data.source)
        return [("[data] source", data), ("[teacher] checkpoint", self.teacher.checkpoint)]


SECTIONS = {
    "data": DataSection,
    "teacher": TeacherSection,
    "compress": CompressSection,
    "bench": BenchSection,
}


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a TOML recipe.

    Args:
        path: the ``.toml`` file.

    Returns:
        The ``Recipe``; a relative ``[teacher] checkpoint`` is resolved against the file's folder.

    Raises:
        EdgeRNNError: missing file, invalid TOML (with its line), an unknown section or key, or a
            bad value; the message names the file, the section and the key.

    Example::

        recipe = load_recipe("pipelines/sentiment_bilstm.toml")
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeRNNError(f"{path}: no such recipe file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise EdgeRNNError(f"{path}: not valid TOML: {error}") from None
    return parse_recipe(raw, path)


def parse_recipe(raw: dict, path: Path) -> Recipe:
    """A ``Recipe`` from already-parsed TOML; ``path`` names the file in errors."""
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise EdgeRNNError(
            f"{path.name}: unknown section [{unknown[0]}]; known: {', '.join(SECTIONS)}"
        )
    if "data" not in raw:
        raise EdgeRNNError(f"{path.name}: missing section [data] (source and task)")
    sections = {name: _section(name, raw.get(name, {}), path) for name in SECTIONS}
    recipe = Recipe(**sections, name=path.stem)
    checkpoint = recipe.teacher.checkpoint
    if checkpoint is not None:
        resolved = str((path.parent / checkpoint).resolve())
        recipe = replace(recipe, teacher=replace(recipe.teacher, checkpoint=resolved))
    else:
        _check_model(recipe, path)
    return recipe


def _section(name: str, values: object, path: Path):
    cls = SECTIONS[name]
    where = f"{path.name}: [{name}]"
    if not isinstance(values, dict):
        raise EdgeRNNError(f"{where} must be a table of key = value lines")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    checked = {}
    for key, value in values.items():
        if key not in hints:
            raise EdgeRNNError(f"{where} unknown key {key!r}; known: {', '.join(known)}")
        checked[key] = _typed(f"{where} {key}", value, hints[key])
    required = [f.name for f in fields(cls) if f.default is MISSING]
    missing = [name for name in required if name not in checked]
    if missing:
        raise EdgeRNNError(f"{where} missing key {missing[0]!r}; required: {', '.join(required)}")
    try:
        return cls(**checked)
    except EdgeRNNError as error:
        raise EdgeRNNError(f"{where} {error}") from None


def _typed(where: str, value: object, hint: object) -> object:
    """``value`` checked against a field's type hint; TOML arrays become tuples."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None):
            continue
        if typing.get_origin(kind) is tuple and isinstance(value, list):
            if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                return tuple(value)
        elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        elif kind in (int, str, bool) and _exactly(value, kind):
            return value
    expected = " or ".join(_describe(kind) for kind in allowed if kind is not type(None))
    raise EdgeRNNError(f"{where} must be {expected}, got {value!r}")


def _exactly(value: object, kind: type) -> bool:
    # bool subclasses int, but TOML's true is not a number of layers.
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def _describe(kind: object) -> str:
    if typing.get_origin(kind) is tuple:
        return "a list of integers"
    return {str: "a string", bool: "true or false", int: "an integer", float: "a number"}[kind]


def _check_model(recipe: Recipe, path: Path) -> None:
    # Impossible architectures (a bidirectional language model, attention outside seq2seq)
    # fail here, before any data is read; the sizes are placeholders.
    choices = recipe.teacher.model_choices()
    choices["attention"] = attention_for(recipe.data.task, choices["attention"])
    try:
        ModelSpec(task=recipe.data.task, vocab_size=1, num_outputs=1, **choices)
    except EdgeRNNError as error:
        raise EdgeRNNError(f"{path.name}: [teacher] {error}") from None


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise EdgeRNNError(f"{name} {value!r} is not one of {', '.join(choices)}")
