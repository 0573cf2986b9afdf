"""A user's token ids in edgernn's vocabulary layout (ids 0-3 reserved), and their labels.

edgernn's data, runtime and bundles rely on ``<pad> <unk> <bos> <eos>`` being ids 0-3. A
user's vocabulary rarely is (``word_to_idx`` with ``<unk>`` = 0, no ``<bos>``). Rather than
teach every layer a second layout, adoption permutes the embedding rows (and a language
model's output rows) into edgernn's order: the user's own special tokens, recognised by name
or by the embedding's ``padding_idx``, take the reserved ids; every other token keeps its
relative order after them. The model then gives the same outputs for the same text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.data.vocab import SPECIALS
from edgernn.errors import EdgeRNNError

# Spellings of the reserved tokens in common vocabularies, by edgernn id.
SPECIAL_NAMES = (
    {"<pad>", "[pad]", "<blank>", "_pad_"},
    {"<unk>", "[unk]", "<oov>", "_unk_"},
    {"<bos>", "<s>", "<sos>", "<start>", "[cls]"},
    {"<eos>", "</s>", "<end>", "[sep]"},
)
# Keys of a dict checkpoint that hold a vocabulary or labels, most specific first.
VOCAB_KEYS = ("word_to_idx", "word2idx", "stoi", "char_to_idx", "char2idx", "vocab", "token_to_id")
VOCAB_KEYS += ("itos", "idx_to_word", "idx2word", "idx_to_char")  # lists of tokens by id
LABEL_KEYS = ("labels", "label_to_idx", "label2idx", "tag_to_ix", "tag_to_idx", "tag2idx")
LABEL_KEYS += ("idx_to_label", "classes", "tags")


@dataclass(frozen=True)
class TokenMap:
    """edgernn's vocabulary for a user's embedding table, and where each row comes from."""

    vocab: list[str]  # edgernn order: the four reserved tokens, then the user's
    source_ids: list[int | None]  # per edgernn id: the user's id, None for an added token

    def lookup(self) -> np.ndarray:
        """``table[user_id]`` is the edgernn id of that token."""
        table = np.zeros(max(i for i in self.source_ids if i is not None) + 1, dtype=np.int64)
        for edgernn_id, user_id in enumerate(self.source_ids):
            if user_id is not None:
                table[user_id] = edgernn_id
        return table


def token_map(
    user_vocab: Sequence[str] | Mapping[str, int] | None, rows: int, padding_idx: int | None
) -> TokenMap:
    """Map ``rows`` user ids (the embedding's size) into edgernn's layout.

    Args:
        user_vocab: token -> id (``word_to_idx``), or tokens by id; None names ids ``<id N>``.
        rows: the embedding's ``num_embeddings``.
        padding_idx: the embedding's ``padding_idx``, taken as ``<pad>`` when no token is.
    """
    tokens = _tokens_by_id(user_vocab, rows)
    reserved: list[int | None] = [None] * len(SPECIALS)
    for user_id, token in enumerate(tokens):
        for slot, names in enumerate(SPECIAL_NAMES):
            if token.lower() in names and reserved[slot] is None:
                reserved[slot] = user_id
    if reserved[0] is None and padding_idx is not None and padding_idx not in reserved:
        reserved[0] = padding_idx
    rest = [user_id for user_id in range(rows) if user_id not in reserved]
    vocab = list(SPECIALS) + [tokens[user_id] for user_id in rest]
    if len(set(vocab)) != len(vocab):
        clash = sorted({token for token in vocab if vocab.count(token) > 1})[:3]
        raise EdgeRNNError(f"the vocabulary names tokens twice or as reserved ones: {clash}")
    return TokenMap(vocab, reserved + rest)


def _tokens_by_id(user_vocab, rows: int) -> list[str]:
    tokens = [f"<id {i}>" for i in range(rows)]
    if user_vocab is None:
        return tokens
    if isinstance(user_vocab, Mapping) and all(isinstance(k, int) for k in user_vocab):
        user_vocab = {token: user_id for user_id, token in user_vocab.items()}  # id -> token
    pairs = user_vocab.items() if isinstance(user_vocab, Mapping) else _enumerated(user_vocab)
    for token, user_id in pairs:
        if not isinstance(user_id, int) or not 0 <= user_id < rows:
            raise EdgeRNNError(
                f"the vocabulary maps {token!r} to {user_id!r}, outside the model's "
                f"embedding of {rows} rows: is it the vocabulary this model was trained with?"
            )
        tokens[user_id] = str(token)
    return tokens


def _enumerated(tokens: Sequence[str]):
    return ((token, user_id) for user_id, token in enumerate(tokens))


def labels_list(labels: Sequence[str] | Mapping[str, int] | None, count: int) -> list[str]:
    """Class or tag names in output order; ``0``, ``1``, ... when the user gave none."""
    if labels is None:
        return [str(i) for i in range(count)]
    if isinstance(labels, Mapping):
        if all(isinstance(key, int) for key in labels):  # idx_to_label
            labels = {str(name): index for index, name in labels.items()}
        ordered = sorted(labels.items(), key=lambda item: item[1])
        if [index for _, index in ordered] != list(range(count)):
            raise EdgeRNNError(
                f"the labels map to ids {[index for _, index in ordered][:8]}, but the model "
                f"has {count} outputs: give one label per output, ids 0..{count - 1}"
            )
        return [str(name) for name, _ in ordered]
    if len(labels) != count:
        raise EdgeRNNError(f"{len(labels)} labels for a model with {count} outputs")
    return [str(name) for name in labels]


def read_json_mapping(path: str | Path, what: str) -> dict | list:
    """A ``--vocab`` / ``--labels`` JSON file: an object (token -> id) or a list by id."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise EdgeRNNError(f"--{what} {path}: not a readable JSON file ({error})") from None
    if not isinstance(value, dict | list):
        raise EdgeRNNError(f"--{what} {path}: must hold a JSON object or list")
    return value


def find_in_extras(extras: Mapping, keys: tuple[str, ...]):
    """The first of ``keys`` that a dict checkpoint holds (vocabulary or labels), or None."""
    for key in keys:
        if isinstance(extras.get(key), dict | list | tuple):
            return extras[key]
    return None
