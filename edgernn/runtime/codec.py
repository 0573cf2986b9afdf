"""Inputs to arrays and outputs to answers, from a bundle manifest; numpy only.

Text becomes tokens by ``edgernn.text``, the same rules training used (torch-free, so a
device needs no torch): those the manifest records in ``input.text``, or for a version-1
manifest the legacy ones (``list(text)`` or ``str.split()``). The rest repeats the few lines
of ``edgernn.data`` inference needs: unknown tokens become ``<unk>``, features are
standardised with the training split's mean and std.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import EdgeRNNError
from edgernn.runtime.checks import over_limit
from edgernn.text import MAX_NFC_SHRINK, bundle_rules

UNK = ("unk", "error")  # what an unknown input token becomes: <unk>, or an error
UNK_ID = 1
SKIPPED_IDS = (0, 2)  # <pad> and <bos> never appear in decoded text; <unk> does (as Vocab)


class BundleCodec:
    """Encodes raw inputs and decodes outputs with one bundle's vocabularies and scaling.

    Every input is checked first: a text (str) or a list of str tokens for token models, a
    (steps, features) array of finite numbers for numeric ones, not empty, not blank, not
    longer than ``max_len``. Errors name the input's index.

    Args:
        manifest: the bundle manifest (checked by ``edgernn.bundle.schema``).
        unknown: ``unk`` maps tokens missing from the vocabulary to ``<unk>`` (as training
            and ``edgernn evaluate`` do); ``error`` refuses them.
        max_len: the most tokens or steps per input; default the manifest's ``input.max_len``.

    Example::

        ids, lengths = BundleCodec(manifest).encode(["good film", "dull"])
    """

    def __init__(self, manifest: dict, unknown: str = "unk", max_len: int | None = None):
        if unknown not in UNK:
            raise EdgeRNNError(f"unknown tokens: choose unk or error, not {unknown!r}")
        self.manifest, self.unknown = manifest, unknown
        self.input = manifest["input"]
        self.max_len = max_len or self.input["max_len"]
        self.stoi = {token: i for i, token in enumerate(manifest.get("vocab") or [])}
        self.rules = bundle_rules(self.input)  # None for numeric features

    def tokenize(self, text: str | list[str]) -> list[str]:
        """Tokens as the model was trained: a text split by the rules, or given tokens
        normalized (NFC, lowercase as the rules say) but never split again."""
        if not isinstance(text, str):
            return [self.rules.normalize_token(token) for token in text]
        return self.rules.tokenize(text)

    def ids(self, text: str | list[str], index: int = 0, blank_ok: bool = False) -> list[int]:
        """Token ids of input number ``index``; refuses non-text, empty, blank (unless
        ``blank_ok``, for streaming chunks), over-long and (if asked) unknown input."""
        if not self.stoi:
            raise EdgeRNNError("this model takes numeric features, not text")
        if not _is_text(text):
            got = type(text).__name__
            raise EdgeRNNError(f"input {index} must be a text (str) or a list of str, got {got}")
        # Refused before normalizing a giant text: NFC shrinks a text at most this much.
        if len(text) > MAX_NFC_SHRINK * self.max_len and self.rules.tokens == "char":
            raise over_limit(f"the length of input {index}", len(text), "max_len", self.max_len)
        tokens = self.tokenize(text)
        if not tokens or (not blank_ok and self.rules.is_blank(tokens)):
            raise EdgeRNNError(f"input {index} ({_short(text)}) is empty or blank: no tokens")
        if len(tokens) > self.max_len:
            raise over_limit(f"the length of input {index}", len(tokens), "max_len", self.max_len)
        missing = [token for token in tokens if token not in self.stoi]
        if missing and self.unknown == "error":
            raise EdgeRNNError(
                f"input {index}: unknown token {missing[0]!r}: not in the model's vocabulary"
            )
        return [self.stoi.get(token, UNK_ID) for token in tokens]

    def encode(self, texts: list, offset: int = 0, blank_ok: bool = False):
        """Token ids (N, T) zero-padded, and lengths (N,), for texts or token lists.

        ``offset`` is the index of ``texts[0]`` among all inputs, for the messages.
        """
        rows = [self.ids(text, offset + i, blank_ok) for i, text in enumerate(texts)]
        return _pad([np.asarray(row, dtype=np.int64) for row in rows], np.int64)

    def encode_features(self, sequences: list, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Scaled features (N, T, F) zero-padded, and lengths, from raw (T, F) arrays."""
        rows = [self._features(seq, offset + i) for i, seq in enumerate(sequences)]
        return _pad(rows, np.float32)

    def _features(self, sequence, index: int) -> np.ndarray:
        features = self.input["features"]
        try:
            row = np.asarray(sequence)
        except (ValueError, TypeError):  # ragged nested lists
            row = np.asarray(None)
        if (
            row.dtype.kind not in "biuf"
            or row.ndim != 2
            or row.shape[1] != features
            or not len(row)
        ):
            raise EdgeRNNError(
                f"input {index} must be (steps, {features}) numbers, got "
                f"{row.dtype} array of shape {row.shape}"
            )
        if len(row) > self.max_len:
            raise over_limit(f"the length of input {index}", len(row), "max_len", self.max_len)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = self.scale(row.astype(np.float64))
        if not np.isfinite(scaled).all():
            raise EdgeRNNError(f"input {index} holds NaN, infinite or out-of-range values")
        return scaled

    def encode_any(self, inputs: list, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``encode`` or ``encode_features``, whichever the model takes."""
        if self.input["type"] == "features":
            return self.encode_features(inputs, offset)
        return self.encode(inputs, offset)

    def encode_chunk(self, chunk) -> np.ndarray:
        """A streaming chunk -> the step graph's ``inputs``: a text becomes (1, T) ids, raw
        features (B, T, F) are scaled, and other arrays go as they are (``run`` checks them).
        """
        if isinstance(chunk, str):
            return self.encode([chunk], blank_ok=True)[0]
        try:
            array = np.asarray(chunk)
        except (ValueError, TypeError):  # ragged nested lists
            array = np.asarray(None)
        if array.ndim < 2 or array.dtype.kind not in "biuf":
            raise EdgeRNNError(
                "chunk must be a text, token ids (batch, time) or features (batch, time, "
                f"features), got a {array.dtype} array of shape {array.shape}"
            )
        if self.input["type"] == "features" and array.shape[2:] == (self.input["features"],):
            with np.errstate(over="ignore", invalid="ignore"):  # run() refuses what overflows
                return self.scale(array)
        return array

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Raw features -> the standardised features the graph takes (float32)."""
        norm = self.manifest["normalization"]
        return ((x - np.asarray(norm["x_mean"])) / np.asarray(norm["x_std"])).astype(np.float32)

    def denormalize(self, values: np.ndarray) -> np.ndarray:
        """Regression outputs -> the data's units."""
        norm = self.manifest["normalization"]
        return values * np.asarray(norm["y_std"], "f4") + np.asarray(norm["y_mean"], "f4")

    def text(self, ids: list[int], vocab_key: str = "target_vocab") -> str:
        """Generated ids -> text, joined as the tokens were split."""
        vocab = self.manifest[vocab_key]
        return self.rules.join.join(vocab[i] for i in ids if i not in SKIPPED_IDS)

    def answer(self, task: str, output: np.ndarray, item) -> dict:
        """One example's graph output -> the user-facing result of ``Runtime.predict``."""
        labels = self.manifest.get("labels")  # classify and tag have them (bundle_schema)
        if task == "classify":
            probs = np.exp(output - output.max())
            probs /= probs.sum()
            scores = {label: float(p) for label, p in zip(labels, probs, strict=True)}
            return {"label": labels[int(probs.argmax())], "probabilities": scores}
        if task == "tag":
            tokens = self.tokenize(item)
            return {
                "tokens": tokens,
                "tags": [labels[int(i)] for i in output[: len(tokens)].argmax(-1)],
            }
        return {"values": [float(v) for v in self.denormalize(output)]}


def _is_text(item) -> bool:
    if isinstance(item, str):
        return True
    return isinstance(item, list | tuple) and all(isinstance(token, str) for token in item)


def _short(text) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _pad(rows: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    if not rows:
        raise EdgeRNNError("no inputs to encode")
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    padded = np.zeros((len(rows), int(lengths.max(initial=1)), *rows[0].shape[1:]), dtype)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = row
    return padded, lengths
