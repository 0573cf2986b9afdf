"""Inputs to arrays and outputs to answers, from a bundle manifest; numpy only.

Repeats the few lines of ``edgernn.data`` that inference needs (tokenization, vocabulary
lookup, feature scaling) because that package imports torch, which a device must not need.
The rules are the same: ``char`` splits characters, ``word`` and pre-tokenized text split
on whitespace, unknown tokens become ``<unk>``, features are standardised with the training
split's mean and std.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import EdgeRNNError

UNK_ID = 1
SKIPPED_IDS = (0, 2)  # <pad> and <bos> never appear in decoded text; <unk> does (as Vocab)


class BundleCodec:
    """Encodes raw inputs and decodes outputs with one bundle's vocabularies and scaling.

    Args:
        manifest: the bundle manifest.
        unknown: ``unk`` maps tokens missing from the vocabulary to ``<unk>`` (as training
            and ``edgernn evaluate`` do); ``error`` refuses them.

    Example::

        ids, lengths = BundleCodec(manifest).encode(["good film", "dull"])
    """

    def __init__(self, manifest: dict, unknown: str = "unk"):
        if unknown not in ("unk", "error"):
            raise EdgeRNNError(f"unknown tokens: choose unk or error, not {unknown!r}")
        self.manifest, self.unknown = manifest, unknown
        self.input = manifest["input"]
        self.stoi = {token: i for i, token in enumerate(manifest.get("vocab") or [])}
        self.separator = "" if self.input["tokenization"] == "char" else " "

    def tokenize(self, text: str | list[str]) -> list[str]:
        """Split text as the model was trained: characters, words, or given tokens."""
        if not isinstance(text, str):
            return list(text)
        return list(text) if self.input["tokenization"] == "char" else text.split()

    def ids(self, text: str | list[str]) -> list[int]:
        """Token ids of one input; refuses empty, over-long and (if asked) unknown input."""
        if not self.stoi:
            raise EdgeRNNError("this model takes numeric features, not text")
        tokens = self.tokenize(text)
        if not tokens:
            raise EdgeRNNError(f"input {text!r} has no tokens")
        if len(tokens) > self.input["max_len"]:
            raise EdgeRNNError(
                f"input has {len(tokens)} tokens, more than the model's max length "
                f"{self.input['max_len']}"
            )
        missing = [token for token in tokens if token not in self.stoi]
        if missing and self.unknown == "error":
            raise EdgeRNNError(f"unknown token {missing[0]!r}: not in the model's vocabulary")
        return [self.stoi.get(token, UNK_ID) for token in tokens]

    def encode(self, texts: list) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (N, T) zero-padded, and lengths (N,), for texts or token lists."""
        rows = [self.ids(text) for text in texts]
        return _pad([np.asarray(row, dtype=np.int64) for row in rows], np.int64)

    def encode_features(self, sequences: list) -> tuple[np.ndarray, np.ndarray]:
        """Scaled features (N, T, F) zero-padded, and lengths, from raw (T, F) arrays."""
        features = self.input["features"]
        rows = [np.asarray(seq, dtype=np.float64) for seq in sequences]
        for row in rows:
            if row.ndim != 2 or row.shape[1] != features or len(row) == 0:
                raise EdgeRNNError(
                    f"each input must be (steps, {features}) numbers, got shape {row.shape}"
                )
        return _pad([self.scale(row) for row in rows], np.float32)

    def encode_any(self, inputs: list) -> tuple[np.ndarray, np.ndarray]:
        """``encode`` or ``encode_features``, whichever the model takes."""
        if self.input["type"] == "features":
            return self.encode_features(inputs)
        return self.encode(inputs)

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
        return self.separator.join(vocab[i] for i in ids if i not in SKIPPED_IDS)

    def answer(self, task: str, output: np.ndarray, item) -> dict:
        """One example's graph output -> the user-facing result of ``Runtime.predict``."""
        labels = self.manifest["labels"]
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


def _pad(rows: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    padded = np.zeros((len(rows), int(lengths.max(initial=1)), *rows[0].shape[1:]), dtype)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = row
    return padded, lengths
