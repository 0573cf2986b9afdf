"""What a MODEL argument becomes: an edgernn checkpoint, adopted or as it is.

An edgernn checkpoint loads as it is. A user's own model is loaded (``edgernn.own.load``),
then adopted into an edgernn model when its shape is one edgernn rebuilds (``adopt``, proved
by parity); then every stage works on it as on edgernn's own checkpoints. A model that cannot
be adopted stays an ``OwnModel`` (export and int8 only), with the reason kept for messages;
with data and a task, ``black_box`` makes it a teacher to distill from.

Example::

    resolved = resolve_model("mine.pt", OwnFlags(example="inputs.npz", task="classify"))
    resolved.checkpoint       # None when not adopted: see resolved.not_adopted
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgernn.checkpoint import Checkpoint, save_checkpoint
from edgernn.errors import EdgeRNNError
from edgernn.own.adopt import Adoption, adopt
from edgernn.own.load import OwnModel, load_with_example
from edgernn.own.parts import NotAdoptable
from edgernn.own.seq2seq import Parts, find_parts
from edgernn.own.vocab import LABEL_KEYS, VOCAB_KEYS, find_in_extras, read_json_mapping


@dataclass(frozen=True)
class OwnFlags:
    """How to load and read a user's own model (the CLI's own-model flags, by name)."""

    trust_pickle: bool = False
    example: str | None = None  # inputs.npz keyed by forward's argument names
    model_file: str | None = None  # the .py defining the classes (TorchServe's model file)
    model_class: str | None = None  # the class that builds a state dict
    model_args: dict | None = None  # its constructor arguments
    task: str | None = None  # classify | regress | tag | lm; None: inferred from outputs
    vocab: str | None = None  # word_to_idx.json (token -> id) or a JSON list by id
    labels: str | None = None  # labels.json: names in output order, or name -> id
    tokens: str | None = None  # char | word; None: inferred from the vocabulary
    adopt: bool = True  # False keeps the model as it is (a "custom" bundle)
    encoder: str | None = None  # a seq2seq's encoder submodule; None: "encoder" if present
    decoder: str | None = None  # its one-step decoder submodule; None: "decoder" if present


@dataclass(frozen=True)
class Resolved:
    """The model to work on, and how it got there."""

    model: Checkpoint | OwnModel  # an edgernn checkpoint (own or adopted), or the own module
    adoption: Adoption | None = None
    not_adopted: str | None = None  # why an own model stayed as it is
    seq2seq: Parts | None = None  # a user's seq2seq, exported by parts (edgernn.own.seq2seq)

    @property
    def checkpoint(self) -> Checkpoint | None:
        return self.model if isinstance(self.model, Checkpoint) else None


def resolve_model(path: str, flags: OwnFlags) -> Resolved:
    """Load ``path``; adopt it when it is a user's model that edgernn can rebuild.

    Raises:
        EdgeRNNError: the model cannot be loaded, or an own-model flag was given for an
            edgernn checkpoint.
    """
    code = {key: getattr(flags, key) for key in ("model_file", "model_class", "model_args")}
    model = load_with_example(path, flags.trust_pickle, flags.example, **code)
    if isinstance(model, Checkpoint):
        _refuse_reading_flags(flags, path)
        return Resolved(model)
    if not flags.adopt:
        return Resolved(model, not_adopted="--no-adopt was given")
    parts = find_parts(model.module, flags.encoder, flags.decoder)
    if parts is not None:
        why = f"{path} is a seq2seq model ({' + '.join(parts.names)}), exported by parts"
        return Resolved(model, not_adopted=why, seq2seq=parts)
    vocab = _mapping(flags.vocab, "vocab", model.extras, VOCAB_KEYS)
    labels = _mapping(flags.labels, "labels", model.extras, LABEL_KEYS)
    try:
        adoption = adopt(model, flags.task, vocab, labels, flags.tokens)
    except NotAdoptable as reason:
        return Resolved(model, not_adopted=f"{path} is not adopted: {reason}")
    return Resolved(adoption.checkpoint, adoption)


def black_box(resolved: Resolved, flags: OwnFlags, axes: dict | None = None) -> Resolved:
    """``resolved``'s own model, not adopted, as a black-box teacher (``edgernn.own.blackbox``).

    Raises:
        EdgeRNNError: as ``black_box_checkpoint``.
    """
    from edgernn.own.blackbox import black_box_checkpoint

    model = resolved.model
    vocab = _mapping(flags.vocab, "vocab", model.extras, VOCAB_KEYS)
    labels = _mapping(flags.labels, "labels", model.extras, LABEL_KEYS)
    teacher = black_box_checkpoint(
        model, flags.task, vocab, labels, flags.tokens, axes, resolved.not_adopted or ""
    )
    return Resolved(teacher, not_adopted=resolved.not_adopted)


def _mapping(path: str | None, what: str, extras: dict, keys: tuple[str, ...]):
    if path is not None:
        return read_json_mapping(path, what)
    return find_in_extras(extras, keys)


def _refuse_reading_flags(flags: OwnFlags, path: str) -> None:
    reading = ("task", "vocab", "labels", "tokens", "encoder", "decoder")
    given = [f"--{name}" for name in reading if getattr(flags, name)]
    if given:
        raise EdgeRNNError(
            f"{', '.join(given)} are for your own model; {path} is an edgernn checkpoint, which "
            "records its task, vocabulary and labels: drop them"
        )


@contextmanager
def teacher_file(resolved: Resolved, path: str) -> Iterator[str]:
    """A checkpoint file of the model to time as the teacher: ``path`` itself, or, for an
    adopted model, the adopted checkpoint saved in a temporary folder (the bench workers load
    edgernn checkpoints; the adopted model computes what the user's does, by parity)."""
    if resolved.adoption is None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="edgernn-adopted-") as folder:
        yield str(save_checkpoint(resolved.adoption.checkpoint, Path(folder) / Path(path).name))
