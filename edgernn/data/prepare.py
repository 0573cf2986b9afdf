"""Turn raw splits into tensors: fit vocabularies, labels and scaling on train, encode every split.

Every encoded example is a pair ``(inputs, target)``:

- classify: token ids (T,) or floats (T, F), and a class id
- regress: floats (T, F), and normalized floats (K,)
- tag / lm: token ids (T,), and one target id per step (the next token for lm)
- seq2seq: source ids (S,), and target ids framed as <bos> ... <eos>
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from edgernn.data.meta import DataMeta, fit_normalization, normalize_x, normalize_y, tokenize
from edgernn.data.raw import SPLITS, RawData
from edgernn.data.vocab import BOS_ID, EOS_ID, Vocab
from edgernn.errors import EdgeRNNError

DEFAULT_TOKENS = {"classify": "word", "lm": "char", "seq2seq": "char"}
LM_WINDOW = 64  # characters (or words) per language-model training sequence


@dataclass
class TaskData:
    meta: DataMeta
    splits: dict[str, list[tuple[torch.Tensor, torch.Tensor]]]


def _is_numeric(raw: RawData) -> bool:
    return raw.task == "regress" or isinstance(raw.train[0][0], np.ndarray)


def fit_meta(raw: RawData, tokens: str | None = None) -> DataMeta:
    """Learn vocabularies, labels and normalization from the training split only."""
    return replace(_fit_meta(raw, tokens), source=raw.source)


def _fit_meta(raw: RawData, tokens: str | None) -> DataMeta:
    task, train = raw.task, raw.train
    if _is_numeric(raw):
        ys = [y for _, y in train] if task == "regress" else None
        norm = fit_normalization([x for x, _ in train], ys)
        labels = sorted({y for _, y in train}) if task == "classify" else None
        return DataMeta(task, None, labels=labels, norm=norm, input_size=train[0][0].shape[1])
    if task == "tag":
        vocab = Vocab.build(tokens for tokens, _ in train)
        labels = sorted({tag for _, tags in train for tag in tags})
        return DataMeta(task, None, vocab=vocab.itos, labels=labels)
    tokens = tokens or raw.tokens or DEFAULT_TOKENS[task]
    if task == "lm":
        return DataMeta(task, tokens, vocab=Vocab.build(tokenize(d, tokens) for d in train).itos)
    if task == "seq2seq":
        source = Vocab.build(tokenize(s, tokens) for s, _ in train)
        target = Vocab.build(tokenize(t, tokens) for _, t in train)
        return DataMeta(task, tokens, vocab=source.itos, tgt_vocab=target.itos)
    vocab = Vocab.build(tokenize(text, tokens) for text, _ in train)
    return DataMeta(task, tokens, vocab=vocab.itos, labels=sorted({y for _, y in train}))


def encode(raw: RawData, meta: DataMeta, max_len: int, lm_window: int = LM_WINDOW) -> TaskData:
    """Encode every split with ``meta``; reject sequences longer than ``max_len``.

    Args:
        raw: all three splits, as ``load_raw`` returns them.
        meta: from ``fit_meta`` on the same data, or from a checkpoint.
        max_len: the longest input sequence the model accepts.
        lm_window: tokens per language-model training sequence (capped at ``max_len``).

    Returns:
        TaskData with the encoded train, valid and test splits.
    """
    codec = Codec(meta)
    splits = {}
    for name in SPLITS:
        examples = raw.split(name)
        if raw.task == "lm":
            splits[name] = _encode_lm(examples, codec, min(lm_window, max_len))
        else:
            splits[name] = [codec.encode(example, name) for example in examples]
        _check_lengths(splits[name], name, max_len)
    return TaskData(meta, splits)


class Codec:
    """Encodes raw examples with the vocabularies and labels of one ``DataMeta``."""

    def __init__(self, meta: DataMeta):
        self.meta = meta
        self.vocab = Vocab(meta.vocab) if meta.vocab else None
        self.tgt_vocab = Vocab(meta.tgt_vocab) if meta.tgt_vocab else None
        self.label_ids = {label: i for i, label in enumerate(meta.labels or [])}

    def encode(self, example: tuple, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, target = example
        task = self.meta.task
        if task == "seq2seq":
            framed = [BOS_ID, *self.tgt_vocab.encode(self.tokenize(target)), EOS_ID]
            return self.token_ids(inputs), torch.tensor(framed)
        if task == "tag":
            tags = [self.label_id(tag, split) for tag in target]
            return self._ids(self.vocab.encode(inputs), inputs), torch.tensor(tags)
        if isinstance(inputs, np.ndarray):
            x = torch.from_numpy(normalize_x(inputs, self.meta.norm))
        else:
            x = self.token_ids(inputs)
        if task == "regress":
            return x, torch.from_numpy(normalize_y(target, self.meta.norm))
        return x, torch.tensor(self.label_id(target, split))

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text, self.meta.tokens)

    def token_ids(self, text: str) -> torch.Tensor:
        return self._ids(self.vocab.encode(self.tokenize(text)), text)

    @staticmethod
    def _ids(ids: list[int], original: object) -> torch.Tensor:
        if not ids:
            raise EdgeRNNError(f"input {original!r} has no tokens; remove empty examples")
        return torch.tensor(ids, dtype=torch.long)

    def label_id(self, label: str, split: str) -> int:
        if label not in self.label_ids:
            known = ", ".join(list(self.label_ids)[:20])
            raise EdgeRNNError(
                f"label {label!r} in the {split} split never occurs in the training data "
                f"(known: {known}); add training examples for it"
            )
        return self.label_ids[label]


def _encode_lm(documents: list[str], codec: Codec, window: int) -> list:
    # Documents are joined into one stream and cut into non-overlapping windows; each
    # window's target is the same stream shifted by one token.
    stream = [i for doc in documents for i in codec.vocab.encode(codec.tokenize(doc))]
    ids = torch.tensor(stream, dtype=torch.long)
    windows = []
    for start in range(0, len(ids) - 1, window):
        piece = ids[start : start + window + 1]
        if len(piece) >= 2:
            windows.append((piece[:-1], piece[1:]))
    if not windows:
        raise EdgeRNNError("the language-model text is too short: it needs at least 2 tokens")
    return windows


def _check_lengths(examples: list, split: str, max_len: int) -> None:
    for index, (inputs, _) in enumerate(examples):
        if len(inputs) > max_len:
            raise EdgeRNNError(
                f"{split} example {index} has {len(inputs)} steps, more than the model's "
                f"max length {max_len}; raise --max-len or shorten the input"
            )
