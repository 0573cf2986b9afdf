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

from edgernn.data.meta import DataMeta, fit_normalization, normalize_x, normalize_y
from edgernn.data.raw import SPLITS, RawData
from edgernn.data.vocab import BOS_ID, EOS_ID, Vocab
from edgernn.errors import EdgeRNNError
from edgernn.text import TextRules

DEFAULT_TOKENS = {"classify": "word", "lm": "char", "seq2seq": "char"}
LM_WINDOW = 64  # characters (or words) per language-model training sequence


@dataclass
class TaskData:
    meta: DataMeta
    splits: dict[str, list[tuple[torch.Tensor, torch.Tensor]]]


def _is_numeric(raw: RawData) -> bool:
    return raw.task == "regress" or isinstance(raw.train[0][0], np.ndarray)


def fit_meta(raw: RawData, tokens: str | None = None, text: dict | None = None) -> DataMeta:
    """Learn vocabularies, labels and normalization from the training split only.

    Args:
        raw: all three splits.
        tokens: ``char`` or ``word``; None: the dataset's or the task's default.
        text: tokenization choices, each key optional (None: the task's default, see
            ``text_rules``): ``unicode`` (``nfc`` or ``none``), ``lowercase``,
            ``split_punctuation``.
    """
    return replace(_fit_meta(raw, tokens, text or {}), source=raw.source)


def text_rules(
    task: str,
    tokens: str,
    unicode: str | None = None,
    lowercase: bool | None = None,
    split_punctuation: bool | None = None,
) -> TextRules:
    """The rules a new model is trained with: the user's choices, else the task's defaults.

    Defaults: NFC always; word tokens are lowercased and split at punctuation, except for
    tag, whose case is kept (capitals are the main cue for a named entity); char tokens keep
    their case (a language model generates it).
    """
    if unicode not in (None, "nfc", "none"):
        raise EdgeRNNError(f"unicode normalization must be nfc or none, got {unicode!r}")
    char = tokens == "char"  # TextRules refuses punctuation splitting for char tokens
    return TextRules(
        tokens,
        unicode=None if unicode == "none" else "NFC",
        lowercase=(not char and task != "tag") if lowercase is None else lowercase,
        split_punctuation=not char if split_punctuation is None else split_punctuation,
    )


def _fit_meta(raw: RawData, tokens: str | None, choices: dict) -> DataMeta:
    task, train = raw.task, raw.train
    if _is_numeric(raw):
        ys = [y for _, y in train] if task == "regress" else None
        norm = fit_normalization([x for x, _ in train], ys)
        labels = sorted({y for _, y in train}) if task == "classify" else None
        return DataMeta(task, None, labels=labels, norm=norm, input_size=train[0][0].shape[1])
    if task == "tag":  # already split into words: normalized, never split again
        rules = text_rules(task, "word", **choices)
        vocab = Vocab.build([rules.normalize_token(t) for t in words] for words, _ in train)
        labels = sorted({tag for _, tags in train for tag in tags})
        return DataMeta(task, None, vocab=vocab.itos, labels=labels, text=rules.to_manifest())
    tokens = tokens or raw.tokens or DEFAULT_TOKENS[task]
    rules = text_rules(task, tokens, **choices)
    meta = DataMeta(task, tokens, text=rules.to_manifest())
    if task == "lm":
        return replace(meta, vocab=Vocab.build(rules.tokenize(d) for d in train).itos)
    if task == "seq2seq":
        source = Vocab.build(rules.tokenize(s) for s, _ in train)
        target = Vocab.build(rules.tokenize(t) for _, t in train)
        return replace(meta, vocab=source.itos, tgt_vocab=target.itos)
    vocab = Vocab.build(rules.tokenize(text) for text, _ in train)
    return replace(meta, vocab=vocab.itos, labels=sorted({y for _, y in train}))


def encode(raw: RawData, meta: DataMeta, max_len: int, lm_window: int = LM_WINDOW) -> TaskData:
    """Encode every split with ``meta``; reject sequences longer than ``max_len``.

    Inputs are never truncated: an example longer than ``max_len`` (``--max-len``, default
    512) is an error naming the split and quoting the example. A label or tag that never
    occurs in train is an error too, as are splits whose format, feature count or number
    of regression targets differs from train's. Tokens unseen in train become ``<unk>``.

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
        try:
            splits[name] = _encode_split(raw.split(name), name, codec, max_len, lm_window)
        except EdgeRNNError as error:
            # Codec knows examples, not files: name the data here, as every reader does.
            raise EdgeRNNError(f"{raw.source or 'data'}: {error}") from None
    return TaskData(meta, splits)


def _encode_split(examples: list, name: str, codec: Codec, max_len: int, lm_window: int) -> list:
    if codec.meta.task == "lm":  # windows are cut to max_len, so never too long
        return _encode_lm(examples, codec, min(lm_window, max_len), name)
    encoded = [codec.encode(example, name) for example in examples]
    _check_lengths(encoded, examples, name, max_len)
    return encoded


class Codec:
    """Encodes raw examples with the vocabularies and labels of one ``DataMeta``."""

    def __init__(self, meta: DataMeta):
        self.meta = meta
        self.vocab = Vocab(meta.vocab) if meta.vocab else None
        self.tgt_vocab = Vocab(meta.tgt_vocab) if meta.tgt_vocab else None
        self.label_ids = {label: i for i, label in enumerate(meta.labels or [])}
        self.rules = meta.text_rules()

    def encode(self, example: tuple, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, target = example
        task = self.meta.task
        if task == "seq2seq":
            framed = [BOS_ID, *self.tgt_vocab.encode(self.tokenize(target)), EOS_ID]
            return self.token_ids(inputs), torch.tensor(framed)
        if task == "tag":
            tags = [self.label_id(tag, split) for tag in target]
            words = [self.rules.normalize_token(word) for word in inputs]
            return self._ids(self.vocab.encode(words), inputs), torch.tensor(tags)
        if self.meta.norm is not None:
            x = torch.from_numpy(normalize_x(self._features(inputs, split), self.meta.norm))
        else:
            x = self.token_ids(self._text(inputs, split))
        if task == "regress":
            return x, torch.from_numpy(normalize_y(self._targets(target, split), self.meta.norm))
        return x, torch.tensor(self.label_id(target, split))

    def _features(self, inputs: object, split: str) -> np.ndarray:
        # Splits may come from different files (train.npz with valid.csv, or another
        # feature count): checked here, before numpy broadcasts or fails obscurely.
        size = self.meta.input_size
        if not isinstance(inputs, np.ndarray):
            raise EdgeRNNError(
                f"the {split} split holds text but the model takes numeric sequences; "
                "give every split as .npz"
            )
        if inputs.shape[1] != size:
            raise EdgeRNNError(
                f"the {split} split has {inputs.shape[1]} features per step but the model "
                f"takes {size}; give every split the same features"
            )
        return inputs

    def _text(self, inputs: object, split: str) -> str:
        if not isinstance(inputs, str):
            raise EdgeRNNError(
                f"the {split} split holds numeric sequences but the model takes text; "
                "give every split in a text format"
            )
        return inputs

    def _targets(self, target: np.ndarray, split: str) -> np.ndarray:
        size = len(self.meta.norm["y_mean"])
        if target.shape != (size,):
            raise EdgeRNNError(
                f"the {split} split has {target.size} regression targets per example but the "
                f"model predicts {size}; give every split the same y columns"
            )
        return target

    def tokenize(self, text: str) -> list[str]:
        return self.rules.tokenize(text)

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


def _encode_lm(documents: list[str], codec: Codec, window: int, split: str) -> list:
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
        raise EdgeRNNError(
            f"the {split} text is too short: it needs at least 2 {codec.meta.tokens} tokens; "
            "give more text or the split files"
        )
    return windows


def _check_lengths(encoded: list, examples: list, split: str, max_len: int) -> None:
    for index, ((inputs, _), (original, _)) in enumerate(zip(encoded, examples, strict=True)):
        if len(inputs) > max_len:
            raise EdgeRNNError(
                f"{split} example {index}{_excerpt(original)} has {len(inputs)} steps, more "
                f"than the model's max length {max_len}; raise --max-len or shorten the input"
            )


def _excerpt(original: object) -> str:
    # Carved splits are shuffled, so an index alone would not find the line in the file.
    text = " ".join(original) if isinstance(original, list) else original
    return f" ({text[:30]!r}...)" if isinstance(text, str) else ""
